/**
 * A "failed" record entry that someone else wrote while the master's link to that replica ran on
 * (the replica's own agent after its store failed, the controller giving up on its node) is never
 * overwritten with "in sync" by the master: the compare-and-swap of its in-sync mark refuses it,
 * the master fails that link too and revives it, and only the revived session's completed sync
 * marks the replica in sync again. Before, the master's next tick marked it in sync straight over
 * the failure, because its link still looked complete.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { startInProcessCluster, type InProcessCluster } from "../support/inprocessCluster.ts"
import { getVolume, updateVolume } from "../../lib/cluster/store.ts"
import type { MemoryStore } from "../../lib/store/memory.ts"

const test = suite("a failure recorded by another party during the link's session")
let cluster: InProcessCluster | undefined
test.after(async () => { await cluster?.close() })

const volume = "overruled/v"
const written = new Uint8Array(64 << 10).fill(5)
const copyOf = (c: InProcessCluster, node: string) => c.stores.byPath.get(`/mem/${node}/copies/${volume}.img`) as MemoryStore | undefined
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test("is not marked in sync over: the master fails and revives the link, then the copies match", async () => {
  // A long grace period: the controller must not replace the replica while this runs.
  cluster = await startInProcessCluster({ count: 2, hostBase: "127.0.62.", port: 5703, node: { graceMs: 120_000 } })
  const c = cluster
  const info = await c.run(Effect.gen(function* () {
    yield* c.any().createVolume({ volume, sizeBytes: 4 << 20, labels: { "storageos.com/replicas": "1" } })
    return yield* c.any().waitHealthy(volume, 20_000)
  }))
  const master = info.master!
  const replica = info.replicas[0]!.node
  await c.run(Effect.gen(function* () {
    const handle = yield* c.byName(master)!.openVolume(volume)
    yield* handle.write(0, written)
    yield* handle.flush
  }))
  const reason = "recorded failed by the test, as the replica's agent does after its store failed"
  await c.run(updateVolume(volume, (record) => ({
    ...record,
    replicas: record.replicas.map((r) => (r.node === replica ? { node: r.node, state: "failed" as const, reason, failedAtMs: Date.now() } : r)),
  })))
  const overruledEvents = () => c.byName(master)!.recentEvents().filter((e) => e.kind === "replica-failed" && e.volume === volume && e.message.includes("recorded failed while its link's session ran"))

  // Until the master has failed its own link (a new session), the entry stays failed.
  let back: string | undefined
  for (let i = 0; i < 200 && back === undefined; i++) {
    await sleep(25)
    const entry = (await c.run(getVolume(volume)))?.value.replicas.find((r) => r.node === replica)
    if (entry && entry.state !== "failed") back = entry.state
  }
  assert.ok(back !== undefined, "the replica is synced again within 5 s")
  assert.ok(overruledEvents().length > 0, `the entry became ${back} again before the master failed its link: it was marked over the failure (events: ${JSON.stringify(c.byName(master)!.recentEvents().filter((e) => e.volume === volume).map((e) => `${e.kind}: ${e.message}`))})`)
  assert.match(overruledEvents()[0]!.message, reason)

  const healthy = await c.run(c.any().waitHealthy(volume, 20_000))
  assert.equal(healthy.replicas.map((r) => `${r.node}:${r.state}`), [`${replica}:in-sync`])
  for (let i = 0; i < 100 && copyOf(c, replica)?.digest() !== copyOf(c, master)?.digest(); i++) await sleep(50)
  assert.is(copyOf(c, replica)?.digest(), copyOf(c, master)?.digest(), "the revived replica holds what the master holds")
  const read = await c.run(Effect.gen(function* () {
    const handle = yield* c.byName(replica)!.openVolume(volume)
    return yield* handle.read(0, written.length)
  }))
  assert.equal(read, written)
})

test.run()
