/**
 * What lz4 on the replication link buys and costs, with one replica (another OS process):
 *
 * 1. Wire bytes per payload byte on 50%-compressible data (in every 4 KiB page 2 KiB random,
 *    2 KiB zeros), for a compressed volume and, as the baseline of the counting method, a
 *    `storageos.com/nocompress=true` volume (≈ 1 + frame headers); plus what lz4 alone makes of
 *    the same kind of data in this process (the best the link can do).
 * 2. MB/s of sequential 1 MiB writes (depth 8, one flush) on random data — incompressible, so
 *    compression is pure cost — compressed vs nocompress, interleaved trials, median ratio; and
 *    the same on the 50%-compressible data.
 *
 * Wire bytes are counted at the replica as the growth of `rchar` in its /proc/<pid>/io (bytes
 * it read through read(2): the frames, headers included, plus a few bytes of stdin commands;
 * the replica reads no file while writing). Chosen over a counting TCP proxy between master and
 * replica because a proxy adds a hop, a copy and a third busy process on a 2-vCPU machine, which
 * would distort the MB/s measured in the same run, and over wrapping the link because lib/ is
 * not ours to change. Payload bytes are the replica's own `bytesApplied` (node.hostedReplicas()).
 *
 * Prints one JSON line on stdout (human lines on stderr).
 * Env: TRIALS (5), TOTAL_MIB (128), DEPTH (8), BENCH_PORT (5703), BENCH_CPU_PROF (dir).
 */
import { MiB } from "../../lib/core/limits.ts"
import { compressBlock } from "../../lib/wire/lz4.ts"
import { startCluster } from "./support/cluster.ts"
import { halfCompressiblePayload, type PayloadKind } from "./support/data.ts"
import { median, megabytesPerSecond, round, spread } from "./support/stats.ts"

const trialCount = Number(process.env.TRIALS ?? 5)
const totalBytes = Number(process.env.TOTAL_MIB ?? 128) * MiB
const depth = Number(process.env.DEPTH ?? 8)
const chunkBytes = MiB
const compressed = "bench/lz"
const raw = "bench/raw"

const lz4AloneRatio = (() => {
  let packed = 0, plain = 0
  for (let i = 0; i < 16; i++) {
    const chunk = halfCompressiblePayload(chunkBytes)
    packed += compressBlock(chunk).length
    plain += chunk.length
  }
  return packed / plain
})()

const cluster = await startCluster({
  volumes: [
    { volume: compressed, sizeBytes: totalBytes, replicaNodes: ["n2"], labels: { "storageos.com/replicas": "1" } },
    { volume: raw, sizeBytes: totalBytes, replicaNodes: ["n2"], labels: { "storageos.com/replicas": "1", "storageos.com/nocompress": "true" } },
  ],
  localBytes: MiB,
})
const wire = new Map<string, number[]>([[compressed, []], [raw, []]])
const rates = new Map<string, number[]>()
const ratios = new Map<PayloadKind, number[]>([["random", []], ["half", []]])
try {
  const seq = async (target: string, payload: PayloadKind) => {
    const done = await cluster.request({ cmd: "seq", target, totalBytes, chunkBytes, depth, payload }, "seq-done")
    return megabytesPerSecond(Number(done.bytes), Number(done.ms))
  }
  const counted = async (target: string) => {
    const applied = (stats: Awaited<ReturnType<typeof cluster.replicaStats>>) => stats.replicas.find((r) => r.volume === target)!.bytesApplied
    const before = await cluster.replicaStats("n2")
    await seq(target, "half")
    const after = await cluster.replicaStats("n2")
    if (before.rchar === undefined || after.rchar === undefined) throw new Error("the replica cannot read /proc/self/io; wire bytes cannot be counted here")
    return (after.rchar - before.rchar) / (applied(after) - applied(before))
  }
  process.stderr.write(`compression: ${trialCount} trials × ${totalBytes / MiB} MiB, 1 MiB writes, depth ${depth}, 1 replica\n`)
  for (const target of [compressed, raw]) await seq(target, "random") // warm-up
  for (let trial = 0; trial < trialCount; trial++) {
    const order = trial % 2 === 0 ? [compressed, raw] : [raw, compressed]
    for (const target of order) wire.get(target)!.push(await counted(target))
    for (const payload of ["random", "half"] as const) {
      const trialRates = new Map<string, number>()
      for (const target of order) {
        const rate = await seq(target, payload)
        trialRates.set(target, rate)
        rates.set(`${payload}/${target}`, [...(rates.get(`${payload}/${target}`) ?? []), rate])
      }
      ratios.get(payload)!.push(trialRates.get(compressed)! / trialRates.get(raw)!)
    }
    process.stderr.write(`  trial ${trial + 1}: wire/payload ${wire.get(compressed)!.at(-1)!.toFixed(3)} (nocompress ${wire.get(raw)!.at(-1)!.toFixed(3)}), random ${rates.get(`random/${compressed}`)!.at(-1)!.toFixed(0)} vs ${rates.get(`random/${raw}`)!.at(-1)!.toFixed(0)} MB/s, 50% ${rates.get(`half/${compressed}`)!.at(-1)!.toFixed(0)} vs ${rates.get(`half/${raw}`)!.at(-1)!.toFixed(0)} MB/s\n`)
  }
} finally {
  await cluster.close()
}

const throughput = (payload: PayloadKind) => ({
  compressedMBps: spread(rates.get(`${payload}/${compressed}`)!, 0),
  nocompressMBps: spread(rates.get(`${payload}/${raw}`)!, 0),
  ratio: round(median(ratios.get(payload)!), 2),
  ratioRange: spread(ratios.get(payload)!, 2),
})
const result = {
  name: "compression",
  workload: { chunkBytes, totalBytes, depth, replicas: 1, trials: trialCount, wireBytesCountedBy: "replica /proc/<pid>/io rchar delta" },
  wireBytesPerPayloadByte: { compressed: spread(wire.get(compressed)!, 3), baseline: { nocompress: spread(wire.get(raw)!, 3), lz4Alone: round(lz4AloneRatio, 3) } },
  random: throughput("random"),
  halfCompressible: throughput("half"),
  ratio: { wireBytesPerPayloadByte: round(median(wire.get(compressed)!), 3), randomCompressedToNocompress: round(median(ratios.get("random")!), 2) },
}
console.log(JSON.stringify(result))
process.stderr.write(`  wire bytes / payload bytes on 50%-compressible data: ${result.ratio.wireBytesPerPayloadByte} (nocompress ${result.wireBytesPerPayloadByte.baseline.nocompress.median}, lz4 alone ${result.wireBytesPerPayloadByte.baseline.lz4Alone}); random data MB/s compressed/nocompress ${result.ratio.randomCompressedToNocompress}×\n`)
