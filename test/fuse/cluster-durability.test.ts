/**
 * Durability drills on a real `replivol cluster up` (3 nodes, FUSE mount, `replivol node kill` /
 * `node revive`): a copy that returns must never be trusted for bytes it does not hold.
 *
 * 1. Wiped replica: replicas=1, a flushed pattern; the replica's node is killed, its data
 *    directory emptied, the node revived within the grace period. Once healthy the two copies
 *    are byte-identical; after the master's node is killed the promoted copy reads back the
 *    pattern through the mount.
 * 2. Returning old master: replicas=2, a flushed pattern; the master's node is killed, 4 MiB are
 *    zeroed and flushed under the new master, the old master's node revived and placed again as
 *    a replica. Once healthy the three copies are byte-identical and the region reads as zeros.
 * 3. Deleted while away: replicas=1, a flushed pattern; a copy holder's node is killed, the
 *    volume deleted and created again with the same name and size, the node revived and placed
 *    as a replica of the new volume (by a failover that leaves it the only free node). Once
 *    healthy the volume reads all zeros and its copies are byte-identical. A second volume,
 *    deleted for good meanwhile, leaves no copy on the returning node. Run twice: the
 *    returning node held the old volume's replica (3a) or its master (3b).
 *
 * Timing: `cluster up` has no grace-period flag (30 s, the node default), so drill 1 revives the
 * node a few seconds after the kill, well inside it; drills 2 and 3 need no grace at all: a
 * promotion leaves a replica slot free and the controller fills it at once on the only free node.
 * Each suite runs its own cluster (own loopback range and ports) and always stops it and removes
 * its temp directories in `after`. Every wait is bounded; a failure prints the copies' sums,
 * cmp's first differing byte and the volume's recent cluster events.
 */
import { dirname } from "node:path"
import * as assert from "uvu/assert"
import { clusterSuite, pollFor, type FuseCluster, type FuseClusterOptions } from "./support-cluster.ts"
import {
  copyNodes, ddWrite, describeCopies, exists, mibBytes, mountedSha, nodeDrill, settleCopies, sha256Hex,
  stepLog, volumeEvents, wipeNodeData, writePatternFile,
} from "./support-durability.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster durability tests skipped: ${skipReason}`)

const volumeMiB = 32
const volumeSize = `${volumeMiB}MiB`
/** Bound of each wait for the cluster to reach a state (failover, resync of 32 MiB, placement). */
const settleMs = 90_000
/** How long copies may take to match once the record says in sync (last writes still landing). */
const copiesSettleMs = 5_000
const zeroSha = sha256Hex(new Uint8Array(volumeMiB * mibBytes))

const drillSuite = (title: string, options: FuseClusterOptions) => clusterSuite(title, options, skipReason)

/** The pattern file lives in the cluster's temp root (removed with it), outside the mount. */
const patternPath = (cluster: FuseCluster, name: string) => `${dirname(cluster.data)}/${name}.pattern`

// ---- 1. A replica whose data directory was emptied while its node was down

const one = drillSuite("durability: a replica wiped while its node was down (replicas=1, 3 nodes)", { nodes: 3, hostBase: "127.0.10.", port: 28773, apiPort: 28775 })
const wiped = { volume: "dur/wiped", patternSha: "", revivedHealthy: false }

one.it("the revived, wiped replica's copy is byte-identical to the master's once the volume is healthy", async () => {
  const cluster = one.drill.cluster!
  const volume = wiped.volume
  const file = `${cluster.mount}/${volume}`
  const step = stepLog("wiped replica")
  await cluster.createVolume(volume, volumeSize, { "storageos.com/replicas": "1" })
  const pattern = await writePatternFile(patternPath(cluster, "wiped"), volumeMiB * mibBytes, 0x5eed01)
  wiped.patternSha = sha256Hex(pattern)
  await ddWrite(patternPath(cluster, "wiped"), file, 0, volumeMiB)
  assert.is(await mountedSha(file, 0, volumeMiB), wiped.patternSha, "the flushed pattern reads back before any fault")

  const before = await cluster.inspectCli(volume)
  const replica = before.replicas[0]!.node
  step(`pattern written and read back; killing replica ${replica} (master ${before.master})`)
  await nodeDrill(cluster, "kill", replica)
  await cluster.waitVolume(volume, `showing the replica on ${replica} failed`, settleMs, (v) => v.replicas.some((r) => r.node === replica && r.state === "failed"))
  await wipeNodeData(cluster, replica)
  assert.not.ok(await exists(cluster.copyPath(replica, volume)), "the wiped node holds no copy file")
  await nodeDrill(cluster, "revive", replica)
  step(`${replica} failed, wiped and revived`)

  const healthy = await cluster.waitVolume(volume, "healthy again under the same master", settleMs, (v) =>
    v.health === "healthy" && v.master === before.master && v.replicas.length === 1 && v.replicas.every((r) => r.state === "in-sync"))
  wiped.revivedHealthy = true
  step(`healthy again: ${JSON.stringify(healthy.replicas)}`)
  // Revived inside the grace period, the wiped node keeps its replica slot: its own copy is the one
  // that must have been synced in full (a replacement elsewhere would prove nothing about it).
  assert.is(healthy.replicas[0]!.node, replica, `the in-sync replica is the revived, wiped node ${replica}`)
  const nodes = copyNodes(healthy)
  const copies = await settleCopies(cluster, volume, nodes, copiesSettleMs)
  assert.ok(copies.identical, describeCopies(cluster, volume, copies, { [wiped.patternSha]: "the pattern", [zeroSha]: "all zeros" }))
  assert.is(copies.sums[healthy.master], wiped.patternSha, "the master's copy holds the pattern")
})

