/**
 * Micro benchmark of the wire codec: encode+decode throughput of 1 MiB Write frames, random
 * and 50%-compressible, raw and lz4-compressed, against crc32c alone (the baseline, measured in
 * the same run; a raw frame costs two crc32c passes, one per side).
 *
 * Run: node --import tsx test/bench/wire.ts   (or node_modules/.bin/bun test/bench/wire.ts)
 * Env: TRIALS (default 9), ROUNDS per case per trial (default 32).
 * Cases run interleaved (A B C … A B C …) so that CPU placement and neighbours' load hit them
 * alike (PLATFORM-NOTES §6, traps 1–2); each trial gives every case's ratio to the baseline, and
 * the medians of MB/s and of the ratio are printed. The event loop turns between iterations, as
 * in a socket pipeline, so lz4-napi's fresh result buffers are freed promptly (§6.3).
 */
import { setImmediate as turn } from "node:timers/promises"
import { crc32c } from "../../lib/core/checksum.ts"
import { MiB } from "../../lib/core/limits.ts"
import { compressBlock, decompressBlock, encodeFrame, FrameDecoder, makeFrame, MessageType, WireError } from "../../lib/wire/index.ts"
import { halfCompressibleBytes, mulberry32, randomBytes } from "../unit/wire/support.ts"

const trialCount = Number(process.env.TRIALS ?? 9)
const roundCount = Number(process.env.ROUNDS ?? 32)

const roundTrip = (payload: Uint8Array, compress: boolean) => (): void => {
  const [header, body] = encodeFrame(makeFrame(MessageType.Write, { sequence: 1, body: payload }), { compress })
  const decoder = new FrameDecoder()
  decoder.push(header!)
  decoder.push(body!)
  const frame = decoder.next()
  if (frame === undefined || frame instanceof WireError || frame.body.length !== payload.length) throw new Error("bench frame did not decode")
}

const random = mulberry32(42)
const noise = randomBytes(random, MiB)
const half = halfCompressibleBytes(random, MiB)
const packedHalf = compressBlock(half)

const cases: Array<[string, () => void]> = [
  ["crc32c alone (baseline)", () => void crc32c(noise)],
  ["lz4 compressBlock alone, random", () => void compressBlock(noise)],
  ["lz4 compressBlock alone, 50%", () => void compressBlock(half)],
  ["lz4 decompressBlock alone, 50%", () => void decompressBlock(packedHalf, MiB)],
  ["encode+decode random, raw", roundTrip(noise, false)],
  ["encode+decode random, compress", roundTrip(noise, true)],
  ["encode+decode 50%-compressible, raw", roundTrip(half, false)],
  ["encode+decode 50%-compressible, compress", roundTrip(half, true)],
]

const timeCase = async (step: () => void): Promise<number> => {
  const started = performance.now()
  for (let round = 0; round < roundCount; round++) {
    step()
    await turn()
  }
  return roundCount / ((performance.now() - started) / 1000) // MiB/s: every step handles 1 MiB
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : `node ${process.version}`
console.log(`wire bench: 1 MiB payloads (50%-compressible packs to ${((packedHalf.length / MiB) * 100).toFixed(0)}%, random to ${((compressBlock(noise).length / MiB) * 100).toFixed(1)}%)`)
console.log(`${trialCount} interleaved trials × ${roundCount} MiB per case, ${runtime}\n`)
for (const [, step] of cases) for (let warm = 0; warm < 4; warm++) step()
const rates = cases.map(() => [] as number[])
const ratios = cases.map(() => [] as number[])
for (let trial = 0; trial < trialCount; trial++) {
  const trialRates: number[] = []
  for (const [, step] of cases) trialRates.push(await timeCase(step))
  trialRates.forEach((rate, index) => {
    rates[index]!.push(rate)
    ratios[index]!.push(rate / trialRates[0]!)
  })
}
console.log(`${"case".padEnd(42)} ${"MB/s".padStart(6)}  ${"range".padEnd(11)} ratio to crc32c`)
cases.forEach(([name], index) => {
  const sorted = [...rates[index]!].sort((a, b) => a - b)
  const range = `${sorted[0]!.toFixed(0)}–${sorted.at(-1)!.toFixed(0)}`
  console.log(`${name.padEnd(42)} ${median(rates[index]!).toFixed(0).padStart(6)}  ${range.padEnd(11)} ${median(ratios[index]!).toFixed(2)}×`)
})
