/**
 * A per-peer map of out-of-sync regions (DRBD's bitmap), for delta resync.
 *
 * Why: a replica that drops out and comes back should receive only the regions written while it
 * was away, not a full copy. The master marks every write it could not get acknowledged by a peer
 * in that peer's bitmap; resync walks `regions()` in ascending order and clears each region once
 * the peer has it. One bit per region (default 1 MiB, `defaults.dirtyRegionBytes`) in a
 * Uint32Array; the dirty count is kept up to date on every change, so `dirtyRegionCount` and
 * `dirtyBytes` (sync progress) cost nothing. Pure.
 *
 * Serialized form (`toBytes`): ceil(regionCount / 32) little-endian 32-bit words, bit i of word w
 * is region 32·w + i; bits past the last region are zero.
 */
import { isInside } from "../core/range.ts"
import { Data, Effect } from "effect"
import { assert } from "../core/assert.ts"
import { defaults, sectorBytes, volumeSizeBytesMax } from "../core/limits.ts"

/** Most regions one bitmap tracks (2^26 bits = 8 MiB: a 64 TiB volume at 1 MiB regions). */
export const regionCountMax = 2 ** 26

export type BitmapErrorReason = "bad-region-size" | "bad-volume-size" | "too-many-regions" | "length-mismatch" | "stray-bits"

export class BitmapError extends Data.TaggedError("BitmapError")<{
  readonly reason: BitmapErrorReason
  readonly message: string
}> {}

/** One region as resync needs it: the last region of a volume is clipped to the volume size. */
export interface DirtyRegion {
  readonly index: number
  readonly offset: number
  readonly length: number
}

/** Why (sizeBytes, regionBytes) cannot make a bitmap, or undefined when they can. */
function shapeError(sizeBytes: number, regionBytes: number): BitmapError | undefined {
  const powerOfTwo = Number.isSafeInteger(regionBytes) && regionBytes > 0 && 2 ** Math.round(Math.log2(regionBytes)) === regionBytes
  if (!powerOfTwo || regionBytes % sectorBytes !== 0)
    return new BitmapError({ reason: "bad-region-size", message: `region size ${regionBytes} bytes must be a power of two and a multiple of ${sectorBytes}` })
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > volumeSizeBytesMax)
    return new BitmapError({ reason: "bad-volume-size", message: `volume size ${sizeBytes} bytes must be an integer in 0..${volumeSizeBytesMax}` })
  const regionCount = Math.ceil(sizeBytes / regionBytes)
  if (regionCount > regionCountMax)
    return new BitmapError({
      reason: "too-many-regions",
      message: `${sizeBytes} bytes in regions of ${regionBytes} bytes is ${regionCount} regions; at most ${regionCountMax} are allowed (use bigger regions)`,
    })
  return undefined
}

function popcount32(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}

/** Bits lo..hi (inclusive, 0..31) of a word. */
const bitMask = (lo: number, hi: number): number => ((0xffffffff >>> (31 - (hi - lo))) << lo) >>> 0

export class DirtyBitmap {
  #regionBytes: number
  #sizeBytes: number
  #regionCount: number
  #words: Uint32Array
  #dirtyCount = 0

  /** Parameters are asserted (a defect when wrong); use `DirtyBitmap.make` for values from users. */
  constructor(sizeBytes: number, regionBytes: number = defaults.dirtyRegionBytes) {
    const error = shapeError(sizeBytes, regionBytes)
    assert(error === undefined, error?.message ?? "")
    this.#sizeBytes = sizeBytes
    this.#regionBytes = regionBytes
    this.#regionCount = Math.ceil(sizeBytes / regionBytes)
    this.#words = new Uint32Array(Math.ceil(this.#regionCount / 32))
  }

  /** The volume size covered (changed only by `grow`). */
  get sizeBytes(): number {
    return this.#sizeBytes
  }

  /** Bytes per region (doubled by `grow` when the grown volume needs more than `regionCountMax` regions). */
  get regionBytes(): number {
    return this.#regionBytes
  }

  get regionCount(): number {
    return this.#regionCount
  }

