/** The dirty-region bitmap: marking, clipping, iteration order, counts, serialization, merge. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { InvariantViolation } from "../../../lib/core/assert.ts"
import { KiB, MiB, TiB, dirtyRegionBytesFor, dirtyRegionsPerVolumeMax } from "../../../lib/core/limits.ts"
import { DirtyBitmap, regionCountMax } from "../../../lib/store/dirtyBitmap.ts"
import { seeded } from "./contract.ts"

const test = suite("dirty bitmap")
const indexes = (bitmap: DirtyBitmap) => [...bitmap.regions()].map((r) => r.index)
const failure = <A, E extends { _tag: string; reason: string }>(effect: Effect.Effect<A, E>) =>
  Effect.runSync(Effect.flip(effect).pipe(Effect.map((e) => [e._tag, e.reason])))

test("a write across region boundaries marks every region it touches, and only those", () => {
  const bitmap = new DirtyBitmap(10 * 4096, 4096)
  bitmap.mark(4095, 2) // last byte of region 0, first of region 1
  assert.equal(indexes(bitmap), [0, 1])
  bitmap.mark(3 * 4096, 4096) // exactly region 3
  bitmap.mark(5 * 4096 + 1, 2 * 4096) // regions 5, 6, 7
  bitmap.mark(9 * 4096, 0) // zero length marks nothing
  assert.equal(indexes(bitmap), [0, 1, 3, 5, 6, 7])
  assert.is(bitmap.dirtyRegionCount, 6)
  assert.is(bitmap.isDirty(4), false)
  assert.is(bitmap.isDirty(6), true)
})

test("the last region is clipped to the volume size in regions() and dirtyBytes", () => {
  const sizeBytes = 3 * MiB + 1000
  const bitmap = new DirtyBitmap(sizeBytes, MiB)
  assert.is(bitmap.regionBytes, MiB)
  assert.is(bitmap.regionCount, 4)
  bitmap.mark(sizeBytes - 1, 1)
  assert.equal([...bitmap.regions()], [{ index: 3, offset: 3 * MiB, length: 1000 }])
  assert.is(bitmap.dirtyBytes, 1000)
  bitmap.mark(0, 1)
  assert.is(bitmap.dirtyBytes, MiB + 1000)
  bitmap.markAll()
  assert.is(bitmap.dirtyBytes, sizeBytes)
  assert.is(bitmap.dirtyRegionCount, 4)
})

test("regions() ascends across words; counts follow mark, clear, clearAll and markAll", () => {
  const bitmap = new DirtyBitmap(200 * 512, 512) // 200 regions: 7 words, the last one partial
  const marked = [199, 0, 31, 32, 63, 64, 150, 95]
  for (const index of marked) bitmap.mark(index * 512 + 7, 3)
  assert.equal(indexes(bitmap), [...marked].sort((a, b) => a - b))
  assert.is(bitmap.dirtyRegionCount, marked.length)
  bitmap.mark(31 * 512, 512) // already dirty: count unchanged
  assert.is(bitmap.dirtyRegionCount, marked.length)
  bitmap.clear(63)
  bitmap.clear(63) // clearing a clean region changes nothing
  bitmap.clear(1)
  assert.is(bitmap.dirtyRegionCount, marked.length - 1)
  assert.is(bitmap.isDirty(63), false)
  for (const region of bitmap.regions()) bitmap.clear(region.index) // clearing while iterating
  assert.is(bitmap.dirtyRegionCount, 0)
  assert.equal(indexes(bitmap), [])
  bitmap.markAll()
  assert.is(bitmap.dirtyRegionCount, 200)
  assert.is(indexes(bitmap).length, 200)
  bitmap.clearAll()
  assert.equal([bitmap.dirtyRegionCount, bitmap.dirtyBytes], [0, 0])
})

test("random marks agree with a reference set (seeded)", () => {
  const seed = 424242
  const random = seeded(seed)
  const regionBytes = 4 * KiB
  const sizeBytes = 1000 * regionBytes - 123
  const bitmap = new DirtyBitmap(sizeBytes, regionBytes)
  const reference = new Set<number>()
  for (let step = 0; step < 500; step++) {
    const offset = Math.floor(random() * sizeBytes)
    const length = Math.floor(random() * Math.min(200_000, sizeBytes - offset))
    bitmap.mark(offset, length)
    for (let r = Math.floor(offset / regionBytes); length > 0 && r <= Math.floor((offset + length - 1) / regionBytes); r++) reference.add(r)
    if (random() < 0.2) {
      const victim = Math.floor(random() * bitmap.regionCount)
      bitmap.clear(victim)
      reference.delete(victim)
    }
  }
  assert.equal(indexes(bitmap), [...reference].sort((a, b) => a - b), `seed ${seed}`)
  assert.is(bitmap.dirtyRegionCount, reference.size)
})

test("toBytes / fromBytes round trip; wrong length and stray bits are typed errors", () => {
  const bitmap = new DirtyBitmap(70 * 4096, 4096) // 70 regions: 3 words
  for (const index of [0, 33, 69]) bitmap.mark(index * 4096, 1)
  const bytes = bitmap.toBytes()
  assert.is(bytes.length, 12)
  const back = Effect.runSync(DirtyBitmap.fromBytes(bytes, 70 * 4096, 4096))
  assert.equal(indexes(back), [0, 33, 69])
  assert.is(back.dirtyRegionCount, 3)
  const offsetView = new Uint8Array(20)
  offsetView.set(bytes, 5) // a view that does not start at byte 0 of its buffer
  assert.equal(indexes(Effect.runSync(DirtyBitmap.fromBytes(offsetView.subarray(5, 17), 70 * 4096, 4096))), [0, 33, 69])
  assert.equal(failure(DirtyBitmap.fromBytes(bytes.subarray(0, 8), 70 * 4096, 4096)), ["BitmapError", "length-mismatch"])
  const stray = bytes.slice()
  stray[11] = 0x80 // region 95, past the last region 69
  assert.equal(failure(DirtyBitmap.fromBytes(stray, 70 * 4096, 4096)), ["BitmapError", "stray-bits"])
})

test("merge is a union with the count kept right; clone is independent", () => {
  const a = new DirtyBitmap(64 * 4096, 4096)
  const b = new DirtyBitmap(64 * 4096, 4096)
  a.mark(0, 3 * 4096) // 0, 1, 2
  b.mark(2 * 4096, 1) // 2
  b.mark(40 * 4096, 4096 * 24) // 40..63
  const copy = a.clone()
  a.merge(b)
  assert.equal(indexes(a), [0, 1, 2, ...Array.from({ length: 24 }, (_, i) => 40 + i)])
  assert.is(a.dirtyRegionCount, 27)
  assert.equal(indexes(copy), [0, 1, 2])
  assert.throws(() => a.merge(new DirtyBitmap(64 * 4096, 8192)), (e: unknown) => e instanceof InvariantViolation)
})

test("make validates region size and region count with typed errors; a 64 TiB volume fits", () => {
  assert.equal(failure(DirtyBitmap.make(MiB, 1000)), ["BitmapError", "bad-region-size"])
  assert.equal(failure(DirtyBitmap.make(MiB, 256)), ["BitmapError", "bad-region-size"])
  assert.equal(failure(DirtyBitmap.make(-5, 4096)), ["BitmapError", "bad-volume-size"])
  assert.equal(failure(DirtyBitmap.make(64 * TiB, 512 * KiB)), ["BitmapError", "too-many-regions"])
  const big = Effect.runSync(DirtyBitmap.make(64 * TiB, MiB))
  assert.is(big.regionCount, regionCountMax)
  big.mark(64 * TiB - 1, 1)
  big.mark(3 * TiB, 2 * MiB + 1) // 3 regions
  assert.equal([big.dirtyRegionCount, big.dirtyBytes], [4, 4 * MiB])
  assert.throws(() => big.mark(64 * TiB, 1), (e: unknown) => e instanceof InvariantViolation)
})

test("the default region size grows with the volume so the bitmap stays bounded", () => {
  assert.is(dirtyRegionBytesFor(64 * MiB, 64 * KiB), 64 * KiB)
  const huge = dirtyRegionBytesFor(64 * TiB, 64 * KiB)
  assert.ok(64 * TiB / huge <= dirtyRegionsPerVolumeMax)
  assert.is(huge, 4 * MiB)
})

test("grow: in place, same region size, marks kept, new regions clean, old bitmaps merge in; past regionCountMax refused", () => {
  const bitmap = new DirtyBitmap(100 * KiB, 64 * KiB)
  bitmap.mark(70 * KiB, 10)
  const before = bitmap.clone()
  assert.is(bitmap.dirtyBytes, 36 * KiB, "the last region is clipped")
  assert.is(bitmap.grow(10 * MiB), undefined)
  assert.is(bitmap.sizeBytes, 10 * MiB)
  assert.is(bitmap.regionCount, 160)
  assert.equal(indexes(bitmap), [1], "the marks are kept")
  assert.is(bitmap.dirtyBytes, 64 * KiB, "the old last region is whole now")
  bitmap.mark(10 * MiB - 1, 1)
  before.mark(0, 1)
  bitmap.merge(before)
  assert.equal(indexes(bitmap), [0, 1, 159])
  const round = Effect.runSync(DirtyBitmap.fromBytes(bitmap.toBytes(), 10 * MiB, 64 * KiB))
  assert.equal(indexes(round), [0, 1, 159])
  assert.throws(() => bitmap.grow(MiB), (error: unknown) => error instanceof InvariantViolation)
})

test("grow past regionCountMax regions coarsens: regions double, a region is dirty if any it absorbed was, 64 TiB fits in 1 MiB regions", () => {
  const bitmap = new DirtyBitmap(4 * MiB, 64 * KiB)
  bitmap.mark(0, 1) // region 0
  bitmap.mark(3 * 64 * KiB, 1) // region 3
  bitmap.mark(4 * MiB - 1, 1) // region 63
  assert.is(bitmap.grow(regionCountMax * 64 * KiB), undefined)
  assert.is(bitmap.regionBytes, 64 * KiB, "exactly regionCountMax regions still fit")
  assert.is(bitmap.grow(regionCountMax * 64 * KiB + 512), undefined)
  assert.is(bitmap.regionBytes, 128 * KiB)
  assert.equal(indexes(bitmap), [0, 1, 31], "0 → 0, 3 → 1, 63 → 31")
  assert.is(bitmap.dirtyRegionCount, 3)
  const other = new DirtyBitmap(4 * MiB, 64 * KiB)
  other.mark(5 * 64 * KiB, 1)
  assert.is(other.grow(regionCountMax * 64 * KiB + 512), undefined)
  bitmap.merge(other)
  assert.equal(indexes(bitmap), [0, 1, 2, 31], "bitmaps grown alike merge")
  assert.is(bitmap.grow(64 * TiB), undefined)
  assert.is(bitmap.regionBytes, MiB)
  assert.equal(indexes(bitmap), [0, 3])
  assert.is(bitmap.regionCount, regionCountMax)
})

test.run()
