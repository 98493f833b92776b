/** The metrics registry: histograms, HELP/TYPE on every family, label sets a scraper can sum, cheap hot-path handles. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { makeMetrics } from "../../../lib/core/metrics.ts"
import { latencyBucketsSeconds, metricFamilies, quantitySplittingLabels, type MetricName } from "../../../lib/core/metricFamilies.ts"
import { instrumentStore } from "../../../lib/store/instrumented.ts"
import { makeMemoryStore } from "../../../lib/store/memory.ts"
import { instrumentConnection, roundTripSlots } from "../../../lib/node/instrumented.ts"
import type { Connection } from "../../../lib/net/connection.ts"
import { makeFrame, MessageType, type Frame } from "../../../lib/wire/index.ts"
import { checkExposition, parsePrometheus } from "../../support/prometheus.ts"

const test = suite("metrics registry")

/** A clock the test moves by hand. */
const manualClock = () => {
  let now = 0
  return { nowMs: () => now, advance: (ms: number) => void (now += ms) }
}

test("a histogram counts each observation in the first bucket that holds it; rendered cumulative, in seconds", () => {
  const metrics = makeMetrics()
  const h = metrics.histogram("replivol_backend_latency_seconds", { volume: "a/b", op: "write" })
  for (const ms of [0.03, 0.2, 0.2, 3, 20_000]) h.observe(ms)
  const snap = metrics.histogramOf("replivol_backend_latency_seconds", { volume: "a/b", op: "write" })!
  assert.is(snap.count, 5)
  assert.ok(Math.abs(snap.sumSeconds - 20.00343) < 1e-9)
  const at = (le: number) => snap.buckets.find(([bound]) => bound === le)![1]
  assert.is(at(0.00005), 1, "30 µs ≤ 50 µs")
  assert.is(at(0.0001), 1)
  assert.is(at(0.00025), 3, "200 µs twice")
  assert.is(at(0.0025), 3)
  assert.is(at(0.005), 4, "3 ms")
  assert.is(at(10), 4, "20 s is above the last bound")
  assert.is(snap.buckets.at(-1)![1], 5, "+Inf holds everything")
  const text = metrics.render()
  assert.match(text, 'replivol_backend_latency_seconds_bucket{op="write",volume="a/b",le="0.00025"} 3')
  assert.match(text, 'replivol_backend_latency_seconds_bucket{op="write",volume="a/b",le="+Inf"} 5')
  assert.match(text, 'replivol_backend_latency_seconds_count{op="write",volume="a/b"} 5')
  assert.equal(checkExposition(text), [])
})

test("every family of the catalogue renders with # HELP and # TYPE and exactly its labels; none splits a quantity", () => {
  const metrics = makeMetrics()
  for (const [name, family] of Object.entries(metricFamilies) as Array<[MetricName, (typeof metricFamilies)[MetricName]]>) {
    assert.ok(family.help.length > 20, `${name} has a real HELP text`)
    assert.not.ok(family.labels.some((l) => quantitySplittingLabels.includes(l)), `${name} has no quantity-splitting label`)
    const labels = Object.fromEntries(family.labels.map((l) => [l, `x-${l}`]))
    if (family.type === "histogram") metrics.histogram(name, labels).observe(1)
    else if (family.type === "counter") metrics.add(name, labels)
    else metrics.set(name, labels, 1)
  }
  const text = metrics.render()
  assert.equal(checkExposition(text), [])
  const { families } = parsePrometheus(text)
  assert.equal([...families.keys()].sort(), Object.keys(metricFamilies).sort(), "every family rendered, no other")
})

test("the exposition check fails on a family without HELP, on mixed label sets and on kind=done|total", () => {
  const metrics = makeMetrics()
  metrics.set("replivol_made_up_gauge", { volume: "a/b" }, 1)
  metrics.set("replivol_volume_health", { volume: "a/b" }, 0)
  metrics.set("replivol_volume_health", { volume: "a/c", node: "n1" }, 0)
  metrics.set("replivol_volume_sync_done_bytes", { volume: "a/b", replica: "n2", kind: "done" }, 5)
  const problems = checkExposition(metrics.render())
  assert.ok(problems.some((p) => p.startsWith("replivol_made_up_gauge has no # HELP")), problems.join("\n"))
  assert.ok(problems.some((p) => p.startsWith("replivol_volume_health mixes label sets")), problems.join("\n"))
  assert.ok(problems.some((p) => p.includes("splits one quantity across kind=done")), problems.join("\n"))
  const broken = "# HELP x_seconds h\n# TYPE x_seconds histogram\nx_seconds_bucket{le=\"1\"} 5\nx_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 1\nx_seconds_count 4\n"
  assert.ok(checkExposition(broken).some((p) => p.includes("not cumulative")))
})

