/**
 * A replica's disk fills up under writes, on a real `replivol cluster up` (3 nodes, FUSE mount):
 * soft mode keeps the volume usable with that replica failed, nothing acknowledged is lost, and
 * once the disk has room again the copy is caught up and byte-identical.
 *
 * Setup: n3's data directory is a 128 MiB ext4 image on a loop device with a ballast file that
 * leaves 40 MiB free (n3 is killed, the file system mounted under `<data>/n3` while it holds no
 * copy yet, n3 revived). A 64 MiB volume with
 * replicas=2, failure.mode=soft (tolerance 1) and hint.master=n1 must put a replica on n3: the
 * master is n1 and two replicas need both other nodes.
 *
 * Drill: a seeded 64 MiB pattern is written through the mount with O_DIRECT and an fsync (dd);
 * n3 runs out of space part-way. dd must succeed, n3's file system must be full and its replica
 * not in sync, the volume usable. A second pattern is written over 8 MiB and flushed while n3 is
 * still full. The mounted file reads back exactly what was written. For 5 s more the disk stays
 * full: the volume must stay usable and n3's replica never be called in sync. Then the ballast is deleted
 * (space returns; an online resize2fs would need CAP_SYS_RESOURCE, often missing in a
 * container): the volume must be healthy again within `recoverWithinMs`, and all three copies
 * sha256-identical to what was written.
 *
 * Cleanup (`after`): the cluster is stopped first (no copy open on the small disk), then the
 * ext4 unmounted and the loop device this test attached detached, then the temp root removed.
 */
import { dirname } from "node:path"
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { loudHook, pollFor, sleep, startFuseCluster, type FuseCluster } from "./support-cluster.ts"
import {
  copyNodes, ddWrite, describeCopies, mibBytes, mountedSha, mountSmallDisk, nodeDrill, settleCopies, sha256Hex,
  stepLog, volumeEvents, writePatternFile, type SmallDisk,
} from "./support-durability.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster disk-full tests skipped: ${skipReason}`)

const volume = "full/vol"
const volumeMiB = 64
/** The small disk: room for a copy once the ballast is gone, but only `freeMiB` before. */
const diskMiB = 128
/** Less than one copy: the replica must run out of space. */
const freeMiB = 40
const smallNode = "n3"
const masterNode = "n1"
/** The region written again while the small disk is full. */
const region = { offsetMiB: 16, countMiB: 8 }
/** Bound from the space's return to a healthy volume: one revive attempt a second, then a full sync of 64 MiB. */
const recoverWithinMs = 60_000
/** How long the disk stays full after the writes, watched: the master's revive attempts must fail cleanly. */
const fullWatchMs = 5_000
/** Bound of each wait for a node or a replica state. */
const settleMs = 60_000

const Full = suite("disk full: a replica's file system fills up under writes (replicas=2, soft, 3 nodes)")
const it = skipReason === undefined ? Full : Full.skip
const context = { cluster: undefined as FuseCluster | undefined, disk: undefined as SmallDisk | undefined }

Full.before(loudHook("before", async () => {
  if (skipReason !== undefined) return
  context.cluster = await startFuseCluster({ nodes: 3, hostBase: "127.0.20.", port: 28903, apiPort: 28905 })
}))

Full.after(loudHook("after", async () => {
  const { cluster, disk } = context
  try {
    if (cluster !== undefined) await cluster.stop()
  } finally {
    try {
      if (disk !== undefined) await disk.release()
    } finally {
      if (cluster !== undefined) await cluster.remove()
    }
  }
}))

interface NodeRow {
  readonly name: string
  readonly state: string
}

/** Waits until `node ls --json` shows `node` up (registered and running). */
const waitNodeUp = (cluster: FuseCluster, node: string) =>
  pollFor(settleMs, async () => {
    const listed = await cluster.cli("node", "ls", "--json")
    if (listed.code !== 0) return undefined
    return (JSON.parse(listed.stdout) as Array<NodeRow>).some((row) => row.name === node && row.state === "up") ? true : undefined
  }, () => `${node} was not up within ${settleMs} ms`)

