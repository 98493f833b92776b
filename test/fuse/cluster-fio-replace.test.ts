/**
 * fio randwrite, iodepth 32, O_DIRECT, crc32c verify, through the FUSE mount of a real
 * `replivol cluster up` (3 nodes) while the volume's replica is replaced: the volume becomes
 * healthy within a stated bound, every fio verify passes, and the copies are sha256-identical.
 *
 * The volume: 128 MiB, replicas=1, failure.mode=soft, hint.master=n1, filled with a seeded
 * pattern first (so a full sync has every byte to copy). fio runs in rounds, back to back, from
 * before the fault until a round that started after the volume was healthy has finished: each
 * round writes 32 MiB of 4 KiB blocks at random offsets over the whole volume (its own seed, so
 * no two rounds write the same bytes), then reads every block back and checks its crc32c.
 *
 * 1. Replaced after the grace period: the replica's node is killed and kept dead; after the
 *    grace period (8 s here: `cluster up --grace-ms`) the controller places a new replica on
 *    the free node, which is fully synced. Bound: healthy within grace + `syncWithinMs` of the kill.
 * 2. Wiped and revived: the replica's node is killed, its data directory emptied and the node
 *    revived: its copy is empty, so the master must sync all of it. Bound: healthy within
 *    `syncWithinMs` of the revive.
 *
 * Then, with no IO in flight, the master's copy and the replica's are sha256-identical and equal
 * to what the mount reads. Each suite runs its own cluster, always stopped and removed in `after`.
 */
import * as assert from "uvu/assert"
import { dirname } from "node:path"
import { clusterSuite, type FuseCluster, type FuseClusterOptions, type VolumeView } from "./support-cluster.ts"
import { fioRoundsSummary, underFioLoad } from "./support-fio-load.ts"
import {
  copyNodes, ddWrite, describeCopies, mibBytes, mountedSha, nodeDrill, settleCopies, stepLog, volumeEvents, wipeNodeData, writePatternFile,
} from "./support-durability.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster fio-replace tests skipped: ${skipReason}`)

const volume = "replace/vol"
const volumeMiB = 128
const masterNode = "n1"
/** Drill 1's grace period (`cluster up --grace-ms`; the default is 30 s): short, so the replacement comes soon. */
const graceMs = 8_000
/** Bound of a full sync of the volume under the fio load, and of noticing it. */
const syncWithinMs = 60_000
/** Bound of each other wait (the replica marked failed). */
const settleMs = 60_000
/** Bound of one fio round (32 MiB of 4 KiB writes and their verify reads); a round normally takes seconds. */
const roundTimeoutMs = 180_000
/** Bound of the whole fio load: the slowest drill's waits plus two rounds. */
const loadMaxMs = graceMs + syncWithinMs + settleMs + 2 * roundTimeoutMs
/** How long fio runs before the fault. */
const leadMs = 3_000

const roundArgs = (file: string, index: number) =>
  `--name=replace-${index} --filename=${file} --rw=randwrite --bs=4k --size=${volumeMiB}M --io_size=32M --randseed=${0xf10 + index} ` +
  `--direct=1 --ioengine=libaio --iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`

const drillSuite = (title: string, options: FuseClusterOptions) => clusterSuite(title, options, skipReason)

/** The cluster log's sync lines about `node` from the `fromChars`th character on (what the resync copied), for the step log. */
const syncLines = (cluster: FuseCluster, node: string, fromChars: number): string =>
  cluster.log().slice(fromChars).split("\n").filter((line) => /\s(sync-started|sync-done)\s/.test(line) && line.includes(`replica ${node}`)).map((line) => `\n    ${line.trim()}`).join("")

/** Creates the volume and fills it with a seeded pattern (flushed); the first view. */
const createFilled = async (cluster: FuseCluster, seed: number): Promise<VolumeView> => {
  const created = await cluster.createVolume(volume, `${volumeMiB}MiB`, {
    "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft", "storageos.com/hint.master": masterNode,
  })
  assert.is(created.master, masterNode, "the hinted master")
  const patternPath = `${dirname(cluster.data)}/replace.pattern`
  await writePatternFile(patternPath, volumeMiB * mibBytes, seed)
  await ddWrite(patternPath, `${cluster.mount}/${volume}`, 0, volumeMiB)
  return created
}

/**
 * Runs the fio load while `fault` replaces the replica (it returns once the volume is healthy,
 * with the healthy view); then checks every round and the copies.
 */