test("an instrumented store counts, sizes and times its reads, writes and flushes; failures count as errors", async () => {
  const clock = manualClock()
  const metrics = makeMetrics({ nowMs: clock.nowMs })
  const memory = makeMemoryStore(1 << 20)
  const slow = { ...memory, write: (offset: number, data: Uint8Array) => Effect.andThen(Effect.sync(() => clock.advance(0.4)), memory.write(offset, data)) }
  const store = instrumentStore(slow, "ns/v", metrics)
  for (let i = 0; i < 3; i++) await Effect.runPromise(store.write(i * 4096, new Uint8Array(4096)))
  await Effect.runPromise(store.read(0, 8192))
  await Effect.runPromise(store.flush)
  const failed = await Effect.runPromise(Effect.result(store.read(1 << 20, 4096)))
  assert.is(failed._tag, "Failure", "a read past the end fails")
  const write = metrics.histogramOf("replivol_backend_latency_seconds", { volume: "ns/v", op: "write" })!
  assert.is(write.count, 3)
  assert.ok(Math.abs(write.sumSeconds - 0.0012) < 1e-12, `sum ${write.sumSeconds}`)
  assert.is(write.buckets.find(([le]) => le === 0.0005)![1], 3, "each 0.4 ms write in the ≤ 0.5 ms bucket")
  assert.is(metrics.get("replivol_backend_ops_total", { volume: "ns/v", op: "write", result: "ok" }), 3)
  assert.is(metrics.get("replivol_backend_bytes_total", { volume: "ns/v", op: "write" }), 3 * 4096)
  assert.is(metrics.get("replivol_backend_ops_total", { volume: "ns/v", op: "read", result: "error" }), 1)
  assert.is(metrics.histogramOf("replivol_backend_latency_seconds", { volume: "ns/v", op: "read" })!.count, 2)
  assert.is(metrics.histogramOf("replivol_backend_latency_seconds", { volume: "ns/v", op: "flush" })!.count, 1)
  assert.equal(checkExposition(metrics.render()), [])
})

test("a timed connection measures each write/flush/sync round trip from send to its ack; other frames pass untimed", () => {
  const clock = manualClock()
  const metrics = makeMetrics({ nowMs: clock.nowMs })
  const sent: Frame[] = []
  let deliver: (frame: Frame) => void = () => undefined
  const fake = { link: {} as Connection["link"], peerName: "n2", send: (frame: Frame) => (sent.push(frame), true), onFrame: (receive: (f: Frame) => void) => void (deliver = receive), close: () => undefined } satisfies Connection
  const conn = instrumentConnection(fake, "ns/v", metrics)
  const received: Frame[] = []
  conn.onFrame((frame) => received.push(frame))
  conn.send(makeFrame(MessageType.Write, { sequence: 7, body: new Uint8Array(4) }))
  conn.send(makeFrame(MessageType.Flush, { sequence: 8 }))
  clock.advance(0.3)
  deliver(makeFrame(MessageType.WriteAck, { sequence: 7 }))
  clock.advance(2)
  deliver(makeFrame(MessageType.FlushAck, { sequence: 8 }))
  deliver(makeFrame(MessageType.WriteAck, { sequence: 7 }))
  deliver(makeFrame(MessageType.WriteAck, { sequence: 99 }))
  conn.send(makeFrame(MessageType.Write, { sequence: 9, body: new Uint8Array(4) }))
  conn.send(makeFrame(MessageType.Write, { sequence: 9 + roundTripSlots, body: new Uint8Array(4) }))
  deliver(makeFrame(MessageType.WriteAck, { sequence: 9 }))
  assert.is(sent.length, 4, "every frame still goes out")
  assert.is(received.length, 5, "every frame still comes in")
  const write = metrics.histogramOf("replivol_network_latency_seconds", { volume: "ns/v", op: "write" })!
  assert.is(write.count, 1, "one timed write: a repeated ack, an unknown one and a reused slot are not timed")
  assert.ok(Math.abs(write.sumSeconds - 0.0003) < 1e-12)
  const flush = metrics.histogramOf("replivol_network_latency_seconds", { volume: "ns/v", op: "flush" })!
  assert.is(flush.count, 1)
  assert.ok(Math.abs(flush.sumSeconds - 0.0023) < 1e-12)
  assert.ok(latencyBucketsSeconds.length > 10)
})

test.run()
