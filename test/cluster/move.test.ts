/**
 * `volume move` and `node drain` on a local cluster (4 nodes, file stores, real TCP) while a writer
 * keeps writing through a volume handle: a move to an in-sync replica, a move to a node without a
 * copy (synced first), and a drain of a node holding a master and a replica — no write fails,
 * nothing acknowledged is lost, the epoch rises, the copies end byte-identical and the drained node
 * holds nothing and stays cordoned. Invalid requests are refused with a reason and change nothing.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { createLocalCluster, type LocalClusterHandle } from "../../lib/cli/localCluster.ts"
import type { MoveStatus, VolumeInfo } from "../../lib/cluster/clusterNode.ts"

const test = suite("volume move and node drain")
const blockBytes = 64 * 1024
const blocks = 256 // 16 MiB
const dir = mkdtempSync(join(tmpdir(), "replivol-move-"))
let cluster: LocalClusterHandle

test.before(async () => {
  cluster = await createLocalCluster({ nodes: 4, hostBase: "127.0.47.", port: 27113, dataDir: dir, node: { leaseTtlMs: 1500 } })
})
test.after(async () => {
  await cluster?.close()
  rmSync(dir, { recursive: true, force: true })
})

const pattern = (block: number, round: number) => new Uint8Array(blockBytes).fill((block * 7 + round * 13 + 1) & 0xff)
const digest = (node: string, volume: string) => createHash("sha256").update(readFileSync(join(dir, node, "copies", `${volume}.img`))).digest("hex")
const waitFor = async (volume: string, what: string, timeoutMs: number, check: (info: VolumeInfo) => boolean): Promise<VolumeInfo> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const info = await cluster.inspectVolume(volume)
    if (check(info)) return info
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms: ${JSON.stringify(info)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
const healthyInSync = (info: VolumeInfo) => info.health === "healthy" && info.replicas.every((r) => r.state === "in-sync")
const refusal = async (promise: Promise<unknown>): Promise<{ reason: string; message: string }> => {
  try {
    await promise
  } catch (error) {
    const e = error as { reason?: string; message?: string }
    return { reason: e.reason ?? "?", message: e.message ?? String(error) }
  }
  throw new Error("the request was not refused")
}

/** A writer through a handle on `via`; `stop()` ends it and returns what was acknowledged last per block. */
const startWriter = async (volume: string, via: string) => {
  const handle = await cluster.openVolume(volume, { via })
  for (let block = 0; block < blocks; block++) await handle.write(block * blockBytes, pattern(block, 0))
  const last = new Map<number, number>()
  const errors: string[] = []
  let stop = false
  let round = 1
  const loop = (async () => {
    while (!stop) {
      for (let block = round % 4; block < blocks && !stop; block += 4) {
        await handle.write(block * blockBytes, pattern(block, round)).then(() => void last.set(block, round), (error: Error) => void errors.push(error.message))
      }
      round++
    }
  })()
  return {
    handle,
    stop: async () => {
      stop = true
      await loop
      await handle.flush()
      return { last, errors, rounds: round }
    },
  }
}

/** Every block reads back as its last acknowledged write. */
const assertNothingLost = async (handle: Awaited<ReturnType<typeof startWriter>>["handle"], last: ReadonlyMap<number, number>) => {
  for (let block = 0; block < blocks; block++) {
    const bytes = await handle.read(block * blockBytes, blockBytes)
    const expected = pattern(block, last.get(block) ?? 0)
    assert.ok(bytes.every((b, i) => b === expected[i]), `block ${block} holds its last acknowledged write (round ${last.get(block) ?? 0})`)
  }
}

const assertCopiesIdentical = async (volume: string) => {
  const info = await waitFor(volume, "healthy, every replica in sync", 30_000, healthyInSync)
  const report = await cluster.verifyVolume(volume)
  assert.is(report.differingRegions, 0, `volume verify finds the copies identical: ${JSON.stringify(report)}`)
  const sums = [info.master!, ...info.replicas.map((r) => r.node)].map((node) => digest(node, volume))
  assert.is(new Set(sums).size, 1, `copies sha256-identical: ${sums.join(" ")}`)
  return info
}

