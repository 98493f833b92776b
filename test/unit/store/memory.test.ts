/** The memory store: the shared contract, plus sparseness, power loss, digests and fault injection. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { InvariantViolation } from "../../../lib/core/assert.ts"
import { GiB } from "../../../lib/core/limits.ts"
import { makeMemoryStore, memoryPageBytes } from "../../../lib/store/memory.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import { equalBytes, failureOf, registerContract, run } from "./contract.ts"

const contract = suite("memory store: BlockStore contract")
registerContract(contract, (sizeBytes) => Effect.succeed(makeMemoryStore(sizeBytes, { name: "contract" })))
contract.run()

const test = suite("memory store")

test("a 1 GiB volume holds only the pages written", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(1 * GiB)
    assert.is(store.allocatedBytes, 0)
    yield* store.write(GiB - 10, new Uint8Array(10).fill(1))
    yield* store.write(memoryPageBytes - 1, new Uint8Array(2).fill(2)) // straddles pages 0 and 1
    assert.is(store.allocatedBytes, 3 * memoryPageBytes)
    assert.equal([...(yield* store.read(memoryPageBytes - 2, 4))], [0, 2, 2, 0])
    assert.is((yield* store.read(GiB - 1, 1))[0], 1)
  })))

test("crash drops writes after the last flush and keeps flushed ones", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(256 * 1024)
    yield* store.write(0, new Uint8Array(100).fill(1))
    yield* store.flush
    yield* store.write(50, new Uint8Array(100).fill(2)) // overwrites flushed data, unflushed
    yield* store.write(200_000, new Uint8Array(10).fill(3)) // a fresh page, unflushed
    store.crash()
    const head = yield* store.read(0, 160)
    assert.ok(head.subarray(0, 100).every((b) => b === 1), "flushed bytes survive, unflushed overwrite is gone")
    assert.ok(head.subarray(100).every((b) => b === 0))
    assert.ok((yield* store.read(200_000, 10)).every((b) => b === 0), "unflushed fresh page is gone")
  })))

test("crash reopens a closed store and keeps meta (written durably)", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(4096)
    const meta = { volume: "ns/v", sizeBytes: 4096, epoch: 7, role: "replica", state: "syncing", updatedAtMs: 5 } as const
    yield* store.writeMeta(meta)
    yield* store.close
    store.crash()
    assert.equal(yield* store.readMeta, meta)
  })))

test("digest: equal contents give equal digests regardless of allocation; snapshot is the contents", () =>
  run(Effect.gen(function* () {
    const a = makeMemoryStore(300_000)
    const b = makeMemoryStore(300_000)
    yield* b.write(70_000, new Uint8Array(5000)) // zeros: allocates a page, changes no content
    assert.is(a.digest(), b.digest())
    yield* a.write(123, new Uint8Array([1, 2, 3]))
    assert.is.not(a.digest(), b.digest())
    yield* b.write(123, new Uint8Array([1, 2, 3]))
    assert.is(a.digest(), b.digest())
    yield* b.write(299_999, new Uint8Array([1]))
    assert.is.not(a.digest(), b.digest())
    const expected = new Uint8Array(300_000)
    expected.set([1, 2, 3], 123)
    assert.ok(equalBytes(a.snapshot(), expected))
  })))

test("failNext injects one typed error, on the chosen operation only", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(4096)
    store.failNext("no-space", { operation: "write" })
    assert.equal([...(yield* store.read(0, 2))], [0, 0], "a read is not the targeted operation")
    const failed = yield* failureOf(store.write(0, new Uint8Array([5])))
    assert.equal([failed.tag, failed.reason], ["StoreError", "no-space"])
    assert.is((yield* store.read(0, 1))[0], 0, "a failed write changes nothing")
    yield* store.write(0, new Uint8Array([5]))
    store.failNext("io")
    assert.is((yield* failureOf(store.flush)).reason, "io")
    yield* store.flush
    assert.is((yield* store.read(0, 1))[0], 5)
  })))

test("a torn write applies only its prefix, then fails; a dropping fdatasync loses the unflushed writes, then fails", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(8192)
    let fired = 0
    store.failNext("io", { operation: "write", partialBytes: 512, onFired: () => void fired++ })
    assert.is((yield* failureOf(store.write(0, new Uint8Array(4096).fill(7)))).reason, "io")
    const torn = yield* store.read(0, 4096)
    assert.ok(torn.subarray(0, 512).every((b) => b === 7) && torn.subarray(512).every((b) => b === 0), "only the first 512 bytes landed")
    assert.is(fired, 1)
    yield* store.flush
    yield* store.write(4096, new Uint8Array([9]))
    store.failNext("io", { operation: "flush", dropUnflushed: true })
    assert.is((yield* failureOf(store.flush)).reason, "io")
    assert.is((yield* store.read(4096, 1))[0], 0, "the page cache lost the unflushed write")
    assert.is((yield* store.read(0, 1))[0], 7, "flushed bytes stay")
    store.failNext("io")
    store.clearFaults()
    yield* store.flush
  })))

test("image and restore: the disk as it was (durable pages and meta), unflushed writes not included", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(65536)
    const meta = { volume: "ns/v", sizeBytes: 65536, epoch: 3, role: "replica", state: "complete", updatedAtMs: 1 } as const
    yield* store.write(0, new Uint8Array([1]))
    yield* store.writeMeta(meta)
    yield* store.flush
    yield* store.write(1, new Uint8Array([2])) // unflushed: not on the disk image
    const image = store.image()
    yield* store.write(0, new Uint8Array([5]))
    yield* store.flush
    yield* store.writeMeta({ ...meta, epoch: 4 })
    store.restore(image)
    assert.equal([...(yield* store.read(0, 2))], [1, 0])
    assert.equal((yield* store.readMeta)?.epoch, 3)
  })))

test("zeros written into a hole allocate nothing; peek reads a closed store", () =>
  run(Effect.gen(function* () {
    const store = makeMemoryStore(4 * memoryPageBytes)
    yield* store.write(0, new Uint8Array(2 * memoryPageBytes))
    assert.is(store.allocatedBytes, 0)
    yield* store.write(10, new Uint8Array([3]))
    yield* store.close
    assert.is(store.peek(10, 1)[0], 3)
  })))

test("a size outside 0..volumeSizeBytesMax is an invariant violation", () => {
  assert.throws(() => makeMemoryStore(-1), (error: unknown) => error instanceof InvariantViolation)
  assert.throws(() => makeMemoryStore(2 ** 60), (error: unknown) => error instanceof InvariantViolation)
})

test("growth allocates nothing and survives a power loss; the Stores service grows a smaller copy and keeps a bigger one", () =>
  run(Effect.gen(function* () {
    const { service, byPath } = makeMemoryStores()
    const first = yield* service.open("/d/ns/v.img", 64 * 1024)
    yield* first.write(100, new Uint8Array([1, 2]))
    yield* first.flush
    yield* first.grow(1 * GiB)
    assert.is(byPath.get("/d/ns/v.img")!.allocatedBytes, memoryPageBytes, "a grown range is holes")
    byPath.get("/d/ns/v.img")!.crash()
    const again = yield* service.open("/d/ns/v.img", 64 * 1024)
    assert.is(again.sizeBytes, 1 * GiB, "the grown size survived the crash and is never truncated")
    assert.is(again.createdEmpty, false)
    const bigger = yield* service.open("/d/ns/v.img", 2 * GiB)
    assert.is(bigger.sizeBytes, 2 * GiB)
    assert.is(first.sizeBytes, 2 * GiB, "every handle of the copy reads the current size")
    assert.equal([...(yield* bigger.read(99, 4))], [0, 1, 2, 0])
  })))

test.run()
