/**
 * fio randwrite with crc32c verify, iodepth 16, O_DIRECT, through the FUSE mount of a real
 * `replivol cluster up` (3 nodes) while the volume's master moves (`replivol volume move`: to its
 * in-sync replica, then to the free node, whose copy is synced first) and while its master's node
 * is drained (`replivol node drain`): every fio round passes its verify (nothing acknowledged is
 * lost), no IO error reaches fio (the mount pauses and retries on the new master), the volume ends
 * healthy, `replivol volume verify` finds the copies identical, and they are sha256-identical to
 * what the mount reads. A move to an unknown node and a drain of an unknown node are refused
 * (exit 1) with the reason, and change nothing.
 *
 * The volume: 64 MiB, replicas=1, failure.mode=soft, hint.master=n1, filled with a seeded pattern
 * first. fio runs in rounds of 8 MiB of 4 KiB writes at random offsets (each its own seed), each
 * read back and checked, from before the first operation until a round that started after the last
 * one finished has finished.
 */
import * as assert from "uvu/assert"
import { dirname } from "node:path"
import { clusterSuite, sleep, type FuseCluster, type FuseClusterOptions, type VolumeView } from "./support-cluster.ts"
import { fioRoundsSummary, underFioLoad } from "./support-fio-load.ts"
import { copyNodes, ddWrite, describeCopies, mibBytes, mountedSha, settleCopies, stepLog, volumeEvents, writePatternFile } from "./support-durability.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster fio-move tests skipped: ${skipReason}`)

const volume = "move/vol"
const volumeMiB = 64
const roundMiB = 8
/** Bound of one fio round; a round normally takes seconds. */
const roundTimeoutMs = 180_000
/** Bound of the operations under load (each move or drain syncs at most one 64 MiB copy). */
const operationsMaxMs = 180_000
/** How long fio runs before the first operation. */
const leadMs = 2_000

const roundArgs = (file: string, index: number) =>
  `--name=move-${index} --filename=${file} --rw=randwrite --bs=4k --size=${volumeMiB}M --io_size=${roundMiB}M --randseed=${0xa70 + index} ` +
  `--direct=1 --ioengine=libaio --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`

const drillSuite = (title: string, options: FuseClusterOptions) => clusterSuite(title, options, skipReason)

