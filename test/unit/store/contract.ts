/**
 * The BlockStore compliance suite: every store implementation registers these same tests
 * (memory.test.ts, fileStore.test.ts), so they keep one contract.
 */
import type { Test } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber, type Scope } from "effect"
import type { BlockStore, StoreError, StoreMeta } from "../../../lib/store/BlockStore.ts"

export type OpenStore = (sizeBytes: number) => Effect.Effect<BlockStore, StoreError, Scope.Scope>

/** Small seeded generator (xorshift32): test inputs are reproducible from the printed seed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state / 2 ** 32
  }
}

export const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> => Effect.runPromise(Effect.scoped(effect))

/** The failure of `effect` (it must fail), as a plain object users would match on. */
export const failureOf = <A>(effect: Effect.Effect<A, StoreError>) =>
  Effect.flip(effect).pipe(Effect.map((e) => ({ tag: e._tag, reason: e.reason, message: e.message })))

const sampleMeta = (sizeBytes: number, epoch: number): StoreMeta => ({
  volume: "default/db",
  sizeBytes,
  epoch,
  role: epoch % 2 === 0 ? "master" : "replica",
  state: "in-sync",
  updatedAtMs: 1_700_000_000_000 + epoch,
})

export function registerContract(test: Test, open: OpenStore): void {
  registerGrowth(test, open)
  test("random unaligned writes and reads match a reference array", () =>
    run(Effect.gen(function* () {
      const sizeBytes = 3 * 65536 + 1234 // not a multiple of any page or sector
      const store = yield* open(sizeBytes)
      const seed = 0x5eed1
      const random = seeded(seed)
      const reference = new Uint8Array(sizeBytes)
      for (let step = 0; step < 300; step++) {
        const offset = Math.floor(random() * sizeBytes)
        const length = Math.floor(random() * Math.min(70_000, sizeBytes - offset + 1))
        if (random() < 0.6) {
          const data = new Uint8Array(length).map(() => Math.floor(random() * 256))
          yield* store.write(offset, data)
          reference.set(data, offset)
        } else {
          const got = yield* store.read(offset, length)
          assert.is(got.length, length)
          assert.ok(equalBytes(got, reference.subarray(offset, offset + length)), `seed ${seed} step ${step}: read ${offset}+${length} differs`)
        }
      }
      yield* store.flush
      assert.ok(equalBytes(yield* store.read(0, sizeBytes), reference), `seed ${seed}: whole contents differ`)
    })))

  test("out-of-range reads and writes fail with out-of-range naming offset, length and size", () =>
    run(Effect.gen(function* () {
      const store = yield* open(8192)
      const cases: Array<[number, number]> = [[8000, 193], [-1, 1], [8193, 0], [1.5, 2], [0, Number.NaN], [2 ** 53, 1]]
      for (const [offset, length] of cases) {
        const readFailure = yield* failureOf(store.read(offset, length))
        assert.is(readFailure.reason, "out-of-range", `read ${offset}+${length}`)
        assert.ok(readFailure.message.includes(String(offset)) && readFailure.message.includes("8192"), readFailure.message)
      }
      const writeFailure = yield* failureOf(store.write(8190, new Uint8Array(3)))
      assert.equal([writeFailure.tag, writeFailure.reason], ["StoreError", "out-of-range"])
      assert.ok(writeFailure.message.includes("8190") && writeFailure.message.includes("length 3"), writeFailure.message)
      // Zero-length operations at the very end are allowed no-ops.
      assert.is((yield* store.read(8192, 0)).length, 0)
      yield* store.write(8192, new Uint8Array(0))
      assert.is((yield* store.read(8191, 1))[0], 0)
    })))

  test("100 overlapping writes started without waiting land in call order", () =>
    run(Effect.gen(function* () {
      const store = yield* open(65536)
      const reference = new Uint8Array(65536)
      const writes = Array.from({ length: 100 }, (_, i) => ({ offset: i * 37, data: new Uint8Array(5000).fill(i + 1) }))
      for (const w of writes) reference.set(w.data, w.offset)
      // Forked one after the other, none awaited before the next starts.
      const fibers = writes.map((w) => Effect.runFork(store.write(w.offset, w.data)))
      for (const fiber of fibers) yield* Fiber.join(fiber)
      assert.ok(equalBytes(yield* store.read(0, 65536), reference), "runFork: later writes must win")
      // The same through Effect.forEach with unbounded concurrency, in reverse fill values.
      const second = writes.map((w, i) => ({ offset: w.offset + 3, data: new Uint8Array(4000).fill(200 - i) }))
      for (const w of second) reference.set(w.data, w.offset)
      yield* Effect.forEach(second, (w) => store.write(w.offset, w.data), { concurrency: "unbounded", discard: true })
      assert.ok(equalBytes(yield* store.read(0, 65536), reference), "forEach: later writes must win")
      assert.is((yield* store.read(99 * 37 + 3 + 3999, 1))[0], 101)
    })))

  test("meta: absent at first, round trips, last write wins, foreign size refused", () =>
    run(Effect.gen(function* () {
      const store = yield* open(1 << 20)
      assert.is(yield* store.readMeta, undefined)
      yield* store.writeMeta(sampleMeta(1 << 20, 1))
      assert.equal(yield* store.readMeta, sampleMeta(1 << 20, 1))
      yield* store.writeMeta(sampleMeta(1 << 20, 2))
      assert.equal(yield* store.readMeta, sampleMeta(1 << 20, 2))
      const mismatch = yield* failureOf(store.writeMeta(sampleMeta(4096, 3)))
      assert.is(mismatch.reason, "size-mismatch")
      const bad = yield* failureOf(store.writeMeta({ ...sampleMeta(1 << 20, 3), epoch: -1 }))
      assert.is(bad.reason, "corrupt-meta")
      assert.equal(yield* store.readMeta, sampleMeta(1 << 20, 2), "a refused record changes nothing")
    })))

  test("after close every operation fails with closed, and close is idempotent", () =>
    run(Effect.gen(function* () {
      const store = yield* open(4096)
      yield* store.write(0, new Uint8Array([1, 2, 3]))
      yield* store.close
      yield* store.close
      const failures = [
        yield* failureOf(store.read(0, 3)),
        yield* failureOf(store.write(0, new Uint8Array(1))),
        yield* failureOf(store.flush),
        yield* failureOf(store.readMeta),
        yield* failureOf(store.writeMeta(sampleMeta(4096, 1))),
      ]
      assert.equal(failures.map((f) => f.reason), ["closed", "closed", "closed", "closed", "closed"])
    })))

  test("write copies the caller's buffer and read returns a copy the caller owns", () =>
    run(Effect.gen(function* () {
      const store = yield* open(4096)
      const buffer = new Uint8Array([1, 2, 3])
      yield* store.write(10, buffer)
      buffer.fill(9)
      const first = yield* store.read(10, 3)
      first.fill(7)
      assert.equal([...(yield* store.read(10, 3))], [1, 2, 3])
    })))

  test("flush completes and data written before it stays readable", () =>
    run(Effect.gen(function* () {
      const store = yield* open(1 << 20)
      yield* store.write(123_457, new Uint8Array([9, 8, 7]))
      yield* Effect.all([store.flush, store.flush], { concurrency: "unbounded" })
      assert.equal([...(yield* store.read(123_456, 5))], [0, 9, 8, 7, 0])
    })))
}

