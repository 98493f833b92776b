/**
 * Failover under a running application: fio with crc32c verification writes the FUSE file of a
 * replicas=2 volume (4 nodes: master, two replicas, one spare) while `replivol node kill <master>`
 * crashes the master's node. The write path pauses during the failover and never errors: fio
 * finishes with zero errors and every block verifies. Afterwards `inspect --json` shows the volume
 * healthy again, a different master, and two in-sync replicas — one of them new (on the spare).
 */
import * as assert from "uvu/assert"
import { clusterSuite, fio, pollFor, sha256Of, sleep, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster failover tests skipped: ${skipReason}`)
const volume = "drill/vol"
const { Suite: Failover, it, drill: context } = clusterSuite("fio verify through the mount while the master's node is killed", { nodes: 4, hostBase: "127.0.9.", port: 28723, apiPort: 28725, leaseTtlMs: 1500 }, skipReason, async (cluster) => {
  await cluster.createVolume(volume, "128MiB", { "storageos.com/replicas": "2" })
})

it("fio finishes with zero errors across the kill; the volume is healthy again with a new master and a new replica", async () => {
  const cluster = context.cluster!
  const before = await cluster.inspectCli(volume)
  const file = `${cluster.mount}/${volume}`
  // 4 KiB random writes over 32 MiB at iodepth 4, verified after writing: long enough (tens of
  // seconds here) that the kill lands in the write phase.
  const running = fio(
    `--name=failover --filename=${file} --rw=randwrite --bs=4k --size=32M --direct=1 --ioengine=libaio --iodepth=4 ` +
      `--verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`,
  )
  let fioDone = false
  void running.then(() => (fioDone = true))
  await sleep(3_000)
  assert.not.ok(fioDone, "fio is still writing when the master is killed")
  const killedAtMs = performance.now()
  const kill = await cluster.cli("node", "kill", before.master)
  assert.is(kill.code, 0, kill.stderr)
  const run = await running
  const fioAfterKillMs = performance.now() - killedAtMs
  assert.is(run.code, 0, `fio failed across the failover: ${run.stderr}\ncluster log:\n${cluster.log().slice(-4000)}`)
  const [result] = run.jobs
  assert.ok(result, `fio printed no job: ${run.stdout}`)
  assert.is(result.error, 0)
  assert.is(result.writeBytes, 32 * 1024 * 1024, "every block was written")
  assert.is(result.readBytes, 32 * 1024 * 1024, "every block was read back and verified")
  assert.not.match(run.stderr, /verify|error/i, "no verify complaints")
  console.log(`  fio: ${(run.elapsedMs / 1000).toFixed(1)} s, finished ${(fioAfterKillMs / 1000).toFixed(1)} s after the kill; longest write ${(result.writeMaxLatencyMs / 1000).toFixed(2)} s`)

  const healedAtMs = performance.now()
  const healthy = await cluster.waitVolume(volume, "healthy with a new master and 2 in-sync replicas", 180_000, (v) =>
    v.health === "healthy" && v.master !== before.master && v.replicas.length === 2 && v.replicas.every((r) => r.state === "in-sync"))
  console.log(`  healthy ${((performance.now() - healedAtMs) / 1000).toFixed(1)} s after fio ended: master ${before.master} → ${healthy.master}`)
  const after = await cluster.inspectCli(volume)
  assert.is(after.health, "healthy", "inspect --json says healthy")
  assert.is.not(after.master, before.master, "the master changed")
  assert.ok(after.epoch > before.epoch, `epoch advanced: ${before.epoch} → ${after.epoch}`)
  const nodes = [after.master, ...after.replicas.map((r) => r.node)]
  assert.not.ok(nodes.includes(before.master), "the killed node holds no copy")
  assert.is(new Set(nodes).size, 3)
  assert.ok(after.replicas.some((r) => !before.replicas.some((b) => b.node === r.node)), `a new replica: before ${JSON.stringify(before.replicas)}, after ${JSON.stringify(after.replicas)}`)
  assert.ok(after.replicas.every((r) => r.state === "in-sync"), JSON.stringify(after.replicas))

  // The new copies hold what fio wrote: every copy equals the mounted file once quiesced.
  const sums = await pollFor(30_000, async () => {
    const s = await sha256Of([...nodes.map((node) => cluster.copyPath(node, volume)), file])
    return new Set(s).size === 1 && s[0]!.length === 64 ? s : undefined
  }, () => `the copies of ${volume} on ${nodes.join(", ")} never matched the mounted file`)
  assert.is(sums.length, 4)
})

Failover.run()
