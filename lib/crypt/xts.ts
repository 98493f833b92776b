/**
 * AES-XTS (IEEE 1619-2007 / NIST SP 800-38E) built from an AES-ECB primitive, for runtimes whose
 * node:crypto has no `aes-256-xts` (Bun, Deno). Pure: the ECB calls are passed in.
 *
 * For each data unit j with tweak i: T = AES-ECB(K2, i as 128-bit little endian); block k of the
 * unit is C = AES-ECB(K1, P ⊕ T·α^k) ⊕ T·α^k (multiplication in GF(2^128), little endian, by
 * x: shift left one bit, fold the carry in as 0x87). Units are whole AES blocks here (volume
 * sizes are multiples of 512 bytes), so no ciphertext stealing is needed. The tweaks of a whole
 * run of units are encrypted in one ECB call, and the data in one ECB call each way, so the cost
 * is two ECB passes plus two XOR passes in JavaScript (the mask computed in each, never stored). The unit tests check it against the IEEE
 * 1619 vectors and, where the runtime has both, against the native cipher.
 */
import { assert } from "../core/assert.ts"
import { aesBlockBytes, type XtsCipher } from "./primitives.ts"

/** AES-256-ECB over whole blocks, no padding (key: 32 bytes). */
export type EcbBlocks = (key: Uint8Array, data: Uint8Array) => Uint8Array

/** Signed 32-bit words: the JIT keeps int32 arithmetic in registers (uint32 values past 2^31 become doubles). */
const words = (bytes: Uint8Array): Int32Array => {
  assert(bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0, "XTS works on word-aligned buffers")
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
}

/** A buffer of its own, word-aligned (a subarray of a pooled Buffer may not be). */
const alignedCopy = (data: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(data.length)
  copy.set(data)
  return copy
}
const aligned = (data: Uint8Array): Uint8Array => (data.byteOffset % 4 === 0 ? data : alignedCopy(data))

/** Reused buffers of one cipher (its calls are synchronous, so never shared by two at once): fresh memory is slow to touch (PLATFORM-NOTES §6). */
interface Scratch {
  seeds: Uint8Array
  seedWords: Int32Array
  masked: Uint8Array
}

const grown = (scratch: Scratch, units: number, length: number) => {
  if (scratch.seeds.length < units * aesBlockBytes) {
    scratch.seeds = new Uint8Array(units * aesBlockBytes)
    scratch.seedWords = new Int32Array(units * 4)
  }
  if (scratch.masked.length < length) scratch.masked = new Uint8Array(length)
}

/** The tweak seeds E_K2(i) of `units` units from `firstUnit` (one ECB call), as little-endian words in `scratch.seedWords`. */
const tweakSeeds = (encryptEcb: EcbBlocks, k2: Uint8Array, scratch: Scratch, firstUnit: number, units: number): Int32Array => {
  const seeds = scratch.seeds.subarray(0, units * aesBlockBytes)
  seeds.fill(0)
  const seedView = new DataView(seeds.buffer, seeds.byteOffset, seeds.length)
  for (let u = 0; u < units; u++) {
    const index = firstUnit + u
    seedView.setUint32(u * aesBlockBytes, index >>> 0, true)
    seedView.setUint32(u * aesBlockBytes + 4, Math.floor(index / 0x1_0000_0000), true)
  }
  const out = scratch.seedWords.subarray(0, units * 4)
  out.set(words(aligned(encryptEcb(k2, seeds))))
  return out
}

/**
 * `data ⊕ T·α^k` for every block k of every unit (T: the unit's tweak seed) into `out`, which may
 * be `data`. The mask is computed as it goes (four little-endian words a block; the runtimes are
 * little endian; ·α: shift left one bit, fold the carry in as 0x87) and never stored, so a pass
 * reads and writes the run once. Self-contained (no outer names): the worker threads run its
 * source text (lib/platform/cryptWorkers.ts).
 */
export const maskRun = (seeds: Int32Array, data: Int32Array, out: Int32Array, unitWords: number, count: number) => {
  for (let u = 0, start = 0; start < count; u++, start += unitWords) {
    let a = seeds[u * 4]!, b = seeds[u * 4 + 1]!, c = seeds[u * 4 + 2]!, d = seeds[u * 4 + 3]!
    const end = Math.min(count, start + unitWords)
    for (let at = start; at < end; at += 4) {
      out[at] = data[at]! ^ a; out[at + 1] = data[at + 1]! ^ b; out[at + 2] = data[at + 2]! ^ c; out[at + 3] = data[at + 3]! ^ d
      const carry = (d >> 31) & 0x87
      d = (d << 1) | (c >>> 31)
      c = (c << 1) | (b >>> 31)
      b = (b << 1) | (a >>> 31)
      a = (a << 1) ^ carry
    }
  }
}

/** XTS over ECB: `encryptEcb` for K1 and the tweaks, `decryptEcb` for K1 when decrypting. */
export const makeXtsOverEcb = (key: Uint8Array, encryptEcb: EcbBlocks, decryptEcb: EcbBlocks): XtsCipher => {
  assert(key.length === 64, "an XTS-AES-256 key is 64 bytes")
  const k1 = key.slice(0, 32)
  const k2 = key.slice(32, 64)
  const scratch: Scratch = { seeds: new Uint8Array(0), seedWords: new Int32Array(0), masked: new Uint8Array(0) }
  const run = (ecb: EcbBlocks) => (firstUnit: number, unitBytes: number, data: Uint8Array): Uint8Array => {
    assert(data.length % aesBlockBytes === 0 && unitBytes % aesBlockBytes === 0 && Number.isSafeInteger(firstUnit) && firstUnit >= 0, "XTS units are whole AES blocks")
    if (data.length === 0) return new Uint8Array(0)
    const units = Math.ceil(data.length / unitBytes)
    grown(scratch, units, data.length)
    const count = data.length / 4
    const seeds = tweakSeeds(encryptEcb, k2, scratch, firstUnit, units)
    const masked = scratch.masked.subarray(0, data.length)
    maskRun(seeds, words(aligned(data)), words(masked), unitBytes / 4, count)
    // The ECB output is fresh memory of the runtime's: it becomes the result (unmasked in place).
    const out = words(aligned(ecb(k1, masked)))
    maskRun(seeds, out, out, unitBytes / 4, count)
    return new Uint8Array(out.buffer, out.byteOffset, data.length)
  }
  return { encrypt: run(encryptEcb), decrypt: run(decryptEcb) }
}