  /**
   * Covers a volume grown to `sizeBytes` (online resize), in place. The new regions are clean
   * (they hold zeros on every copy until written). The region size stays, unless the grown volume
   * needs more than `regionCountMax` regions of it: then regions double until it fits (a region
   * is dirty if any of the regions it absorbs was; 64 TiB fits in regions of 1 MiB), and region
   * indexes change meaning — a walker must notice (`regionBytes`) and start again. A size below
   * the current one, or above volumeSizeBytesMax, is a defect.
   */
  grow(sizeBytes: number): BitmapError | undefined {
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= this.#sizeBytes && sizeBytes <= volumeSizeBytesMax, `a bitmap grows (${this.#sizeBytes} → ${sizeBytes}, at most ${volumeSizeBytesMax})`)
    let regionBytes = this.#regionBytes
    while (Math.ceil(sizeBytes / regionBytes) > regionCountMax) regionBytes *= 2
    if (regionBytes !== this.#regionBytes) this.#coarsen(regionBytes)
    const error = shapeError(sizeBytes, this.#regionBytes)
    if (error !== undefined) return error
    const regionCount = Math.ceil(sizeBytes / this.#regionBytes)
    const wordCount = Math.ceil(regionCount / 32)
    if (wordCount > this.#words.length) {
      const words = new Uint32Array(wordCount)
      words.set(this.#words)
      this.#words = words
    }
    // The last region of the old size was clipped; it now covers its whole length again (its bit is unchanged).
    this.#sizeBytes = sizeBytes
    this.#regionCount = regionCount
    return undefined
  }

  /** A clean bitmap, or a typed error naming what is wrong with the sizes. */
  static make(sizeBytes: number, regionBytes: number = defaults.dirtyRegionBytes): Effect.Effect<DirtyBitmap, BitmapError> {
    return Effect.suspend(() => {
      const error = shapeError(sizeBytes, regionBytes)
      return error === undefined ? Effect.succeed(new DirtyBitmap(sizeBytes, regionBytes)) : Effect.fail(error)
    })
  }

  /** Reads the form written by `toBytes`, checking its length and that no bit lies past the last region. */
  static fromBytes(bytes: Uint8Array, sizeBytes: number, regionBytes: number): Effect.Effect<DirtyBitmap, BitmapError> {
    return Effect.flatMap(DirtyBitmap.make(sizeBytes, regionBytes), (bitmap) => {
      const words = bitmap.#words
      if (bytes.length !== words.length * 4)
        return Effect.fail(new BitmapError({
          reason: "length-mismatch",
          message: `bitmap of ${bitmap.regionCount} regions needs ${words.length * 4} bytes, got ${bytes.length}`,
        }))
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      let count = 0
      for (let w = 0; w < words.length; w++) {
        words[w] = view.getUint32(w * 4, true)
        count += popcount32(words[w]!)
      }
      const tailBits = bitmap.regionCount % 32
      if (tailBits !== 0 && (words[words.length - 1]! & ~bitMask(0, tailBits - 1)) !== 0)
        return Effect.fail(new BitmapError({ reason: "stray-bits", message: `bitmap has bits set past its last region ${bitmap.regionCount - 1}` }))
      bitmap.#dirtyCount = count
      return Effect.succeed(bitmap)
    })
  }

  get dirtyRegionCount(): number {
    return this.#dirtyCount
  }

  /** Bytes covered by dirty regions, the last region clipped to the volume size. */
  get dirtyBytes(): number {
    if (this.#dirtyCount === 0) return 0
    const last = this.regionCount - 1
    const clipBytes = this.isDirty(last) ? last * this.regionBytes + this.regionBytes - this.sizeBytes : 0
    return this.#dirtyCount * this.regionBytes - clipBytes
  }

  /** The index of the region holding byte `offset`. */
  regionIndexOf(offset: number): number {
    assert(Number.isSafeInteger(offset) && offset >= 0 && offset < this.sizeBytes, `offset ${offset} inside 0..${this.sizeBytes - 1}`)
    return Math.floor(offset / this.regionBytes)
  }

  /** Marks every region touched by [offset, offset + length); zero length marks nothing. */
  mark(offset: number, length: number): void {
    assert(isInside(this.sizeBytes, offset, length), `dirty range offset ${offset}, length ${length} inside a volume of ${this.sizeBytes} bytes`)
    if (length === 0) return
    this.#setRange(Math.floor(offset / this.regionBytes), Math.floor((offset + length - 1) / this.regionBytes))
  }

  markAll(): void {
    if (this.regionCount > 0) this.#setRange(0, this.regionCount - 1)
  }

  /** Whether any region touched by [offset, offset + length) is dirty (by offset: independent of the region size). */
  anyDirtyIn(offset: number, length: number): boolean {
    if (length === 0 || offset >= this.#sizeBytes) return false
    const first = Math.floor(offset / this.#regionBytes)
    const last = Math.floor((Math.min(offset + length, this.#sizeBytes) - 1) / this.#regionBytes)
    for (let index = first; index <= last; index++) if (this.isDirty(index)) return true
    return false
  }

  isDirty(regionIndex: number): boolean {
    this.#assertIndex(regionIndex)
    return ((this.#words[regionIndex >>> 5]! >>> (regionIndex & 31)) & 1) === 1
  }

  clear(regionIndex: number): void {
    this.#assertIndex(regionIndex)
    const w = regionIndex >>> 5
    const bit = (1 << (regionIndex & 31)) >>> 0
    if ((this.#words[w]! & bit) === 0) return
    this.#words[w] = (this.#words[w]! & ~bit) >>> 0
    this.#dirtyCount--
  }

  clearAll(): void {
    this.#words.fill(0)
    this.#dirtyCount = 0
  }

  /** The region with this index, clipped to the volume size. */
  region(regionIndex: number): DirtyRegion {
    this.#assertIndex(regionIndex)
    const offset = regionIndex * this.regionBytes
    return { index: regionIndex, offset, length: Math.min(this.regionBytes, this.sizeBytes - offset) }
  }

  /** Dirty regions in ascending order. Clearing regions while iterating is allowed. */
  *regions(): Generator<DirtyRegion, void, undefined> {
    const words = this.#words
    for (let w = 0; w < words.length; w++) {
      let bits = words[w]!
      while (bits !== 0) {
        const lowest = (bits & -bits) >>> 0
        bits = (bits ^ lowest) >>> 0
        yield this.region(w * 32 + 31 - Math.clz32(lowest))
      }
    }
  }

  /** Marks every region that is dirty in `other` (a bitmap of the same region size, of this volume or of it before it grew). */
  merge(other: DirtyBitmap): void {
    assert(
      other.sizeBytes <= this.sizeBytes && other.regionBytes === this.regionBytes,
      `merging bitmaps of the same region size, the other no bigger (${this.sizeBytes}/${this.regionBytes} vs ${other.sizeBytes}/${other.regionBytes})`,
    )
    const words = this.#words
    const theirs = other.#words
    for (let w = 0; w < theirs.length; w++) {
      const before = words[w]!
      const after = (before | theirs[w]!) >>> 0
      if (after !== before) {
        words[w] = after
        this.#dirtyCount += popcount32(after) - popcount32(before)
      }
    }
  }

  /** An independent copy (e.g. the set of regions a resync pass started from). */
  clone(): DirtyBitmap {
    const copy = new DirtyBitmap(this.sizeBytes, this.regionBytes)
    copy.#words.set(this.#words)
    copy.#dirtyCount = this.#dirtyCount
    return copy
  }

  toBytes(): Uint8Array {
    const words = this.#words
    const bytes = new Uint8Array(words.length * 4)
    const view = new DataView(bytes.buffer)
    for (let w = 0; w < words.length; w++) view.setUint32(w * 4, words[w]!, true)
    return bytes
  }

  /** Regions of `regionBytes` (a power-of-two multiple of the current size), dirty where any absorbed region was. */
  #coarsen(regionBytes: number): void {
    const factor = regionBytes / this.#regionBytes
    const regionCount = Math.ceil(this.#sizeBytes / regionBytes)
    const words = new Uint32Array(Math.ceil(regionCount / 32))
    // Bit by bit, without a list: a bitmap may have 2^26 dirty regions.
    for (const region of this.regions()) {
      const index = Math.floor(region.index / factor)
      words[index >>> 5] = (words[index >>> 5]! | (1 << (index & 31))) >>> 0
    }
    this.#regionBytes = regionBytes
    this.#regionCount = regionCount
    this.#words = words
    let count = 0
    for (let w = 0; w < words.length; w++) count += popcount32(words[w]!)
    this.#dirtyCount = count
  }

  #assertIndex(regionIndex: number): void {
    assert(Number.isSafeInteger(regionIndex) && regionIndex >= 0 && regionIndex < this.regionCount, `region index ${regionIndex} inside 0..${this.regionCount - 1}`)
  }

  #setRange(first: number, last: number): void {
    const words = this.#words
    const firstWord = first >>> 5
    const lastWord = last >>> 5
    for (let w = firstWord; w <= lastWord; w++) {
      const mask = bitMask(w === firstWord ? first & 31 : 0, w === lastWord ? last & 31 : 31)
      const before = words[w]!
      const after = (before | mask) >>> 0
      if (after !== before) {
        words[w] = after
        this.#dirtyCount += popcount32(after) - popcount32(before)
      }
    }
  }
}
