/**
 * A master whose machine lost power cannot prove its recent writes: it waits for its in-sync
 * replica that is away — not for a grace period, for as long as the replica is away — because that
 * copy may hold writes it lost. An operator who knows the replica will not return ends the wait
 * (ClusterNode.acceptLoss, `replivol volume accept-loss`): the master serves what its copy holds,
 * every flushed write included, and the replica, once back, is synced from it.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { startInProcessCluster, type InProcessCluster } from "../support/inprocessCluster.ts"
import type { MemoryStore } from "../../lib/store/memory.ts"

const test = suite("a master that lost power waits for its away replica until the loss is accepted")
let cluster: InProcessCluster | undefined
test.after(async () => { await cluster?.close() })

const volume = "loss/v"
const graceMs = 1500
const flushed = new Uint8Array(4096).fill(7)
const index = (node: string) => Number(node.slice(1)) - 1
const copyOf = (c: InProcessCluster, node: string) => c.stores.byPath.get(`/mem/${node}/copies/${volume}.img`) as MemoryStore | undefined

/** A power loss of `node`'s machine: the process stops, unflushed writes and continuity markers are gone. */
const powerLoss = async (c: InProcessCluster, node: string) => {
  await c.crash(index(node))
  for (const path of [...c.stores.markerByPath.keys()]) if (path.startsWith(`/mem/${node}/`)) c.stores.markerByPath.delete(path)
  for (const [path, store] of c.stores.byPath) if (path.startsWith(`/mem/${node}/`)) (store as MemoryStore).crash()
}

test("it waits past the grace period, serves once the loss is accepted, and syncs the replica when it returns", async () => {
  cluster = await startInProcessCluster({ count: 3, hostBase: "127.0.61.", port: 5703, node: { graceMs } })
  const c = cluster
  const info = await c.run(Effect.gen(function* () {
    yield* c.any().createVolume({ volume, sizeBytes: 4 << 20, labels: { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft" } })
    return yield* c.any().waitHealthy(volume, 20_000)
  }))
  const master = info.master!
  const replica = info.replicas[0]!.node
  await c.run(Effect.gen(function* () {
    const handle = yield* c.byName(master)!.openVolume(volume)
    yield* handle.write(0, flushed)
    yield* handle.flush
    yield* handle.write(4096, new Uint8Array(4096).fill(8)) // acknowledged, not flushed: a power loss may take it
  }))
  // One outage: the master's machine loses power, the replica's process stops (its node stays away).
  await powerLoss(c, master)
  await c.crash(index(replica))
  const restarted = await c.restart(index(master))

  // Well past the grace period the master still waits, and says for whom and how to end the wait.
  await new Promise((resolve) => setTimeout(resolve, graceMs * 3))
  const waiting = await c.run(c.any().inspectVolume(volume))
  assert.is.not(waiting.health, "healthy", `the master that lost power must not serve while ${replica} is away: ${waiting.reason}`)
  assert.match(waiting.reason, `in sync but away: ${replica}`)
  assert.match(waiting.reason, `replivol volume accept-loss ${volume} --yes`)
  const refusals = restarted.recentEvents().filter((e) => e.kind === "master-refused" && e.volume === volume)
  assert.ok(refusals.some((e) => e.message.includes(replica) && e.message.includes(`replivol volume accept-loss ${volume}`)), JSON.stringify(refusals.map((e) => e.message)))

  const accepted = await c.run(c.any().acceptLoss(volume))
  assert.ok(accepted.accepted, accepted.message)
  await c.run(c.any().waitHealthy(volume, 20_000))
  const back = await c.run(Effect.gen(function* () {
    const handle = yield* c.any().openVolume(volume)
    return yield* handle.read(0, 4096)
  }))
  assert.equal(back, flushed, "the flushed write is there")
  const again = await c.run(c.any().acceptLoss(volume))
  assert.not.ok(again.accepted, "a serving volume has nothing to accept")
  assert.match(again.message, "nothing was changed")

  // The replica's node returns (by now its copy may have been replaced elsewhere, past the grace
  // period): every in-sync copy is synced from the one that serves, and they match.
  await c.restart(index(replica))
  const healthy = await c.run(c.any().waitHealthy(volume, 30_000))
  const inSync = healthy.replicas.filter((r) => r.state === "in-sync").map((r) => r.node)
  assert.is(inSync.length, 1, JSON.stringify(healthy.replicas))
  const differing = () => inSync.filter((n) => copyOf(c, n)?.digest() !== copyOf(c, master)?.digest())
  for (let i = 0; i < 100 && differing().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(differing(), [], "every in-sync copy holds what the master holds")
})

test.run()