const underLoad = async (cluster: FuseCluster, step: (what: string) => void, fault: () => Promise<VolumeView>) => {
  const file = `${cluster.mount}/${volume}`
  const { result: healthy, rounds, doneAtMs: healthyAtMs } = await underFioLoad({
    roundArgs: (index) => roundArgs(file, index), roundBytes: 32 * mibBytes, roundTimeoutMs,
    maxMs: loadMaxMs, leadMs, context: () => `recent events:\n${volumeEvents(cluster, volume)}`,
  }, fault)
  step(fioRoundsSummary(rounds))
  assert.ok(rounds[0]!.startedMs + leadMs < healthyAtMs, "fio ran from before the fault")
  const view = await cluster.waitVolume(volume, "healthy after the load", 10_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  const copies = await settleCopies(cluster, volume, copyNodes(view), 5_000)
  assert.ok(copies.identical, describeCopies(cluster, volume, copies))
  assert.is(await mountedSha(file, 0, volumeMiB), copies.sums[view.master], "the mount reads what the copies hold")
  return { view: healthy, rounds }
}

// ---- 1. The replica's node stays dead: a new replica is placed after the grace period

const one = drillSuite("fio verify while a dead replica is replaced after the grace period (replicas=1, 3 nodes)", { nodes: 3, hostBase: "127.0.21.", port: 28913, apiPort: 28915, graceMs })

one.it(`fio randwrite iodepth=32 verify=crc32c passes; healthy on the free node within ${(graceMs + syncWithinMs) / 1000} s of the kill; copies identical`, async () => {
  const cluster = one.drill.cluster!
  const step = stepLog("replaced")
  const created = await createFilled(cluster, 0xf1e1)
  const dead = created.replicas[0]!.node
  const free = ["n1", "n2", "n3"].find((n) => n !== masterNode && n !== dead)!
  step(`${volumeMiB} MiB pattern written; fio starts; replica ${dead} will be killed, ${free} is free`)
  let killedMs = 0
  const { view } = await underLoad(cluster, step, async () => {
    const logChars = cluster.log().length
    await nodeDrill(cluster, "kill", dead)
    killedMs = performance.now()
    await cluster.waitVolume(volume, `showing the replica on ${dead} failed`, settleMs, (v) => v.replicas.some((r) => r.node === dead && r.state === "failed"))
    step(`${dead} killed and its replica failed`)
    const placed = await cluster.waitVolume(volume, `given a replica on ${free}`, graceMs + settleMs, (v) => v.replicas.some((r) => r.node === free))
    step(`replica placed on ${free} ${((performance.now() - killedMs) / 1000).toFixed(1)} s after the kill: ${JSON.stringify(placed.replicas)}`)
    const healthy = await cluster.waitVolume(volume, `healthy with ${free} in sync`, graceMs + syncWithinMs - (performance.now() - killedMs), (v) =>
      v.health === "healthy" && v.replicas.length === 1 && v.replicas[0]!.node === free && v.replicas[0]!.state === "in-sync")
    step(`healthy ${((performance.now() - killedMs) / 1000).toFixed(1)} s after the kill${syncLines(cluster, free, logChars)}`)
    return healthy
  })
  assert.is(view.master, masterNode, "the master did not move")
  assert.equal(copyNodes(view), [masterNode, free], "the copies are on the master and the new replica")
})

// ---- 2. The replica's node is wiped and revived: its empty copy needs a full sync

const two = drillSuite("fio verify while a wiped replica is fully resynced (replicas=1, 3 nodes)", { nodes: 3, hostBase: "127.0.22.", port: 28923, apiPort: 28925 })

two.it(`fio randwrite iodepth=32 verify=crc32c passes; healthy within ${syncWithinMs / 1000} s of the revive; copies identical`, async () => {
  const cluster = two.drill.cluster!
  const step = stepLog("wiped")
  const created = await createFilled(cluster, 0xf1e2)
  const wiped = created.replicas[0]!.node
  step(`${volumeMiB} MiB pattern written; fio starts; replica ${wiped} will be killed, wiped and revived`)
  const { view } = await underLoad(cluster, step, async () => {
    const logChars = cluster.log().length
    await nodeDrill(cluster, "kill", wiped)
    await cluster.waitVolume(volume, `showing the replica on ${wiped} failed`, settleMs, (v) => v.replicas.some((r) => r.node === wiped && r.state === "failed"))
    await wipeNodeData(cluster, wiped)
    await nodeDrill(cluster, "revive", wiped)
    const revivedMs = performance.now()
    step(`${wiped} killed, its replica failed, data wiped, node revived`)
    const healthy = await cluster.waitVolume(volume, `healthy with ${wiped} in sync again`, syncWithinMs, (v) =>
      v.health === "healthy" && v.replicas.length === 1 && v.replicas[0]!.node === wiped && v.replicas[0]!.state === "in-sync")
    step(`healthy ${((performance.now() - revivedMs) / 1000).toFixed(1)} s after the revive${syncLines(cluster, wiped, logChars)}`)
    return healthy
  })
  assert.is(view.master, masterNode, "the master did not move")
})

one.Suite.run()
two.Suite.run()
