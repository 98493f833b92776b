/**
 * Event-loop delay and spurious failovers under full write load (issue: synchronous file IO must
 * not stall a node's event loop past its lease).
 *
 * A local cluster of 3 nodes in this process (real TCP on loopback, sparse files in a temp dir,
 * default lease TTL 1000 ms) serves one replicas=2 volume. A writer keeps `depth` 1 MiB writes in
 * flight (plus a flush every 64 MiB) for `--gib` GiB (the burst) or for `--minutes` minutes (the
 * soak), while `perf_hooks.monitorEventLoopDelay` samples the loop's delay. It prints p50 / p99 /
 * max delay, the throughput, and every event that would mean a spurious failover: a replica
 * failed, a lease lost, a promotion, an epoch change. Exits 1 if any happened or if the max delay
 * reached the lease's validity window (0.75 × TTL).
 *
 * Usage: node --import tsx test/soak/eventloop.ts [--gib 1] [--minutes 10] [--depth 8]
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLocalCluster } from "../../lib/index.ts"
import type { ClusterEvent } from "../../lib/cluster/clusterNode.ts"

const flag = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at < 0 ? fallback : Number(process.argv[at + 1])
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${process.argv[at + 1]}`)
  return value
}
const gib = flag("gib", 1)
const minutes = process.argv.includes("--minutes") ? flag("minutes", 10) : undefined
const depth = flag("depth", 8)
const leaseTtlMs = 1000
const chunkBytes = 1 << 20
const volumeBytes = 2 * 1024 * chunkBytes

const alarming = new Set(["replica-failed", "lease-lost", "master-closed", "master-stepped-down", "controller-action", "superseded"])
const dir = mkdtempSync(join(tmpdir(), "replivol-soak-"))
const alarms: ClusterEvent[] = []
const cluster = await createLocalCluster({
  nodes: 3, hostBase: "127.0.40.", port: 25703, dataDir: dir,
  node: { leaseTtlMs },
  onEvent: (event) => {
    if (process.env.SOAK_TRACE) console.error(`${event.kind} ${event.node}: ${event.message}`)
    if (alarming.has(event.kind) && !/replica placed/.test(event.message)) alarms.push(event)
  },
})
const histogram = monitorEventLoopDelay({ resolution: 5 })
try {
  await cluster.createVolume("soak/v", volumeBytes, { "storageos.com/replicas": "2" })
  const before = await cluster.waitHealthy("soak/v", 60_000)
  alarms.length = 0
  const volume = await cluster.openVolume("soak/v")
  const data = new Uint8Array(chunkBytes).map((_, i) => (i * 2654435761) >>> 24)
  const deadline = minutes === undefined ? Infinity : performance.now() + minutes * 60_000
  const totalChunks = minutes === undefined ? gib * 1024 : Infinity
  let issued = 0
  let written = 0
  const started = performance.now()
  histogram.enable()
  const worker = async () => {
    while (issued < totalChunks && performance.now() < deadline) {
      const index = issued++
      await volume.write(((index * chunkBytes) % volumeBytes), data)
      written++
      if (written % 64 === 0) await volume.flush()
    }
  }
  await Promise.all(Array.from({ length: depth }, worker))
  await volume.flush()
  histogram.disable()
  const seconds = (performance.now() - started) / 1000
  const info = await cluster.inspectVolume("soak/v")
  const ms = (nanos: number) => (nanos / 1e6).toFixed(1)
  console.log(`wrote ${written} MiB in ${seconds.toFixed(1)} s (${(written / seconds).toFixed(0)} MiB/s), depth ${depth}, replicas=2, lease TTL ${leaseTtlMs} ms`)
  console.log(`event-loop delay: p50 ${ms(histogram.percentile(50))} ms, p99 ${ms(histogram.percentile(99))} ms, max ${ms(histogram.max)} ms (lease validity window ${leaseTtlMs * 0.75} ms)`)
  console.log(`volume at the end: ${info.health}, epoch ${info.epoch}, master ${info.master}, replicas ${info.replicas.map((r) => `${r.node}:${r.state}`).join(" ")}`)
  for (const alarm of alarms) console.log(`  spurious: ${alarm.kind} on ${alarm.node}: ${alarm.message}`)
  // A new volume's first epoch is the control store's revision + 1: compare with the epoch it had when the load began.
  if (info.epoch !== before.epoch || info.master !== before.master) console.log(`  spurious: the master changed from ${before.master} at epoch ${before.epoch} to ${info.master} at epoch ${info.epoch}`)
  const ok = alarms.length === 0 && info.epoch === before.epoch && info.master === before.master && histogram.max / 1e6 < leaseTtlMs * 0.75
  console.log(ok ? "no spurious failover" : "FAILED: a failover or lease risk happened under load")
  await volume.close()
  process.exitCode = ok ? 0 : 1
} finally {
  await cluster.close()
  rmSync(dir, { recursive: true, force: true })
}
