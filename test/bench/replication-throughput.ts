/**
 * Replication throughput: sequential 1 MiB writes (256 MiB) and one flush to a volume with 0, 1
 * and 2 replicas (each replica its own OS process, over loopback TCP), against the same writes
 * to a plain local file with fs.writeSync + one fdatasync (the baseline) from the same master
 * process. Targets (from the issue): 1 replica ≥ 0.5× local, 2 replicas ≥ 0.35× local.
 *
 * The cluster runs TLS (the default); a second cluster of the same shape runs plain TCP
 * (--insecure-plaintext), and its 1- and 2-replica volumes are two more targets in the same
 * interleaved trials. TLS's cost is 1 − (TLS MB/s ÷ plain MB/s), the median over trials;
 * target (issue 11): ≤ 15 %. TLS_COMPARE=0 skips the plain cluster.
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
const tlsCostMax = 0.15
const compareTls = process.env.TLS_COMPARE !== "0"

const volumeWith = (replicaNodes: string[]): ClusterVolume => ({
  volume: `bench/r${replicaNodes.length}`,
  sizeBytes: totalBytes,
  replicaNodes,
  labels: { "storageos.com/replicas": String(replicaNodes.length), ...(nocompress ? { "storageos.com/nocompress": "true" } : {}) },
})
type Key = "local" | "replicas0" | "replicas1" | "replicas2" | "plain1" | "plain2"
const cases: ReadonlyArray<{ readonly key: Key; readonly target: string; readonly plain?: true }> = [
  { key: "local", target: "local" },
  { key: "replicas0", target: "bench/r0" },
  { key: "replicas1", target: "bench/r1" },
  { key: "replicas2", target: "bench/r2" },
  ...(compareTls ? [{ key: "plain1", target: "bench/r1", plain: true }, { key: "plain2", target: "bench/r2", plain: true }] as const : []),
]

const cluster = await startCluster({ volumes: [volumeWith([]), volumeWith(["n2"]), volumeWith(["n2", "n3"])], localBytes: totalBytes })
const plainCluster = compareTls
  ? await startCluster({ volumes: [volumeWith(["n2"]), volumeWith(["n2", "n3"])], localBytes: MiB, tls: false }).catch(async (error: unknown) => {
    await cluster.close()
    throw error
  })
  : undefined
const rates = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
const flushMs = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
const ratios = new Map<Key, number[]>(cases.map((c) => [c.key, []]))
try {
  const run = async (target: string, plain = false) => {
    const done = await (plain ? plainCluster! : cluster).request({ cmd: "seq", target, totalBytes, chunkBytes, depth, payload }, "seq-done")
    return { MBps: megabytesPerSecond(Number(done.bytes), Number(done.ms)), flushMs: Number(done.flushMs) }
  }
  process.stderr.write(`replication-throughput: ${trialCount} trials × ${totalBytes / MiB} MiB, 1 MiB writes, depth ${depth}, ${payload} data, compression ${nocompress ? "off" : "on"}\n`)
  for (const c of cases) await run(c.target, c.plain) // warm-up: touch the files and the page cache once
  for (let trial = 0; trial < trialCount; trial++) {
    const trialRates = new Map<Key, number>()
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(trial + i) % cases.length]!
      const result = await run(c.target, c.plain)
      trialRates.set(c.key, result.MBps)
      rates.get(c.key)!.push(result.MBps)
      flushMs.get(c.key)!.push(result.flushMs)
    }
    for (const c of cases) ratios.get(c.key)!.push(trialRates.get(c.key)! / trialRates.get("local")!)
    process.stderr.write(`  trial ${trial + 1}: ${cases.map((c) => `${c.key} ${trialRates.get(c.key)!.toFixed(0)} MB/s`).join(", ")}\n`)
  }
} finally {
  await cluster.close()
  await plainCluster?.close()
}

const figure = (key: Key) => ({ MBps: spread(rates.get(key)!, 0), flushMs: spread(flushMs.get(key)!, 0) })
const ratio = { replicas0: round(median(ratios.get("replicas0")!), 2), replicas1: round(median(ratios.get("replicas1")!), 2), replicas2: round(median(ratios.get("replicas2")!), 2) }
const met = { replicas1: ratio.replicas1 >= targets.replicas1, replicas2: ratio.replicas2 >= targets.replicas2 }
// TLS's cost per trial: 1 − TLS rate ÷ plain rate (the same trial, interleaved).
const costs = (tlsKey: Key, plainKey: Key) => rates.get(tlsKey)!.map((rate, i) => 1 - rate / rates.get(plainKey)![i]!)
const tls = compareTls
  ? {
    plain1: figure("plain1"), plain2: figure("plain2"),
    costReplicas1: round(median(costs("replicas1", "plain1")), 3), costReplicas2: round(median(costs("replicas2", "plain2")), 3),
    costRange: { replicas1: spread(costs("replicas1", "plain1"), 3), replicas2: spread(costs("replicas2", "plain2"), 3) },
    target: `cost ≤ ${tlsCostMax}`,
  }
  : undefined
const tlsMet = tls ? tls.costReplicas1 <= tlsCostMax && tls.costReplicas2 <= tlsCostMax : undefined
console.log(JSON.stringify({
  name: "replication-throughput",
  workload: { chunkBytes, totalBytes, depth, payload, compression: !nocompress, trials: trialCount, flush: "one at the end" },
  baseline: { local: figure("local") },
  replicas0: figure("replicas0"), replicas1: figure("replicas1"), replicas2: figure("replicas2"),
  ratio, ratioRange: Object.fromEntries((["replicas0", "replicas1", "replicas2"] as const).map((k) => [k, spread(ratios.get(k)!, 2)])),
  target: targets, met,
  ...(tls ? { tls: { ...tls, met: tlsMet } } : {}),
}))
process.stderr.write(`  ratios to local: 0 replicas ${ratio.replicas0}×, 1 replica ${ratio.replicas1}× (target ≥ ${targets.replicas1}: ${met.replicas1 ? "met" : "MISSED"}), 2 replicas ${ratio.replicas2}× (target ≥ ${targets.replicas2}: ${met.replicas2 ? "met" : "MISSED"})\n`)
if (tls) process.stderr.write(`  TLS cost (1 − TLS ÷ plain TCP): 1 replica ${(tls.costReplicas1 * 100).toFixed(1)} %, 2 replicas ${(tls.costReplicas2 * 100).toFixed(1)} % (target ≤ ${tlsCostMax * 100} %: ${tlsMet ? "met" : "MISSED"})\n`)