test("invalid moves and drains are refused with a reason and change nothing", async () => {
  const volume = "mv/refused"
  await cluster.createVolume(volume, 4 << 20, { "storageos.com/replicas": "3", "storageos.com/hint.master": "n1" })
  const before = await waitFor(volume, "healthy", 30_000, healthyInSync)
  const replica = before.replicas[0]!.node
  const cases: Array<[string, () => Promise<unknown>, string, RegExp]> = [
    ["unknown node", () => cluster.moveVolume(volume, "n9"), "not-found", /node n9 is not known/],
    ["the current master", () => cluster.moveVolume(volume, "n1"), "bad-request", /already its master/],
    ["unknown volume", () => cluster.moveVolume("mv/none", "n2"), "not-found", /does not exist/],
    ["drain of an unknown node", () => cluster.drainNode("n9"), "not-found", /node n9 is not known/],
    ["drain with nowhere to put a copy", () => cluster.drainNode("n2"), "too-few-nodes", /nowhere to put the copy of mv\/refused/],
  ]
  await cluster.configureNode(replica, { cordoned: true })
  cases.push(["a cordoned node", () => cluster.moveVolume(volume, replica), "bad-request", /is cordoned/])
  for (const [what, request, reason, message] of cases) {
    const refused = await refusal(request())
    assert.is(refused.reason, reason, `${what}: ${refused.message}`)
    assert.match(refused.message, message, what)
    assert.match(refused.message, /nothing was changed|does not exist/, `${what} says nothing changed`)
  }
  await cluster.configureNode(replica, { cordoned: false })
  const statusOf = (effect: Effect.Effect<unknown, { readonly reason?: string; readonly message: string }>) => refusal(Effect.runPromise(effect))
  const none = cluster.effect.node("n2")!
  assert.equal(await statusOf(none.moveStatus(volume)), { reason: "not-found", message: `no move of ${volume} was started since it was created (replivol volume move ${volume} --to NODE starts one)` })
  assert.equal(await statusOf(none.moveStatus("mv/none")), { reason: "not-found", message: "volume mv/none does not exist" })
  assert.match((await statusOf(none.drainStatus("n3"))).message, /no drain of n3 was started/)
  const after = await cluster.inspectVolume(volume)
  assert.equal({ master: after.master, epoch: after.epoch, replicas: after.replicas.map((r) => r.node) }, { master: before.master, epoch: before.epoch, replicas: before.replicas.map((r) => r.node) }, "the volume is as it was")
  for (const node of cluster.names) assert.is((await cluster.configureNode(node, {})).cordoned, false, `${node} was not left cordoned by a refused drain`)
  await cluster.deleteVolume(volume)
})

test("move to an in-sync replica, then to a node without a copy, while writes go on: none fails, nothing lost, copies identical", async () => {
  const volume = "mv/live"
  await cluster.createVolume(volume, blocks * blockBytes, { "storageos.com/replicas": "1", "storageos.com/hint.master": "n1" })
  const first = await waitFor(volume, "healthy", 30_000, healthyInSync)
  const replica = first.replicas[0]!.node
  const free = cluster.names.find((n) => n !== "n1" && n !== replica)!
  const writer = await startWriter(volume, free)
  await new Promise((resolve) => setTimeout(resolve, 300))

  const moved = await cluster.moveVolume(volume, replica)
  assert.is(moved.state, "done")
  const second = await waitFor(volume, `${replica} master`, 10_000, (i) => i.master === replica)
  assert.ok(second.epoch > first.epoch, "the epoch rose")
  assert.equal(second.replicas.map((r) => [r.node, r.state]), [["n1", "in-sync"]], "the old master stays an in-sync replica")

  const states: MoveStatus["state"][] = []
  const copied = await cluster.moveVolume(volume, free, (s) => void (states[states.length - 1] !== s.state && states.push(s.state)))
  assert.equal(states, ["copying", "handing-over", "done"], "a copy was synced there first, then the hand-over")
  assert.ok(copied.newCopy)
  for (const name of cluster.names) {
    const status = await Effect.runPromise(cluster.effect.node(name)!.moveStatus(volume))
    assert.equal([status.state, status.to, status.startedAtMs, status.runner], ["done", free, copied.startedAtMs, copied.runner], `${name} reports the move run by ${copied.runner}`)
  }
  const third = await waitFor(volume, `${free} master with one in-sync replica`, 30_000, (i) => i.master === free && healthyInSync(i))
  assert.ok(third.epoch > second.epoch)
  assert.equal(third.replicas.map((r) => r.node), ["n1"], `the old master ${replica}'s copy is dropped, the replica count kept`)

  const { last, errors, rounds } = await writer.stop()
  assert.equal(errors, [], "no write failed during the moves")
  assert.ok(rounds > 2, "the writer kept writing")
  await assertNothingLost(writer.handle, last)
  await assertCopiesIdentical(volume)
  await writer.handle.close()
})

