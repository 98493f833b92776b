/**
 * `MasterVolume.verify`: a master and two replicas on the simulated network (no ports), memory
 * stores. Identical copies verify clean while writers keep writing; a replica corrupted behind
 * its back is found region by region, and `repair` makes the copies byte-identical again.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber, Layer } from "effect"
import { startNode, type ReplivolNode } from "../../../lib/node/node.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { makeSimNetwork, mulberry32, calmFaults } from "../../../lib/testing/simNetwork.ts"
import { makeMetrics } from "../../../lib/core/metrics.ts"
import type { MasterVolume } from "../../../lib/replication/masterVolume.ts"

const test = suite("volume verify")
const secret = "verify-test-secret-0123456789"
const sizeBytes = 8 << 20
const regionBytes = 256 << 10

interface Cluster {
  readonly volume: MasterVolume
  readonly nodes: ReadonlyArray<ReplivolNode>
  readonly copy: (node: string) => MemoryStore
}

/** Runs `body` against a healthy volume with replicas on n2 and n3. */
const withCluster = <A>(body: (cluster: Cluster) => Effect.Effect<A, unknown>, metrics = makeMetrics(), events: string[] = [], resyncShare?: number) => {
  const stores = makeMemoryStores()
  const program = Effect.scoped(Effect.gen(function* () {
    const network = yield* makeSimNetwork(mulberry32(7), calmFaults)
    const nodes = yield* Effect.forEach(["n1", "n2", "n3"], (name, i) =>
      startNode({ name, address: { host: `10.0.0.${i + 1}` }, dataDir: `/${name}`, secret, metrics, onEvent: (event) => void events.push(event.kind) }).pipe(Effect.provide(network.layer)))
    const [n1, n2, n3] = nodes as [ReplivolNode, ReplivolNode, ReplivolNode]
    yield* n2.hostReplica("default/vol", sizeBytes)
    yield* n3.hostReplica("default/vol", sizeBytes)
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes, labels: { "storageos.com/replicas": "2" },
      replicas: [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }],
      ...(resyncShare === undefined ? {} : { resyncShare }),
    })
    assert.is((yield* volume.status).health, "healthy")
    return yield* body({ volume, nodes, copy: (node) => stores.byPath.get(`/${node}/copies/default/vol.img`) as MemoryStore })
  }))
  return Effect.runPromise(program.pipe(Effect.provide(stores.layer)) as Effect.Effect<A>)
}

const patterned = (length: number, seed: number) => {
  const random = mulberry32(seed)
  return new Uint8Array(length).map(() => Math.floor(random.next() * 256))
}

test("identical copies verify with no difference while writers keep overwriting the same regions", async () => {
  const result = await withCluster(({ volume }) => Effect.gen(function* () {
    let writesDuringVerify = 0
    let verifying = true
    // Writers hit every region, overlapping, many in flight: each verified region has writes before and after it in the stream.
    const writer = (id: number) => Effect.gen(function* () {
      for (let i = 0; verifying; i++) {
        const random = mulberry32(id * 1000 + i)
        const length = 512 + Math.floor(random.next() * 64 * 1024)
        const offset = Math.floor(random.next() * (sizeBytes - length))
        yield* volume.write(offset, patterned(length, id * 7919 + i))
        writesDuringVerify++
        yield* Effect.yieldNow
      }
    })
    const writers = yield* Effect.forkChild(Effect.forEach([1, 2, 3, 4], writer, { concurrency: "unbounded", discard: true }))
    yield* Effect.sleep(20)
    const before = writesDuringVerify
    const report = yield* volume.verify({ regionBytes })
    const during = writesDuringVerify - before
    verifying = false
    yield* Fiber.join(writers)
    return { report, during }
  }))
  assert.ok(result.during > 20, `writes went on during the verify (${result.during})`)
  assert.is(result.report.state, "done")
  assert.is(result.report.bytesDone, sizeBytes)
  assert.equal(result.report.copies.map((c) => `${c.node}:${c.state}`).sort(), ["n2:compared", "n3:compared"])
  assert.is(result.report.differencesFound, 0, JSON.stringify(result.report.differences.slice(0, 5)))
  assert.is(result.report.differingRegions, 0)
})

test("throttled like a resync: while foreground writes run, each region waits its share (resyncShare 0.2: at least 4 ms per region)", async () => {
  const regions = 256
  const elapsed = await withCluster(({ volume }) => Effect.gen(function* () {
    let writing = true
    const writer = yield* Effect.forkChild(Effect.gen(function* () {
      for (let i = 0; writing; i++) yield* volume.write((i % 64) * 4096, patterned(4096, i))
    }))
    yield* Effect.sleep(10)
    const startedMs = Date.now()
    const report = yield* volume.verify({ regionBytes: sizeBytes / regions })
    const ms = Date.now() - startedMs
    writing = false
    yield* Fiber.join(writer)
    assert.is(report.differencesFound, 0)
    return ms
  }), makeMetrics(), [], 0.2)
  // Each step takes ≥ 1 ms and then pauses ceil(1 × 0.8 / 0.2) = 4 ms or more: a lower bound a slow machine only raises.
  assert.ok(elapsed >= regions * 4, `the verify of ${regions} regions under foreground IO took ${elapsed} ms (≥ ${regions * 4} expected)`)
})

