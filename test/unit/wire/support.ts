/**
 * Test support for the wire tests: a seeded PRNG, payload makers, and a hand-written frame
 * builder that follows lib/wire/FORMAT.md byte by byte (independent of the codec under test),
 * so rejection tests can forge any header with valid checksums.
 */
import { crc32c } from "../../../lib/core/checksum.ts"
import { FrameDecoder, frameVersion, type Frame, WireError } from "../../../lib/wire/index.ts"

/** mulberry32: small, fast, seeded. Returns floats in [0, 1). */
export const mulberry32 = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const randomInt = (random: () => number, below: number): number => Math.floor(random() * below)

export const randomBytes = (random: () => number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  for (let index = 0; index < length; index++) out[index] = randomInt(random, 256)
  return out
}

/** Text-like data that lz4 compresses well. */
export const compressibleBytes = (length: number): Uint8Array => {
  const phrase = new TextEncoder().encode("replivol writes to the master and every in-sync replica. ")
  const out = new Uint8Array(length)
  for (let index = 0; index < length; index++) out[index] = phrase[index % phrase.length]! ^ ((index >>> 12) & 3)
  return out
}

/** Half random, half zeros, interleaved in 4 KiB pages: compresses to about 50%. */
export const halfCompressibleBytes = (random: () => number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  for (let index = 0; index < length; index++) out[index] = (index >>> 12) % 2 === 0 ? randomInt(random, 256) : 0
  return out
}

export interface RawHeader {
  magic?: number
  version?: number
  type: number
  flags?: number
  volumeId?: bigint
  epoch?: number
  aux?: number
  sequenceLow?: number
  sequenceHigh?: number
  offsetLow?: number
  offsetHigh?: number
  length: number
  bodyBytes: number
  bodyChecksum?: number
  headerChecksum?: number
}

/** A 56-byte header written from FORMAT.md; checksums are computed unless forced. */
export const rawHeader = (fields: RawHeader, body: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const bytes = new Uint8Array(56)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, fields.magic ?? 0x31565052, true) // "RPV1"
  view.setUint8(4, fields.version ?? frameVersion)
  view.setUint8(5, fields.type)
  view.setUint16(6, fields.flags ?? 0, true)
  view.setBigUint64(8, fields.volumeId ?? 0n, true)
  view.setUint32(16, fields.epoch ?? 0, true)
  view.setUint32(20, fields.aux ?? 0, true)
  view.setUint32(24, fields.sequenceLow ?? 0, true)
  view.setUint32(28, fields.sequenceHigh ?? 0, true)
  view.setUint32(32, fields.offsetLow ?? 0, true)
  view.setUint32(36, fields.offsetHigh ?? 0, true)
  view.setUint32(40, fields.length, true)
  view.setUint32(44, fields.bodyBytes, true)
  view.setUint32(48, fields.bodyChecksum ?? crc32c(body), true)
  view.setUint32(52, fields.headerChecksum ?? crc32c(bytes.subarray(0, 52)), true)
  return bytes
}

export const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  let total = 0
  for (const part of parts) total += part.length
  const out = new Uint8Array(total)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false
  return true
}

/** Pushes everything, then drains: frames in order and the final error, if any. */
export const decodeAll = (chunks: readonly Uint8Array[]): { frames: Frame[]; error: WireError | undefined } => {
  const decoder = new FrameDecoder()
  const frames: Frame[] = []
  for (const chunk of chunks) {
    decoder.push(chunk)
    for (;;) {
      const result = decoder.next()
      if (result === undefined) break
      if (result instanceof WireError) return { frames, error: result }
      frames.push(result)
    }
  }
  return { frames, error: decoder.end() }
}
