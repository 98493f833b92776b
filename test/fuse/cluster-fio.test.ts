/**
 * fio with crc32c verification through the FUSE file of a real replicas=2 volume (`replivol
 * cluster up`, 3 nodes): random writes of 4 KiB and 64 KiB blocks, iodepth 4, O_DIRECT, verified
 * after writing. Then, with no IO in flight, the master's copy and both replicas' copies on disk
 * are byte-identical to each other and to what the mounted file reads — and still are after the
 * cluster stopped.
 */
import * as assert from "uvu/assert"
import { clusterSuite, fio, sha256Of, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster fio tests skipped: ${skipReason}`)
const volume = "fio/vol"
const { Suite: Fio, it, drill: context } = clusterSuite("fio verify through the mount of a replicas=2 volume", { nodes: 3, hostBase: "127.0.8.", port: 28703, apiPort: 28705 }, skipReason, async (cluster) => {
  await cluster.createVolume(volume, "256MiB", { "storageos.com/replicas": "2" })
})

const jobs = [
  { bs: "4k", size: "64M", offset: "0" },
  { bs: "64k", size: "192M", offset: "64M" },
]
for (const job of jobs) {
  it(`fio randwrite bs=${job.bs} iodepth=4 direct=1 ${job.size} --verify=crc32c: no errors, every block verified`, async () => {
    const cluster = context.cluster!
    const run = await fio(
      `--name=verify-${job.bs} --filename=${cluster.mount}/${volume} --rw=randwrite --bs=${job.bs} --offset=${job.offset} --size=${job.size} ` +
        `--direct=1 --ioengine=libaio --iodepth=4 --verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`,
    )
    assert.is(run.code, 0, `fio failed: ${run.stderr}`)
    const [result] = run.jobs
    const bytes = Number.parseInt(job.size) * 1024 * 1024
    assert.ok(result, `fio printed no job: ${run.stdout}`)
    assert.is(result.error, 0)
    assert.is(result.writeBytes, bytes, "every block was written")
    assert.is(result.readBytes, bytes, "every block was read back and verified")
    assert.not.match(run.stderr, /verify|error/i, "no verify complaints")
    console.log(`  ${job.bs}: ${Math.round(result.writeIops)} write IOPS, ${result.writeMBps.toFixed(1)} MB/s, ${(run.elapsedMs / 1000).toFixed(1)} s with verify`)
  })
}

it("afterwards the master's copy and both replicas are byte-identical (running and after stop)", async () => {
  const cluster = context.cluster!
  const view = await cluster.waitVolume(volume, "healthy with 2 in-sync replicas", 30_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  const nodes = [view.master, ...view.replicas.map((r) => r.node)]
  assert.is(new Set(nodes).size, 3, "master and replicas on three different nodes")
  const copies = nodes.map((node) => cluster.copyPath(node, volume))
  const running = await sha256Of([...copies, `${cluster.mount}/${volume}`])
  assert.ok(running.every((sum) => sum.length === 64), `every copy could be read: ${running.join(" ")}`)
  assert.is(new Set(running).size, 1, `copies differ while quiesced: ${nodes.map((n, i) => `${n}=${running[i]}`).join(" ")} mount=${running[3]}`)
  assert.is(await cluster.stop(), 0, "cluster up exits 0 on SIGTERM")
  const stopped = await sha256Of(copies)
  assert.equal(stopped, running.slice(0, 3), "the copies on disk are unchanged after the cluster stopped")
})

Fio.run()
