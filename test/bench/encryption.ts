/**
 * Encryption at rest: an encrypted volume (storageos.com/encryption=true) against the same
 * volume in plain, in the same run between the same processes: sequential 1 MiB writes (depth 8)
 * and one flush, with 0 and 1 replica (the replica its own OS process over loopback TCP), and
 * 4 KiB writes at queue depth 1 with 1 replica (p50 latency). Also the cipher alone: MB/s and
 * CPU ms per MiB (inline, on this thread) of this runtime's AES-256-XTS in 4 KiB units, as the
 * volumes use it and over ECB. Target (from the issue):
 * encryption costs ≤ 25 % throughput (encrypted / plain ≥ 0.75).
 *
 * Trials run interleaved (plain, encrypted, then the next trial starting one further along) after
 * a warm-up, because CPU placement and fresh-memory effects swing results on this 2-vCPU VM
 * (PLATFORM-NOTES §6); each trial gives a ratio encrypted / plain, and the medians with their
 * ranges are printed. Payload: random (the plain volume cannot compress it either; an encrypted
 * volume never compresses: ciphertext does not).
 *
 * Prints one JSON line on stdout (human lines on stderr).
 * Env: TRIALS (5), TOTAL_MIB (128), DEPTH (8), SAMPLES (400 per latency round), BENCH_PORT (5703),
 * BENCH_XTS=ecb (the volumes use XTS over ECB, Bun's and Deno's path, instead of the native cipher).
 */
import { KiB, MiB } from "../../lib/core/limits.ts"
import type { CryptoPrimitives } from "../../lib/crypt/primitives.ts"
import { encryptionUnitBytes } from "../../lib/crypt/volumeCipher.ts"
import { nodeCrypto, nodeCryptoViaEcb } from "../../lib/platform/nodeCrypto.ts"
import { startCluster, type ClusterVolume } from "./support/cluster.ts"
import { median, megabytesPerSecond, round, spread } from "./support/stats.ts"

const trialCount = Number(process.env.TRIALS ?? 5)
const totalBytes = Number(process.env.TOTAL_MIB ?? 128) * MiB
const depth = Number(process.env.DEPTH ?? 8)
const sampleCount = Number(process.env.SAMPLES ?? 400)
const target = 0.75

/** MB/s of the cipher alone over 1 MiB buffers (no IO). */
const cipherRate = (crypto: CryptoPrimitives) => {
  const cipher = crypto.xts(new Uint8Array(64).map((_, i) => i + 1))
  const data = new Uint8Array(MiB).map((_, i) => (i * 131) & 0xff)
  for (let i = 0; i < 20; i++) cipher.encrypt(i * 256, encryptionUnitBytes, data)
  const started = performance.now()
  let bytes = 0
  while (performance.now() - started < 1000) {
    cipher.encrypt(bytes / encryptionUnitBytes, encryptionUnitBytes, data)
    bytes += data.length
  }
  return round(megabytesPerSecond(bytes, performance.now() - started), 0)
}
/** CPU time (all threads of this process) per MiB of the cipher alone, inline: a figure the machine's load does not inflate as much as MB/s. */
const cipherCpuMsPerMiB = (crypto: CryptoPrimitives) => {
  const cipher = crypto.xts(new Uint8Array(64).map((_, i) => i + 7))
  const data = new Uint8Array(MiB).map((_, i) => (i * 131) & 0xff)
  for (let i = 0; i < 10; i++) cipher.encrypt(i * 256, encryptionUnitBytes, data)
  const runs = 64
  const started = process.cpuUsage()
  for (let i = 0; i < runs; i++) cipher.encrypt(i * 256, encryptionUnitBytes, data)
  const used = process.cpuUsage(started)
  return round((used.user + used.system) / 1000 / runs, 2)
}
const native = nodeCrypto() as CryptoPrimitives
const viaEcb = nodeCryptoViaEcb() as CryptoPrimitives
const cipherOnly = { [native.xtsImplementation]: cipherRate(native), [viaEcb.xtsImplementation]: cipherRate(viaEcb) }
const cipherCpu = { [native.xtsImplementation]: cipherCpuMsPerMiB(native), [viaEcb.xtsImplementation]: cipherCpuMsPerMiB(viaEcb) }
process.stderr.write(`encryption: cipher alone ${Object.entries(cipherOnly).map(([k, v]) => `${k} ${v} MB/s (${cipherCpu[k]} ms CPU per MiB)`).join(", ")}\n`)