test("a replica corrupted behind its back: verify names exactly those regions; repair makes the copies byte-identical", async () => {
  const metrics = makeMetrics()
  const result = await withCluster(({ volume, copy }) => Effect.gen(function* () {
    yield* volume.write(0, patterned(sizeBytes, 1))
    yield* volume.flush
    // Behind the replication stream: straight into the replicas' stores.
    yield* copy("n3").write(3 * regionBytes + 100, new Uint8Array([1, 2, 3]))
    yield* copy("n3").write(17 * regionBytes, new Uint8Array(4096))
    yield* copy("n2").write(31 * regionBytes + regionBytes - 1, new Uint8Array([0x5a]))
    const found = yield* volume.verify({ regionBytes })
    const differingAfterFind = metrics.get("replivol_volume_verify_differing_regions", { volume: "default/vol" })
    const repaired = yield* volume.verify({ regionBytes, repair: true })
    const again = yield* volume.verify({ regionBytes })
    return { found, repaired, again, differingAfterFind, digests: ["n1", "n2", "n3"].map((n) => copy(n).digest()) }
  }), metrics)
  const listed = (report: typeof result.found) => report.differences.map((d) => `${d.node}@${d.offset / regionBytes}+${d.length}`).sort()
  assert.equal(listed(result.found), ["n2@31+262144", "n3@17+262144", "n3@3+262144"])
  assert.is(result.found.differingRegions, 3)
  assert.is(result.differingAfterFind, 3)
  assert.equal(listed(result.repaired), listed(result.found))
  assert.ok(result.repaired.differences.every((d) => d.repaired), "every difference repaired")
  assert.is(result.repaired.differingRegions, 0)
  assert.is(result.again.differencesFound, 0)
  assert.is(result.digests[1], result.digests[0], "n2 byte-identical to the master")
  assert.is(result.digests[2], result.digests[0], "n3 byte-identical to the master")
  assert.is(metrics.get("replivol_volume_verify_differing_regions", { volume: "default/vol" }), 0)
  assert.ok((metrics.get("replivol_volume_verify_last_success_timestamp_seconds", { volume: "default/vol" }) ?? 0) > 0)
})

test("startVerify shows progress while it runs and emits verify events; a second verify meanwhile is busy; a bad region size is bad-request", async () => {
  const events: string[] = []
  const seen = await withCluster(({ volume }) => Effect.gen(function* () {
    const report = yield* volume.startVerify({ regionBytes: 4096 })
    const second = yield* Effect.flip(volume.verify())
    const bad = yield* Effect.flip(volume.startVerify({ regionBytes: 1000 }))
    const progress: number[] = []
    while (report.state === "running") {
      progress.push(report.bytesDone)
      yield* Effect.sleep(5)
    }
    return { reasons: [(second as { reason: string }).reason, (bad as { reason: string }).reason], progress, state: report.state, last: volume.lastVerify() === report }
  }), makeMetrics(), events)
  assert.equal(seen.reasons, ["busy", "bad-request"])
  assert.is(seen.state, "done")
  assert.ok(seen.last, "lastVerify is the report")
  assert.ok(seen.progress.some((b) => b > 0 && b < sizeBytes), `progress seen mid-way: ${seen.progress.slice(0, 5).join(",")}…`)
  assert.ok(events.includes("verify-started") && events.includes("verify-done"), events.filter((e) => e.startsWith("verify")).join(","))
})

test("every replica counts the frames and bytes it applied (replivol_network_*_total, direction in)", async () => {
  const metrics = makeMetrics()
  const inbound = () => [metrics.get("replivol_network_frames_total", { volume: "default/vol", direction: "in" }) ?? 0, metrics.get("replivol_network_bytes_total", { volume: "default/vol", direction: "in" }) ?? 0]
  const [[framesBefore, bytesBefore], [framesAfter, bytesAfter]] = await withCluster(({ volume }) => Effect.gen(function* () {
    const before = inbound()
    for (let i = 0; i < 20; i++) yield* volume.write(i * 4096, patterned(4096, i))
    return [before, inbound()] as const
  }), metrics)
  // Both replicas (n2, n3) count into the same series: 20 writes of 4 KiB each.
  assert.is(framesAfter! - framesBefore!, 40)
  assert.is(bytesAfter! - bytesBefore!, 40 * 4096)
})

test.run()