/** The growth rules of the contract (online resize), registered with the others. */
function registerGrowth(test: Test, open: OpenStore): void {
  test("grow: data kept, new bytes zeros, the new range usable only after it, shrink and too-big refused", () =>
    run(Effect.gen(function* () {
      const store = yield* open(8192)
      yield* store.write(8190, new Uint8Array([5, 6]))
      yield* store.writeMeta(sampleMeta(8192, 2))
      assert.is((yield* failureOf(store.write(8192, new Uint8Array([1])))).reason, "out-of-range", "past the end before growing")
      yield* store.grow(3 * 8192 + 512)
      assert.is(store.sizeBytes, 3 * 8192 + 512)
      assert.equal([...(yield* store.read(8190, 4))], [5, 6, 0, 0], "old bytes kept, new bytes read as zeros")
      assert.ok((yield* store.read(8192, 2 * 8192 + 512)).every((b) => b === 0), "the whole grown range is zeros")
      yield* store.write(3 * 8192 + 511, new Uint8Array([9]))
      assert.equal([...(yield* store.read(3 * 8192 + 511, 1))], [9])
      // The record written before the growth still reads (a crash before its rewrite); a new one must say the new size.
      assert.is((yield* store.readMeta)?.sizeBytes, 8192)
      assert.is((yield* failureOf(store.writeMeta(sampleMeta(8192, 3)))).reason, "size-mismatch")
      yield* store.writeMeta(sampleMeta(3 * 8192 + 512, 3))
      assert.is((yield* store.readMeta)?.sizeBytes, 3 * 8192 + 512)
      yield* store.grow(3 * 8192 + 512) // the same size: nothing happens
      const shrink = yield* failureOf(store.grow(8192))
      assert.is(shrink.reason, "shrink")
      assert.match(shrink.message, /allowed: 25088 bytes or more/)
      assert.is((yield* failureOf(store.grow(2 ** 60))).reason, "out-of-range")
      assert.is(store.sizeBytes, 3 * 8192 + 512, "a refused growth changes nothing")
      yield* store.close
      assert.is((yield* failureOf(store.grow(1 << 20))).reason, "closed")
    })))
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false
  return true
}
