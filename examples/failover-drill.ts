/**
 * Failover drill: a workload keeps writing while the master's node is killed.
 *
 *   node --import tsx examples/failover-drill.ts        (or: bun examples/failover-drill.ts)
 *
 * Three nodes in one process, a volume with one replica. A writer issues 64 KiB writes in a loop
 * through a handle on a node that is not the master; halfway, the master's node crashes (its
 * lease is not revoked, so the controller must wait for it to expire before promoting the
 * replica). The writer sees a pause, not an error. Afterwards every block is read back and
 * checked, and the longest pause is printed.
 *
 * Environment: REPLIVOL_PORT (default 5713), REPLIVOL_HOST_BASE (default 127.0.0.).
 */
import { createLocalCluster } from "../lib/cli/localCluster.ts"

const port = Number(process.env.REPLIVOL_PORT ?? 5713)
const hostBase = process.env.REPLIVOL_HOST_BASE ?? "127.0.0."
const blockBytes = 64 * 1024
const blocks = 160

const cluster = await createLocalCluster({ nodes: 3, hostBase, port, node: { leaseTtlMs: 1000, ackTimeoutMs: 1000 } })
try {
  await cluster.createVolume("drill/data", 16 * 1024 * 1024, { "storageos.com/replicas": "1" })
  const before = await cluster.waitHealthy("drill/data", 30_000)
  console.log(`volume drill/data: master ${before.master}, replica ${before.replicas.map((r) => r.node).join(",")}, epoch ${before.epoch}`)
  const volume = await cluster.openVolume("drill/data")
  const pattern = (i: number) => new Uint8Array(blockBytes).fill((i * 13 + 5) & 0xff)
  let longestMs = 0
  let killedAt = -1
  for (let i = 0; i < blocks; i++) {
    if (i === blocks / 2) {
      killedAt = i
      console.log(`killing ${before.master} (the master) after ${i} writes`)
      await cluster.killNode(before.master!)
    }
    const startedMs = performance.now()
    await volume.write(i * blockBytes, pattern(i))
    longestMs = Math.max(longestMs, performance.now() - startedMs)
  }
  await volume.flush()
  let intact = 0
  for (let i = 0; i < blocks; i++) {
    const back = await volume.read(i * blockBytes, blockBytes)
    if (back.every((b) => b === ((i * 13 + 5) & 0xff))) intact++
  }
  const after = await cluster.inspectVolume("drill/data")
  console.log(`writes: ${blocks} (master killed before write ${killedAt}), errors: 0, retries: ${volume.retries()}`)
  console.log(`longest pause: ${Math.round(longestMs)} ms`)
  console.log(`new master: ${after.master} at epoch ${after.epoch}`)
  console.log(`read back: ${intact}/${blocks} blocks intact`)
  await volume.close()
} finally {
  await cluster.close()
}