const createFilled = async (cluster: FuseCluster, seed: number): Promise<VolumeView> => {
  const created = await cluster.createVolume(volume, `${volumeMiB}MiB`, { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft", "storageos.com/hint.master": "n1" })
  assert.is(created.master, "n1", "the hinted master")
  const patternPath = `${dirname(cluster.data)}/move.pattern`
  await writePatternFile(patternPath, volumeMiB * mibBytes, seed)
  await ddWrite(patternPath, `${cluster.mount}/${volume}`, 0, volumeMiB)
  return created
}

/** `replivol ARGS` as a user runs it; its stdout, or a throw naming the exit code and stderr. */
const cli = async (cluster: FuseCluster, ...args: string[]): Promise<string> => {
  const result = await cluster.cli(...args)
  if (result.code !== 0) throw new Error(`replivol ${args.join(" ")} failed (${result.code}): ${result.stderr}\n${volumeEvents(cluster, volume)}`)
  return result.stdout
}

/** fio rounds back to back while `operations` run; then every round, the health and the copies are checked. */
const underLoad = async (cluster: FuseCluster, step: (what: string) => void, operations: () => Promise<void>) => {
  const file = `${cluster.mount}/${volume}`
  const { rounds } = await underFioLoad({
    roundArgs: (index) => roundArgs(file, index), roundBytes: roundMiB * mibBytes, roundTimeoutMs,
    maxMs: operationsMaxMs + 2 * roundTimeoutMs, leadMs, context: () => `recent events:\n${volumeEvents(cluster, volume)}`,
  }, operations)
  step(fioRoundsSummary(rounds))
  const view = await cluster.waitVolume(volume, "healthy after the load", 30_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  const verified = await cli(cluster, "volume", "verify", volume)
  step(`volume verify: ${verified.trim().split("\n").slice(-3).join(" | ")}`)
  const copies = await settleCopies(cluster, volume, copyNodes(view), 5_000)
  assert.ok(copies.identical, describeCopies(cluster, volume, copies))
  assert.is(await mountedSha(file, 0, volumeMiB), copies.sums[view.master], "the mount reads what the copies hold")
  return view
}

// ---- volume move: to the in-sync replica, then to the free node (a copy synced there first)

const move = drillSuite("fio verify through the mount while the volume's master moves (replicas=1, 3 nodes)", { nodes: 3, hostBase: "127.0.23.", port: 28933, apiPort: 28935 })

move.it("fio randwrite iodepth=16 verify=crc32c passes through two moves; epoch rises; copies identical; bad moves refused", async () => {
  const cluster = move.drill.cluster!
  const step = stepLog("move")
  const created = await createFilled(cluster, 0xa701)
  const replica = created.replicas[0]!.node
  const free = ["n2", "n3"].find((n) => n !== replica)!
  const unknown = await cluster.cli("volume", "move", volume, "--to", "n9")
  assert.is(unknown.code, 1, "a move to an unknown node exits 1")
  assert.match(unknown.stderr, /node n9 is not known.*nothing was changed/)
  const toMaster = await cluster.cli("volume", "move", volume, "--to", "n1")
  assert.is(toMaster.code, 1)
  assert.match(toMaster.stderr, /already its master/)
  assert.is((await cluster.inspect(volume)).epoch, created.epoch, "the refused moves changed nothing")
  step(`pattern written; fio starts; the master moves n1 → ${replica} (in-sync replica), then → ${free} (no copy yet)`)
  const view = await underLoad(cluster, step, async () => {
    step(await cli(cluster, "volume", "move", volume, "--to", replica).then((out) => out.trim().split("\n").pop()!))
    const first = await cluster.inspect(volume)
    assert.is(first.master, replica)
    assert.ok(first.epoch > created.epoch, "the epoch rose")
    await sleep(1500)
    step(await cli(cluster, "volume", "move", volume, "--to", free).then((out) => out.trim().split("\n").pop()!))
  })
  assert.is(view.master, free, "the master is on the node it was moved to")
  assert.equal(view.replicas.map((r) => r.node), ["n1"], `${replica}'s copy (the old master) was dropped; n1 stayed the replica`)
})

// ---- node drain: the master's node is emptied

const drain = drillSuite("fio verify through the mount while the master's node is drained (replicas=1, 3 nodes)", { nodes: 3, hostBase: "127.0.24.", port: 28943, apiPort: 28945 })

drain.it("fio randwrite iodepth=16 verify=crc32c passes through a drain of n1; n1 ends empty and cordoned; copies identical", async () => {
  const cluster = drain.drill.cluster!
  const step = stepLog("drain")
  const created = await createFilled(cluster, 0xa702)
  const unknown = await cluster.cli("node", "drain", "n9")
  assert.is(unknown.code, 1, "a drain of an unknown node exits 1")
  assert.match(unknown.stderr, /node n9 is not known/)
  const replica = created.replicas[0]!.node
  step(`pattern written; fio starts; n1 (the master) is drained, ${replica} holds the replica`)
  const view = await underLoad(cluster, step, async () => {
    step(await cli(cluster, "node", "drain", "n1").then((out) => out.trim().split("\n").pop()!))
  })
  assert.ok(view.master !== "n1" && view.replicas.every((r) => r.node !== "n1"), `n1 holds nothing: ${JSON.stringify(view)}`)
  assert.ok(view.epoch > created.epoch, "the master moved at a higher epoch")
  const nodes = JSON.parse(await cli(cluster, "node", "ls", "--json")) as Array<{ name: string; cordoned: boolean }>
  assert.is(nodes.find((n) => n.name === "n1")?.cordoned, true, "n1 stays cordoned")
})

move.Suite.run()
drain.Suite.run()
