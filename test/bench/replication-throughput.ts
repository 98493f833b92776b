/**
 * Replication throughput: sequential 1 MiB writes (256 MiB) and one flush to a volume with 0, 1
 * and 2 replicas (each replica its own OS process, over loopback TCP), against the same writes
 * to a plain local file with fs.writeSync + one fdatasync (the baseline) from the same master
 * process. Targets (from the issue): 1 replica ≥ 0.5× local, 2 replicas ≥ 0.35× local.
 *
 * The volume writes are issued `DEPTH` at a time (8 by default), as a real writer (a file system
 * or a database) keeps several writes in flight. Targets run interleaved (local, 0, 1, 2, then the
 * next trial starting one further along) after one warm-up pass of each, because CPU placement
 * and fresh-memory effects swing results severalfold on this 2-vCPU VM (PLATFORM-NOTES §6); each
 * trial gives a ratio to that trial's local run, and the medians with their ranges are printed.
 *
 * Prints one JSON line on stdout (human lines on stderr).
 * Env: TRIALS (5), TOTAL_MIB (256), DEPTH (8), NOCOMPRESS=1 (label the volumes
 * storageos.com/nocompress=true; the default is the library default, compression on),
 * PAYLOAD (random | half; default random), BENCH_PORT (5703), BENCH_CPU_PROF (dir).
 */
import { MiB } from "../../lib/core/limits.ts"
import { startCluster, type ClusterVolume } from "./support/cluster.ts"
import { median, megabytesPerSecond, round, spread } from "./support/stats.ts"

const trialCount = Number(process.env.TRIALS ?? 5)
const totalBytes = Number(process.env.TOTAL_MIB ?? 256) * MiB
const depth = Number(process.env.DEPTH ?? 8)
const nocompress = process.env.NOCOMPRESS === "1"
const payload = process.env.PAYLOAD === "half" ? "half" : "random"
const chunkBytes = MiB
const targets = { replicas1: 0.5, replicas2: 0.35 }

const volumeWith = (replicaNodes: string[]): ClusterVolume => ({
  volume: `bench/r${replicaNodes.length}`,
  sizeBytes: totalBytes,
  replicaNodes,
  labels: { "storageos.com/replicas": String(replicaNodes.length), ...(nocompress ? { "storageos.com/nocompress": "true" } : {}) },
})
const cases = [
  { key: "local", target: "local" },
  { key: "replicas0", target: "bench/r0" },
  { key: "replicas1", target: "bench/r1" },
  { key: "replicas2", target: "bench/r2" },
] as const
type Key = (typeof cases)[number]["key"]

const cluster = await startCluster({ volumes: [volumeWith([]), volumeWith(["n2"]), volumeWith(["n2", "n3"])], localBytes: totalBytes })
const rates = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
const flushMs = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
const ratios = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
try {
  const run = async (target: string) => {
    const done = await cluster.request({ cmd: "seq", target, totalBytes, chunkBytes, depth, payload }, "seq-done")
    return { MBps: megabytesPerSecond(Number(done.bytes), Number(done.ms)), flushMs: Number(done.flushMs) }
  }
  process.stderr.write(`replication-throughput: ${trialCount} trials × ${totalBytes / MiB} MiB, 1 MiB writes, depth ${depth}, ${payload} data, compression ${nocompress ? "off" : "on"}\n`)
  for (const c of cases) await run(c.target) // warm-up: touch the files and the page cache once
  for (let trial = 0; trial < trialCount; trial++) {
    const trialRates = new Map<Key, number>()
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(trial + i) % cases.length]!
      const result = await run(c.target)
      trialRates.set(c.key, result.MBps)
      rates.get(c.key)!.push(result.MBps)
      flushMs.get(c.key)!.push(result.flushMs)
    }
    for (const c of cases) ratios.get(c.key)!.push(trialRates.get(c.key)! / trialRates.get("local")!)
    process.stderr.write(`  trial ${trial + 1}: ${cases.map((c) => `${c.key} ${trialRates.get(c.key)!.toFixed(0)} MB/s`).join(", ")}\n`)
  }
} finally {
  await cluster.close()
}

const figure = (key: Key) => ({ MBps: spread(rates.get(key)!, 0), flushMs: spread(flushMs.get(key)!, 0) })
const ratio = { replicas0: round(median(ratios.get("replicas0")!), 2), replicas1: round(median(ratios.get("replicas1")!), 2), replicas2: round(median(ratios.get("replicas2")!), 2) }
const met = { replicas1: ratio.replicas1 >= targets.replicas1, replicas2: ratio.replicas2 >= targets.replicas2 }
console.log(JSON.stringify({
  name: "replication-throughput",
  workload: { chunkBytes, totalBytes, depth, payload, compression: !nocompress, trials: trialCount, flush: "one at the end" },
  baseline: { local: figure("local") },
  replicas0: figure("replicas0"), replicas1: figure("replicas1"), replicas2: figure("replicas2"),
  ratio, ratioRange: Object.fromEntries((["replicas0", "replicas1", "replicas2"] as const).map((k) => [k, spread(ratios.get(k)!, 2)])),
  target: targets, met,
}))
process.stderr.write(`  ratios to local: 0 replicas ${ratio.replicas0}×, 1 replica ${ratio.replicas1}× (target ≥ ${targets.replicas1}: ${met.replicas1 ? "met" : "MISSED"}), 2 replicas ${ratio.replicas2}× (target ≥ ${targets.replicas2}: ${met.replicas2 ? "met" : "MISSED"})\n`)