test("drain of a node holding a master and a replica while writes go on: it ends empty and cordoned, nothing lost, copies identical", async () => {
  const a = "dr/a"
  const b = "dr/b"
  await cluster.createVolume(a, blocks * blockBytes, { "storageos.com/replicas": "1", "storageos.com/hint.master": "n3" })
  const infoA = await waitFor(a, "healthy", 30_000, healthyInSync)
  // The drained node holds a's replica and b's master.
  const drainedNode = infoA.replicas[0]!.node
  await cluster.createVolume(b, blocks * blockBytes, { "storageos.com/replicas": "1", "storageos.com/hint.master": drainedNode })
  const infoB = await waitFor(b, "healthy", 30_000, healthyInSync)
  assert.is(infoB.master, drainedNode)
  const via = cluster.names.find((n) => n !== drainedNode && n !== "n3")!
  const writerA = await startWriter(a, via)
  const writerB = await startWriter(b, via)
  await new Promise((resolve) => setTimeout(resolve, 300))

  const seen: string[] = []
  const drained = await cluster.drainNode(drainedNode, (s) => void (s.current && !seen.includes(`${s.current.action} ${s.current.volume}`) && seen.push(`${s.current.action} ${s.current.volume}`)))
  assert.is(drained.state, "done")
  assert.is(drained.volumesDone, drained.volumesTotal)
  assert.equal([...seen].sort(), ["move-master dr/b", "replace-replica dr/a"])
  for (const name of cluster.names.filter((n) => cluster.effect.isRunning(n))) {
    const status = await Effect.runPromise(cluster.effect.node(name)!.drainStatus(drainedNode))
    assert.equal([status.state, status.volumesDone, status.runner], ["done", 2, drained.runner], `${name} reports the drain run by ${drained.runner}`)
  }
  const volumes = await cluster.listVolumes()
  assert.ok(volumes.every((v) => v.master !== drainedNode && v.replicas.every((r) => r.node !== drainedNode)), `${drainedNode} holds nothing: ${JSON.stringify(volumes.map((v) => [v.volume, v.master, v.replicas]))}`)
  assert.is((await cluster.configureNode(drainedNode, {})).cordoned, true, `${drainedNode} stays cordoned`)
  const afterA = await cluster.inspectVolume(a)
  const afterB = await cluster.inspectVolume(b)
  assert.is(afterA.master, "n3", "a's master did not move")
  assert.is(afterA.replicas.length, 1, "a keeps one replica")
  assert.ok(afterB.epoch > infoB.epoch, "b's master moved at a higher epoch")
  assert.is(afterB.replicas.length, 1, "b keeps one replica")

  for (const [volume, writer] of [[a, writerA], [b, writerB]] as const) {
    const { last, errors } = await writer.stop()
    assert.equal(errors, [], `no write to ${volume} failed during the drain`)
    await assertNothingLost(writer.handle, last)
    await assertCopiesIdentical(volume)
    await writer.handle.close()
  }
  await cluster.configureNode(drainedNode, { cordoned: false })
})

test.run()