const volumeOf = (name: string, replicaNodes: string[], encrypted: boolean, sizeBytes = totalBytes): ClusterVolume => ({
  volume: `bench/${name}`, sizeBytes, replicaNodes,
  labels: { "storageos.com/replicas": String(replicaNodes.length), ...(encrypted ? { "storageos.com/encryption": "true" } : {}) },
})
const pairs = [
  { key: "replicas0", plain: "bench/p0", encrypted: "bench/e0" },
  { key: "replicas1", plain: "bench/p1", encrypted: "bench/e1" },
] as const
const latency = { plain: "bench/lp", encrypted: "bench/le", spanBytes: 64 * MiB }
const cluster = await startCluster({
  volumes: [
    volumeOf("p0", [], false), volumeOf("e0", [], true), volumeOf("p1", ["n2"], false), volumeOf("e1", ["n2"], true),
    volumeOf("lp", ["n2"], false, latency.spanBytes), volumeOf("le", ["n2"], true, latency.spanBytes),
  ],
  localBytes: MiB,
})
type Figures = { plain: number[]; encrypted: number[]; ratio: number[] }
const seq = new Map<string, Figures>(pairs.map((p) => [p.key, { plain: [], encrypted: [], ratio: [] }]))
const lat: Figures = { plain: [], encrypted: [], ratio: [] }
try {
  const run = async (volume: string) => {
    const done = await cluster.request({ cmd: "seq", target: volume, totalBytes, chunkBytes: MiB, depth, payload: "random" }, "seq-done")
    return megabytesPerSecond(Number(done.bytes), Number(done.ms))
  }
  const p50 = async (volume: string, seed: number) =>
    median((await cluster.request({ cmd: "lat", target: volume, count: sampleCount, blockBytes: 4 * KiB, spanBytes: latency.spanBytes, seed }, "lat-done")).samplesUs as number[])
  process.stderr.write(`encryption: ${trialCount} trials × ${totalBytes / MiB} MiB, 1 MiB writes, depth ${depth}; 4 KiB writes at depth 1, ${sampleCount} a round\n`)
  for (const pair of pairs) for (const volume of [pair.plain, pair.encrypted]) await run(volume) // warm-up
  for (const volume of [latency.plain, latency.encrypted]) {
    await cluster.request({ cmd: "seq", target: volume, totalBytes: latency.spanBytes, chunkBytes: MiB, depth: 4, payload: "random" }, "seq-done")
    await p50(volume, 1)
  }
  for (let trial = 0; trial < trialCount; trial++) {
    for (const pair of pairs) {
      const order = trial % 2 === 0 ? ["plain", "encrypted"] as const : ["encrypted", "plain"] as const
      const rates: Record<string, number> = {}
      for (const which of order) rates[which] = await run(pair[which])
      const figures = seq.get(pair.key)!
      figures.plain.push(rates.plain!)
      figures.encrypted.push(rates.encrypted!)
      figures.ratio.push(rates.encrypted! / rates.plain!)
    }
    const order = trial % 2 === 0 ? ["plain", "encrypted"] as const : ["encrypted", "plain"] as const
    const us: Record<string, number> = {}
    for (const which of order) us[which] = await p50(latency[which], 100 + trial)
    lat.plain.push(us.plain!)
    lat.encrypted.push(us.encrypted!)
    lat.ratio.push(us.encrypted! / us.plain!)
    process.stderr.write(`  trial ${trial + 1}: ${pairs.map((p) => `${p.key} plain ${seq.get(p.key)!.plain.at(-1)!.toFixed(0)} / encrypted ${seq.get(p.key)!.encrypted.at(-1)!.toFixed(0)} MB/s`).join(", ")}; 4 KiB p50 plain ${us.plain!.toFixed(1)} / encrypted ${us.encrypted!.toFixed(1)} µs\n`)
  }
} finally {
  await cluster.close()
}

const ratio = Object.fromEntries(pairs.map((p) => [p.key, round(median(seq.get(p.key)!.ratio), 2)])) as Record<(typeof pairs)[number]["key"], number>
const met = { replicas0: ratio.replicas0 >= target, replicas1: ratio.replicas1 >= target }
console.log(JSON.stringify({
  name: "encryption",
  workload: { chunkBytes: MiB, totalBytes, depth, payload: "random", trials: trialCount, latency: { blockBytes: 4 * KiB, depth: 1, samples: sampleCount } },
  volumeCipher: process.env.BENCH_XTS === "ecb" ? viaEcb.xtsImplementation : native.xtsImplementation,
  cipherOnlyMBps: cipherOnly,
  cipherOnlyCpuMsPerMiB: cipherCpu,
  baseline: Object.fromEntries(pairs.map((p) => [p.key, { plainMBps: spread(seq.get(p.key)!.plain, 0) }])),
  encrypted: Object.fromEntries(pairs.map((p) => [p.key, { MBps: spread(seq.get(p.key)!.encrypted, 0) }])),
  latencyP50Us: { plain: spread(lat.plain, 1), encrypted: spread(lat.encrypted, 1), addedUs: round(median(lat.encrypted) - median(lat.plain), 1) },
  ratio, ratioRange: Object.fromEntries(pairs.map((p) => [p.key, spread(seq.get(p.key)!.ratio, 2)])),
  target: { encryptedOverPlain: target }, met,
}))
process.stderr.write(`  encrypted / plain throughput: 0 replicas ${ratio.replicas0}×, 1 replica ${ratio.replicas1}× (target ≥ ${target}: ${met.replicas0 && met.replicas1 ? "met" : "MISSED"}); 4 KiB p50 +${round(median(lat.encrypted) - median(lat.plain), 1)} µs\n`)