one.it("after the master's node is killed, the promoted copy reads back everything flushed before", async () => {
  const cluster = one.drill.cluster!
  const volume = wiped.volume
  assert.ok(wiped.revivedHealthy, "the previous test brought the volume back to healthy after the wipe")
  const step = stepLog("wiped replica, master killed")
  const before = await cluster.inspectCli(volume)
  await nodeDrill(cluster, "kill", before.master)
  const after = await cluster.waitVolume(volume, "usable under a new master", settleMs, (v) => v.usable && v.master !== before.master)
  step(`${after.master} promoted (master was ${before.master})`)
  const read = await mountedSha(`${cluster.mount}/${volume}`, 0, volumeMiB)
  assert.is(read, wiped.patternSha,
    `the mounted file after promoting ${after.master} (master was ${before.master}) is not the flushed pattern` +
      (read === zeroSha ? " (it reads all zeros)" : "") + `\nrecent events:\n${volumeEvents(cluster, volume)}`)
})

// ---- 2. The old master returns as a replica after its volume was written under a new master

const two = drillSuite("durability: the old master returns as a replica (replicas=2, 3 nodes)", { nodes: 3, hostBase: "127.0.11.", port: 28783, apiPort: 28785 })

two.it("a region zeroed under the new master reads as zeros and every copy is identical once the old master is back", async () => {
  const cluster = two.drill.cluster!
  const volume = "dur/oldmaster"
  const file = `${cluster.mount}/${volume}`
  const region = { offsetMiB: 8, countMiB: 4 }
  const step = stepLog("old master")
  await cluster.createVolume(volume, volumeSize, { "storageos.com/replicas": "2" })
  const pattern = await writePatternFile(patternPath(cluster, "oldmaster"), volumeMiB * mibBytes, 0x5eed02)
  await ddWrite(patternPath(cluster, "oldmaster"), file, 0, volumeMiB)
  assert.is(await mountedSha(file, 0, volumeMiB), sha256Hex(pattern), "the flushed pattern reads back before any fault")

  const before = await cluster.inspectCli(volume)
  step(`pattern written and read back; killing master ${before.master}`)
  await nodeDrill(cluster, "kill", before.master)
  const promoted = await cluster.waitVolume(volume, "usable under a new master", settleMs, (v) => v.usable && v.master !== before.master)
  await ddWrite("/dev/zero", file, region.offsetMiB, region.countMiB)
  const expected = pattern.slice()
  expected.fill(0, region.offsetMiB * mibBytes, (region.offsetMiB + region.countMiB) * mibBytes)

  step(`${promoted.master} promoted; ${region.countMiB} MiB at ${region.offsetMiB} MiB zeroed; reviving ${before.master}`)
  await nodeDrill(cluster, "revive", before.master)
  const healthy = await cluster.waitVolume(volume, `healthy with ${before.master} back as an in-sync replica`, settleMs, (v) =>
    v.health === "healthy" && v.replicas.length === 2 && v.replicas.every((r) => r.state === "in-sync") && v.replicas.some((r) => r.node === before.master))
  step(`healthy again: master ${healthy.master}, ${JSON.stringify(healthy.replicas)}`)
  assert.is(healthy.master, promoted.master, "the promoted master still serves the volume")
  const regionSha = sha256Hex(new Uint8Array(region.countMiB * mibBytes))
  assert.is(await mountedSha(file, region.offsetMiB, region.countMiB), regionSha, "the zeroed region reads as zeros through the mount")
  assert.is(await mountedSha(file, 0, volumeMiB), sha256Hex(expected), "the whole file is the pattern with the region zeroed")
  const copies = await settleCopies(cluster, volume, copyNodes(healthy), copiesSettleMs)
  assert.ok(copies.identical, describeCopies(cluster, volume, copies, { [sha256Hex(expected)]: "the pattern with the region zeroed", [sha256Hex(pattern)]: "the pattern, region not zeroed" }))
  assert.is(copies.sums[healthy.master], sha256Hex(expected), "the master's copy is the pattern with the region zeroed")
})

// ---- 3. A volume deleted while a node is down, created again with the same name and size

