/**
 * Failure modes end to end, on a 4-node in-process cluster, by killing a replica's node:
 * hard — IO fails promptly while below the requested count, and resumes once the replacement
 * (placed after the grace period) is in sync; soft — IO continues within tolerance; alwayson —
 * IO continues with no replica at all.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { startInProcessCluster, type InProcessCluster } from "../support/inprocessCluster.ts"

const test = suite("failure modes end to end")
let cluster: InProcessCluster | undefined
test.after(async () => { await cluster?.close() })

const block = new Uint8Array(4096).fill(7)

const setup = async (hostBase: string, labels: Record<string, string>) => {
  cluster = await startInProcessCluster({ count: 4, hostBase, port: 5703, node: { graceMs: 2500 } })
  const c = cluster
  const volume = "modes/v"
  const info = await c.run(Effect.gen(function* () {
    yield* c.any().createVolume({ volume, sizeBytes: 8 << 20, labels })
    return yield* c.any().waitHealthy(volume, 20_000)
  }))
  const master = c.byName(info.master!)!
  const killed = info.replicas[0]!.node
  await c.crash(Number(killed.slice(1)) - 1)
  return { c, volume, master, killed, info }
}

/** Writes once a few ms apart for `ms`, returning how each went. */
const writeFor = (c: InProcessCluster, node: NonNullable<InProcessCluster["nodes"][number]>, volume: string, ms: number) =>
  c.run(Effect.gen(function* () {
    const handle = yield* node.openVolume(volume)
    const outcomes: Array<{ ok: boolean; tag?: string; atMs: number; tookMs: number }> = []
    const started = Date.now()
    while (Date.now() - started < ms) {
      const t0 = Date.now()
      const result = yield* Effect.result(handle.write(0, block))
      outcomes.push(result._tag === "Success" ? { ok: true, atMs: t0 - started, tookMs: Date.now() - t0 } : { ok: false, tag: result.failure._tag, atMs: t0 - started, tookMs: Date.now() - t0 })
      yield* Effect.sleep(20)
    }
    return outcomes
  }))

test("hard: IO fails promptly below the requested count, resumes after the replacement syncs", async () => {
  const { c, volume, master } = await setup("127.0.4.", { "storageos.com/replicas": "1", "storageos.com/failure.mode": "hard" })
  const outcomes = await writeFor(c, master, volume, 8000)
  const failures = outcomes.filter((o) => !o.ok)
  const firstFailure = failures[0]
  const lastFailure = failures[failures.length - 1]
  console.log(`\n    hard: ${failures.length} writes refused (${[...new Set(failures.map((f) => f.tag))].join(", ")}), slowest refusal ${Math.max(...failures.map((f) => f.tookMs))} ms; writes resumed at ${outcomes.find((o) => o.ok && o.atMs > (lastFailure?.atMs ?? 0))?.atMs ?? "never"} ms`)
  assert.ok(firstFailure, "writes were refused while the replica was missing")
  assert.ok(failures.every((f) => f.tag === "VolumeUnavailable"), "refusals are VolumeUnavailable")
  assert.ok(Math.max(...failures.map((f) => f.tookMs)) < 3000, "refusals are prompt (no hang)")
  assert.ok(outcomes[outcomes.length - 1]!.ok, "writes resumed after the replacement synced")
  const info = await c.run(master.waitHealthy(volume, 10_000))
  assert.is(info.health, "healthy")
})

test("soft (tolerance 1): IO continues with one of two replicas lost", async () => {
  await cluster?.close()
  const { c, volume, master } = await setup("127.0.5.", { "storageos.com/replicas": "2", "storageos.com/failure.mode": "soft" })
  const outcomes = await writeFor(c, master, volume, 2000)
  assert.ok(outcomes.length > 10)
  assert.ok(outcomes.every((o) => o.ok), `every write succeeded: ${JSON.stringify(outcomes.filter((o) => !o.ok).slice(0, 3))}`)
})

test("alwayson: IO continues with no replica left", async () => {
  await cluster?.close()
  const { c, volume, master } = await setup("127.0.6.", { "storageos.com/replicas": "1", "storageos.com/failure.mode": "alwayson" })
  const outcomes = await writeFor(c, master, volume, 2000)
  assert.ok(outcomes.length > 10)
  assert.ok(outcomes.every((o) => o.ok), `every write succeeded: ${JSON.stringify(outcomes.filter((o) => !o.ok).slice(0, 3))}`)
})

test.run()