it("soft mode keeps the volume usable while a replica's disk is full; once it has room the copy is caught up", async () => {
  const cluster = context.cluster!
  const file = `${cluster.mount}/${volume}`
  const root = dirname(cluster.data)
  const step = stepLog("disk full")

  await nodeDrill(cluster, "kill", smallNode)
  context.disk = await mountSmallDisk(`${root}/${smallNode}-disk.img`, diskMiB, freeMiB, `${cluster.data}/${smallNode}`)
  const disk = context.disk
  await nodeDrill(cluster, "revive", smallNode)
  await waitNodeUp(cluster, smallNode)
  const freeBefore = await disk.freeBytes()
  step(`${smallNode}'s data directory is a ${diskMiB} MiB ext4 on ${disk.device} with a ballast (${(freeBefore / mibBytes).toFixed(1)} MiB free)`)
  assert.ok(freeBefore < volumeMiB * mibBytes, `the small disk holds less than one copy (${freeBefore} bytes free)`)

  const created = await cluster.createVolume(volume, `${volumeMiB}MiB`, {
    "storageos.com/replicas": "2", "storageos.com/failure.mode": "soft", "storageos.com/hint.master": masterNode,
  })
  assert.is(created.master, masterNode, "the hinted master")
  assert.ok(created.replicas.some((r) => r.node === smallNode), `a replica on the small disk: ${JSON.stringify(created.replicas)}`)
  const otherReplica = created.replicas.find((r) => r.node !== smallNode)!.node

  const patternPath = `${root}/full.pattern`
  const pattern = await writePatternFile(patternPath, volumeMiB * mibBytes, 0xf011)
  await ddWrite(patternPath, file, 0, volumeMiB)
  step(`${volumeMiB} MiB written and flushed through the mount`)
  const degraded = await cluster.waitVolume(volume, `usable with the replica on ${smallNode} not in sync`, settleMs, (v) =>
    v.usable && v.replicas.some((r) => r.node === smallNode && r.state !== "in-sync"))
  const freeFull = await disk.freeBytes()
  const failedLines = cluster.log().split("\n").filter((line) => /\sreplica-failed\s/.test(line)).map((line) => `\n    ${line.trim()}`).join("")
  step(`${smallNode} has ${freeFull} bytes free; volume ${degraded.health}: ${degraded.reason}${failedLines}`)
  assert.ok(freeFull < mibBytes, `the small disk filled up (${freeFull} bytes free)`)
  assert.is(degraded.health, "degraded", "degraded, not healthy, with a copy missing writes")
  assert.ok(degraded.replicas.some((r) => r.node === otherReplica && r.state === "in-sync"), `the other replica stayed in sync: ${JSON.stringify(degraded.replicas)}`)

  // Writes go on while the disk is still full: a second pattern over the region, flushed.
  const regionPath = `${root}/region.pattern`
  const regionBytes = await writePatternFile(regionPath, region.countMiB * mibBytes, 0xf012)
  await ddWrite(regionPath, file, region.offsetMiB, region.countMiB)
  const expected = pattern.slice()
  expected.set(regionBytes, region.offsetMiB * mibBytes)
  const expectedSha = sha256Hex(expected)
  assert.is(await mountedSha(file, 0, volumeMiB), expectedSha,
    `the mounted file reads back every acknowledged write while ${smallNode} is full\nrecent events:\n${volumeEvents(cluster, volume)}`)
  step(`${region.countMiB} MiB rewritten at ${region.offsetMiB} MiB while degraded; everything reads back`)
  // While the disk stays full the master keeps trying to bring the replica back (about once a
  // second): each attempt must fail, never call the copy in sync, and leave the volume usable.
  const watchEndMs = performance.now() + fullWatchMs
  while (performance.now() < watchEndMs) {
    const view = await cluster.inspect(volume)
    assert.ok(view.usable && view.replicas.some((r) => r.node === smallNode && r.state !== "in-sync"),
      `with ${smallNode}'s disk still full the volume is usable and its replica there not in sync: ${JSON.stringify(view)}`)
    await sleep(250)
  }
  step(`${fullWatchMs / 1000} s with the disk full: usable throughout, ${smallNode} never in sync`)

  await disk.returnSpace()
  const spaceMs = performance.now()
  step(`ballast deleted: ${((await disk.freeBytes()) / mibBytes).toFixed(1)} MiB free`)
  const healthy = await cluster.waitVolume(volume, "healthy with both replicas in sync", recoverWithinMs, (v) =>
    v.health === "healthy" && v.replicas.length === 2 && v.replicas.every((r) => r.state === "in-sync"))
  const recoveredMs = performance.now() - spaceMs
  step(`healthy ${(recoveredMs / 1000).toFixed(1)} s after the space returned: ${JSON.stringify(healthy.replicas)}`)
  assert.is(healthy.master, masterNode, "the master did not move")

  const copies = await settleCopies(cluster, volume, copyNodes(healthy), 5_000)
  assert.ok(copies.identical, describeCopies(cluster, volume, copies, { [expectedSha]: "everything written", [sha256Hex(pattern)]: "the first pattern only" }))
  assert.is(copies.sums[smallNode], expectedSha, `the copy on ${smallNode} holds everything written`)
  assert.is(await mountedSha(file, 0, volumeMiB), expectedSha, "the mounted file still reads everything written")
})

Full.run()