/**
 * Deletes `volume` while `holder(view)`'s node is down, creates it again, revives the node and
 * makes it a replica of the new volume: killing the new master promotes its replica and leaves
 * the revived node the only free one, so the controller places the missing replica there.
 */
const deletedWhileAway = (title: string, options: FuseClusterOptions, volume: string, seed: number, holder: (v: { master: string; replica: string }) => string) => {
  const s = drillSuite(title, options)
  s.it("the re-created volume reads all zeros and its copies are identical once healthy with the returning node as a replica", async () => {
    const cluster = s.drill.cluster!
    const file = `${cluster.mount}/${volume}`
    const step = stepLog(title.replace(/^durability: /, "").split(" (")[0]!)
    await cluster.createVolume(volume, volumeSize, { "storageos.com/replicas": "1" })
    // A second volume with a copy on every node, deleted for good while the node is away: the
    // returning node must remove its copy, which no record claims any more (copies.ts `sweepUnclaimed`).
    const gone = `${volume}-gone`
    await cluster.createVolume(gone, "4MiB", { "storageos.com/replicas": "2" })
    const oldSha = sha256Hex(await writePatternFile(patternPath(cluster, "old"), volumeMiB * mibBytes, seed))
    await ddWrite(patternPath(cluster, "old"), file, 0, volumeMiB)
    const old = await cluster.inspectCli(volume)
    const away = holder({ master: old.master, replica: old.replicas[0]!.node })
    step(`pattern written; killing ${away} (old volume: master ${old.master}, replica ${old.replicas[0]!.node}), then volume rm`)
    await nodeDrill(cluster, "kill", away)
    const removed = await cluster.cli("volume", "rm", volume)
    assert.is(removed.code, 0, `volume rm ${volume}: ${removed.stderr}`)
    assert.ok(await exists(cluster.copyPath(away, gone)), `${away} holds a copy of ${gone} before it is deleted`)
    const removedGone = await cluster.cli("volume", "rm", gone)
    assert.is(removedGone.code, 0, `volume rm ${gone}: ${removedGone.stderr}`)
    const others = copyNodes(old).filter((n) => n !== away)
    await pollFor(30_000, async () => {
      if (await exists(file)) return undefined
      for (const node of others) if (await exists(cluster.copyPath(node, volume))) return undefined
      return true
    }, () => `${volume} was deleted but ${file} or a copy on ${others.join(", ")} is still there`)

    step("deleted; creating it again")
    const recreated = await cluster.createVolume(volume, volumeSize, { "storageos.com/replicas": "1" })
    step(`created again: master ${recreated.master}, replicas ${JSON.stringify(recreated.replicas)}`)
    assert.is(await mountedSha(file, 0, volumeMiB), zeroSha, "the new volume reads all zeros while the node is away")
    await nodeDrill(cluster, "revive", away)
    await pollFor(30_000, async () => ((await exists(cluster.copyPath(away, gone))) ? undefined : true),
      () => `${away} came back and still holds ${cluster.copyPath(away, gone)}, a copy of ${gone}, which was deleted while it was away\nrecent events:\n${volumeEvents(cluster, gone)}`)
    const created = await cluster.inspectCli(volume)
    assert.not.ok(copyNodes(created).includes(away), `the new volume was placed without the killed node: ${JSON.stringify(created)}`)
    step(`${away} revived; killing the new master ${created.master} so that ${away} is placed as the replica`)
    await nodeDrill(cluster, "kill", created.master)
    const healthy = await cluster.waitVolume(volume, `healthy with ${away} as an in-sync replica`, settleMs, (v) =>
      v.health === "healthy" && v.master !== created.master && v.replicas.length === 1 && v.replicas[0]!.node === away && v.replicas[0]!.state === "in-sync")
    step(`healthy: master ${healthy.master}, ${JSON.stringify(healthy.replicas)}`)
    const read = await mountedSha(file, 0, volumeMiB)
    assert.is(read, zeroSha, `the re-created volume reads all zeros through the mount\nrecent events:\n${volumeEvents(cluster, volume)}`)
    const copies = await settleCopies(cluster, volume, copyNodes(healthy), copiesSettleMs)
    assert.ok(copies.identical, describeCopies(cluster, volume, copies, { [zeroSha]: "all zeros", [oldSha]: "the deleted volume's pattern" }))
    assert.is(copies.sums[away], zeroSha, `the returning node's copy is all zeros`)
  })
  return s
}

const threeA = deletedWhileAway("durability: deleted and re-created while a replica's node was down (replicas=1, 3 nodes)",
  { nodes: 3, hostBase: "127.0.12.", port: 28793, apiPort: 28795 }, "dur/again", 0x5eed03, (v) => v.replica)
const threeB = deletedWhileAway("durability: deleted and re-created while the master's node was down (replicas=1, 3 nodes)",
  { nodes: 3, hostBase: "127.0.13.", port: 28803, apiPort: 28805 }, "dur/again", 0x5eed04, (v) => v.master)

one.Suite.run()
two.Suite.run()
threeA.Suite.run()
threeB.Suite.run()
