/**
 * A volume's cipher: its bytes on every copy are AES-256-XTS ciphertext, one data unit of
 * `encryptionUnitBytes` (4 KiB, the page and file-system block size) at a time, the tweak being
 * the unit's index. Pure, given an `XtsCipher` (primitives.ts).
 *
 * Why XTS: it is the standard for storage that must stay the same size (IEEE 1619, NIST SP
 * 800-38E; dm-crypt, BitLocker, FileVault use it): no room per sector for a nonce or a tag, and
 * the same plaintext at two offsets gives different ciphertext. What it does not give (no tamper
 * detection: a changed ciphertext block decrypts to 16 garbage bytes, unnoticed; a unit rewritten
 * with the same plaintext shows as the same ciphertext) is written down in docs/design.md.
 *
 * A unit never written holds zeros on every copy (sparse files, fresh replicas); it reads as
 * zeros. A written unit is never all zeros in ciphertext (a chance of 2^-32768), so the rule
 * cannot hide data; it shows which units were ever written, as the sparse file already does.
 *
 * Writes that do not cover whole units are widened to whole units (the edge units read,
 * decrypted, merged, encrypted again); `unitSpan` and `mergeEdges` do the arithmetic. The caller
 * (master/encryptedWrite.ts) orders that read-modify-write against every other write (its order lock).
 *
 * `encryptBackground` / `decryptBackground` give the same bytes as an Effect that runs a big run
 * on the cipher's worker threads (XtsCipher.background, where the runtime has them), inline
 * otherwise; the master uses them on its IO path so the cipher overlaps disk and network IO.
 */
import { Effect } from "effect"
import { assert } from "../core/assert.ts"
import { sectorBytes, writeChunkBytesMax } from "../core/limits.ts"
import { aesBlockBytes, type XtsCipher } from "./primitives.ts"

/** The data unit of encryption at rest (4 KiB). */
export const encryptionUnitBytes = 4096
// An encrypted write is cut into chunks on unit boundaries; a volume's short last unit is whole sectors (AES blocks).
assert(writeChunkBytesMax % encryptionUnitBytes === 0 && sectorBytes % 16 === 0, "write chunks are whole units, sectors whole AES blocks")
/** The algorithm name recorded with an encrypted volume. */
export const volumeCipherName = "aes-256-xts"

export interface VolumeCipher {
  readonly unitBytes: number
  /** Ciphertext of `plain`, which starts at a unit boundary and covers whole units (the last may end at the volume's end). */
  readonly encrypt: (offset: number, plain: Uint8Array) => Uint8Array
  /** Plaintext of `stored` (same alignment); a unit whose stored bytes are all zeros was never written and reads as zeros. */
  readonly decrypt: (offset: number, stored: Uint8Array) => Uint8Array
  /** `encrypt`, on a worker thread when the run is big enough and the runtime has them. */
  readonly encryptBackground: (offset: number, plain: Uint8Array) => Effect.Effect<Uint8Array>
  /** `decrypt`, on a worker thread when the run is big enough and the runtime has them. */
  readonly decryptBackground: (offset: number, stored: Uint8Array) => Effect.Effect<Uint8Array>
}

/** The whole units covering [offset, offset + length), clipped at the volume's end. */
export const unitSpan = (offset: number, length: number, sizeBytes: number, unitBytes = encryptionUnitBytes): { readonly start: number; readonly end: number } => {
  const start = Math.floor(offset / unitBytes) * unitBytes
  const end = Math.min(sizeBytes, Math.ceil((offset + length) / unitBytes) * unitBytes)
  return { start, end }
}

/** Whether [offset, offset + length) starts and ends on unit boundaries (or the volume's end). */
export const isUnitAligned = (offset: number, length: number, sizeBytes: number, unitBytes = encryptionUnitBytes): boolean => {
  const span = unitSpan(offset, length, sizeBytes, unitBytes)
  return span.start === offset && span.end === offset + length
}

const allZero = (bytes: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false
  return true
}

/** Zeros over every unit whose stored bytes are all zeros (never written). */
const zeroUnwritten = (stored: Uint8Array, plain: Uint8Array, unitBytes: number): Uint8Array => {
  for (let at = 0; at < stored.length; at += unitBytes) {
    const end = Math.min(stored.length, at + unitBytes)
    if (allZero(stored, at, end)) plain.fill(0, at, end)
  }
  return plain
}

export const makeVolumeCipher = (xts: XtsCipher, unitBytes = encryptionUnitBytes): VolumeCipher => {
  assert(unitBytes % aesBlockBytes === 0 && unitBytes > 0, "a data unit is whole AES blocks")
  const check = (offset: number, bytes: Uint8Array) =>
    assert(offset % unitBytes === 0 && bytes.length % aesBlockBytes === 0, "encrypted IO covers whole units")
  const background = xts.background
  const encrypt = (offset: number, plain: Uint8Array) => {
    check(offset, plain)
    return xts.encrypt(offset / unitBytes, unitBytes, plain)
  }
  const decrypt = (offset: number, stored: Uint8Array) => {
    check(offset, stored)
    return zeroUnwritten(stored, xts.decrypt(offset / unitBytes, unitBytes, stored), unitBytes)
  }
  return {
    unitBytes,
    encrypt,
    decrypt,
    encryptBackground: (offset, plain) => {
      if (!background || plain.length < background.minBytes) return Effect.sync(() => encrypt(offset, plain))
      check(offset, plain)
      return background.encrypt(offset / unitBytes, unitBytes, plain)
    },
    decryptBackground: (offset, stored) => {
      if (!background || stored.length < background.minBytes) return Effect.sync(() => decrypt(offset, stored))
      check(offset, stored)
      return Effect.map(background.decrypt(offset / unitBytes, unitBytes, stored), (plain) => zeroUnwritten(stored, plain, unitBytes))
    },
  }
}

/**
 * The plaintext of the whole units [start, end) after a write of `data` at `offset`: the user's
 * bytes over the decrypted edge units. `head`/`tail` are the current plaintext of the first and
 * last unit (undefined when the write covers that unit whole).
 */
export const mergeEdges = (
  span: { readonly start: number; readonly end: number },
  offset: number,
  data: Uint8Array,
  head: Uint8Array | undefined,
  tail: Uint8Array | undefined,
): Uint8Array => {
  const merged = new Uint8Array(span.end - span.start)
  if (head) merged.set(head, 0)
  if (tail) merged.set(tail, merged.length - tail.length)
  merged.set(data, offset - span.start)
  return merged
}
