/**
 * Failover with no spare node: a soft replicas=2 volume on a 3-node cluster, fio with crc32c
 * verification writing its FUSE file while `replivol node kill <master>` crashes the master's node.
 * Soft mode tolerates one missing replica, so IO must continue on the promoted replica (a pause,
 * never an error), and the volume must be usable (degraded: one in-sync replica, nowhere to place
 * a second) under a new master.
 */
import * as assert from "uvu/assert"
import { clusterSuite, fio, sleep, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster degraded-failover tests skipped: ${skipReason}`)
const volume = "nospare/vol"
const { Suite: Degraded, it, drill: context } = clusterSuite("fio verify across a master kill with no spare node (soft, replicas=2, 3 nodes)", { nodes: 3, hostBase: "127.0.9.", port: 28763, apiPort: 28765, leaseTtlMs: 1500 }, skipReason, async (cluster) => {
  await cluster.createVolume(volume, "64MiB", { "storageos.com/replicas": "2" })
})

it("fio finishes with zero errors; the promoted master serves the volume with its one remaining replica", async () => {
  const cluster = context.cluster!
  const before = await cluster.inspect(volume)
  const running = fio(
    `--name=nospare --filename=${cluster.mount}/${volume} --rw=randwrite --bs=4k --size=16M --direct=1 --ioengine=libaio --iodepth=4 ` +
      `--verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`,
    300_000,
  )
  await sleep(3_000)
  await cluster.killNode(before.master)
  const run = await running
  const events = cluster.log().split("\n").filter((line) => line.includes(volume)).slice(-8).join("\n")
  assert.is(run.code, 0, `fio failed across the failover: ${run.stderr.split("\n").slice(0, 4).join("\n")}\ncluster events:\n${events}`)
  assert.is(run.jobs[0]?.error, 0)
  const after = await cluster.waitVolume(volume, "usable under a new master", 30_000, (v) => v.usable && v.master !== before.master)
  assert.ok(after.replicas.some((r) => r.state === "in-sync"), JSON.stringify(after))
})

Degraded.run()
