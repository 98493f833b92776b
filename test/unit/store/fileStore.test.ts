/**
 * The file store: the shared contract on a real file, plus sparseness, reopening, size checks,
 * meta damage and a full disk (a 1 MiB tmpfs; needs root to mount, skipped with a reason otherwise).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { KiB, MiB, TiB } from "../../../lib/core/limits.ts"
import { metaPathOf, openFileStore, writesOnThreadPool } from "../../../lib/platform/fileStore.ts"
import { failureOf, registerContract, run } from "./contract.ts"

const root = mkdtempSync(join(tmpdir(), "replivol-store-"))
let fileCount = 0
const freshPath = () => join(root, `volume-${++fileCount}.img`)

const contract = suite("file store: BlockStore contract")
registerContract(contract, (sizeBytes) => openFileStore({ path: freshPath(), sizeBytes, create: true }))
contract.run()

// stallMs 0: every write counts as stalled, so from the first one on this process's file stores
// write on the thread pool (the path a node takes while the kernel throttles writers).
const pooled = suite("file store on the thread pool: BlockStore contract")
registerContract(pooled, (sizeBytes) => openFileStore({ path: freshPath(), sizeBytes, create: true, stallMs: 0 }))
pooled.run()

const ordering = suite("file store on the thread pool: ordering")
ordering("overlapping writes issued at once land in the order they started; reads wait for them", () =>
  run(Effect.gen(function* () {
    const store = yield* openFileStore({ path: freshPath(), sizeBytes: 1 * MiB, create: true, stallMs: 0 })
    yield* store.write(0, new Uint8Array(4 * KiB).fill(1)) // trips the thread-pool mode
    assert.ok(yield* writesOnThreadPool, "a write slower than stallMs sends writes to the thread pool")
    // 64 writes of different lengths over the same 64 KiB, all started before any completes.
    const writes = Array.from({ length: 64 }, (_, i) => ({ offset: (i * 4 * KiB) % (32 * KiB), bytes: new Uint8Array(((i % 8) + 1) * 4 * KiB).fill(i + 1) }))
    const expected = new Uint8Array(64 * KiB)
    for (const { offset, bytes } of writes) expected.set(bytes.subarray(0, Math.min(bytes.length, expected.length - offset)), offset)
    const fibers = writes.map(({ offset, bytes }) => Effect.runFork(store.write(offset, bytes.subarray(0, Math.min(bytes.length, 64 * KiB - offset)))))
    const readDuring = yield* store.read(0, 64 * KiB)
    for (const fiber of fibers) yield* Fiber.join(fiber)
    const after = yield* store.read(0, 64 * KiB)
    assert.ok(Buffer.from(after).equals(Buffer.from(expected)), "the last write started wins on every byte")
    assert.ok(Buffer.from(readDuring).equals(Buffer.from(expected)), "a read started after the writes sees all of them")
  })))

ordering("closing while writes are in flight: they finish on the open file, later IO fails with closed", () =>
  run(Effect.gen(function* () {
    const path = freshPath()
    const data = new Uint8Array(256 * KiB).fill(7)
    yield* Effect.scoped(Effect.gen(function* () {
      const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true, stallMs: 0 })
      yield* store.write(0, new Uint8Array(1))
      const fibers = [0, 1, 2].map((i) => Effect.runFork(store.write(i * 256 * KiB, data)))
      yield* store.close
      for (const fiber of fibers) yield* Fiber.join(fiber)
      const late = yield* failureOf(store.write(0, data))
      assert.is(late.reason, "closed")
    }))
    const reopened = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: false })
    const back = yield* reopened.read(0, 3 * 256 * KiB)
    assert.ok(back.every((byte) => byte === 7), "every write that completed is in the file")
  })))
ordering("a thread-pool write that outlasts the disk timeout fails typed; its bytes still land, and a later read waits for them", () =>
  run(Effect.gen(function* () {
    const store = yield* openFileStore({ path: freshPath(), sizeBytes: 64 * MiB, create: true, stallMs: 0, diskTimeoutMs: 1 })
    // Trips the thread-pool mode. If an earlier test already tripped it, this write goes to the
    // pool too, and on a loaded machine even one byte may outlast 1 ms: either outcome is fine here.
    yield* Effect.exit(store.write(0, new Uint8Array(1)))
    assert.ok(yield* writesOnThreadPool, "writes go to the thread pool")
    const data = new Uint8Array(48 * MiB).fill(5)
    const failed = yield* failureOf(store.write(0, data))
    assert.is(failed.reason, "io")
    assert.match(failed.message, /did not finish within 1 ms/)
    data.fill(9) // the caller may reuse its buffer at once: the store wrote its own copy
    const back = yield* store.read(48 * MiB - 4096, 4096)
    assert.ok(back.every((byte) => byte === 5), "the read waited for the write in flight, which wrote the bytes given")
  })))

ordering.run()

const test = suite("file store")
test.after(() => rmSync(root, { recursive: true, force: true }))

test("a 1 TiB volume file is sparse: it uses almost no disk", () =>
  run(Effect.gen(function* () {
    const path = freshPath()
    const store = yield* openFileStore({ path, sizeBytes: 1 * TiB, create: true })
    yield* store.write(TiB - 4096, new Uint8Array(4096).fill(7))
    yield* store.write(512 * 1024 ** 3, new Uint8Array(10).fill(8))
    yield* store.flush
    const stat = statSync(path)
    assert.is(stat.size, TiB)
    assert.ok(stat.blocks * 512 <= 1 * MiB, `allocated ${stat.blocks * 512} bytes for 1 TiB`)
    assert.ok((yield* store.read(TiB - 4096, 4096)).every((b) => b === 7))
  })))

test("growth is sparse and durable; an open with atLeast grows a smaller copy and never truncates a bigger one", async () => {
  const path = freshPath()
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true })
    yield* store.write(0, new Uint8Array(4096).fill(3))
    yield* store.flush
    const before = statSync(path).blocks
    yield* store.grow(64 * 1024 ** 3)
    const stat = statSync(path)
    assert.is(stat.size, 64 * 1024 ** 3)
    assert.is(stat.blocks, before, "growing 1 MiB to 64 GiB allocates nothing")
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 64 * 1024 ** 3, create: false })
    assert.equal([...(yield* store.read(4095, 2))], [3, 0])
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true, atLeast: true })
    assert.is(store.sizeBytes, 64 * 1024 ** 3, "a bigger copy keeps its size")
    assert.is(store.createdEmpty, false)
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 128 * 1024 ** 3, create: true, atLeast: true })
    assert.is(store.sizeBytes, 128 * 1024 ** 3)
    assert.is(statSync(path).size, 128 * 1024 ** 3, "a smaller copy is grown")
    assert.is(store.createdEmpty, false, "a grown copy with history is not provably zeros")
    assert.equal([...(yield* store.read(4095, 2))], [3, 0])
    assert.ok((yield* store.read(128 * 1024 ** 3 - 4096, 4096)).every((b) => b === 0))
  }))
  const exact = await run(Effect.flip(openFileStore({ path, sizeBytes: 1 * MiB, create: false })))
  assert.is(exact.reason, "size-mismatch", "without atLeast the size must match")
})

test("reopening keeps data and meta", async () => {
  const path = freshPath()
  const meta = { volume: "ns/db", sizeBytes: 1 * MiB, epoch: 4, role: "master", state: "in-sync", updatedAtMs: 99 } as const
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true })
    yield* store.write(1000, new Uint8Array([1, 2, 3]))
    yield* store.writeMeta(meta)
    yield* store.flush
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: false })
    assert.equal([...(yield* store.read(999, 5))], [0, 1, 2, 3, 0])
    assert.equal(yield* store.readMeta, meta)
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true }) // open-or-create: opens it
    assert.equal([...(yield* store.read(1000, 3))], [1, 2, 3])
  }))
})

test("the copy identity survives a reopen; only the open that created the file says it holds zeros", async () => {
  const path = freshPath()
  const meta = { volume: "ns/db", sizeBytes: 1 * MiB, epoch: 3, role: "replica", state: "complete", updatedAtMs: 5, uid: "k2x9", generation: "3-ab-cd" } as const
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true })
    assert.is(store.createdEmpty, true, "this open created the file")
    yield* store.writeMeta(meta)
  }))
  await run(Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 1 * MiB, create: true })
    assert.is(store.createdEmpty, false, "a file with history is not provably zeros")
    assert.equal(yield* store.readMeta, meta)
    const tooLong = yield* failureOf(store.writeMeta({ ...meta, uid: "x".repeat(65) }))
    assert.is(tooLong.reason, "corrupt-meta")
    assert.match(tooLong.message, "uid must be")
  }))
})

test("opening with another size, exclusively, or a missing file fails with a typed reason", () =>
  run(Effect.gen(function* () {
    const path = freshPath()
    yield* Effect.scoped(openFileStore({ path, sizeBytes: 64 * KiB, create: true }))
    const mismatch = yield* failureOf(Effect.scoped(openFileStore({ path, sizeBytes: 128 * KiB, create: true })))
    assert.is(mismatch.reason, "size-mismatch")
    assert.ok(mismatch.message.includes(String(64 * KiB)) && mismatch.message.includes(String(128 * KiB)), mismatch.message)
    const exists = yield* failureOf(Effect.scoped(openFileStore({ path, sizeBytes: 64 * KiB, create: true, exclusive: true })))
    assert.is(exists.reason, "exists")
    const missing = yield* failureOf(Effect.scoped(openFileStore({ path: freshPath(), sizeBytes: 4096, create: false })))
    assert.is(missing.reason, "io")
    assert.ok(missing.message.includes("ENOENT"), missing.message)
    assert.is((yield* failureOf(Effect.scoped(openFileStore({ path: freshPath(), sizeBytes: -1, create: true })))).reason, "out-of-range")
  })))

test("an empty file left by a crash during creation is extended on open-or-create", () =>
  run(Effect.gen(function* () {
    const path = freshPath()
    writeFileSync(path, "")
    const store = yield* openFileStore({ path, sizeBytes: 8192, create: true })
    assert.is(statSync(path).size, 8192)
    assert.is((yield* store.read(8191, 1))[0], 0)
  })))

test("a damaged or foreign meta record is refused, not trusted", () =>
  run(Effect.gen(function* () {
    const path = freshPath()
    const store = yield* openFileStore({ path, sizeBytes: 4096, create: true })
    writeFileSync(metaPathOf(path), "{not json")
    assert.is((yield* failureOf(store.readMeta)).reason, "corrupt-meta")
    writeFileSync(metaPathOf(path), JSON.stringify({ volume: "a/b", sizeBytes: 4096, epoch: 1, role: "boss", state: "x", updatedAtMs: 1 }))
    const badRole = yield* failureOf(store.readMeta)
    assert.is(badRole.reason, "corrupt-meta")
    assert.ok(badRole.message.includes("role"), badRole.message)
    writeFileSync(metaPathOf(path), JSON.stringify({ volume: "a/b", sizeBytes: 8192, epoch: 1, role: "replica", state: "x", updatedAtMs: 1 }))
    assert.is((yield* failureOf(store.readMeta)).reason, "size-mismatch")
    writeFileSync(metaPathOf(path), "x".repeat(10_000))
    assert.is((yield* failureOf(store.readMeta)).reason, "corrupt-meta")
  })))

test("the scope closes the file: a store used after its scope fails with closed", async () => {
  const store = await run(openFileStore({ path: freshPath(), sizeBytes: 4096, create: true }))
  const failure = await Effect.runPromise(failureOf(store.read(0, 1)))
  assert.is(failure.reason, "closed")
})

test("a flush running when the store closes still completes; later use fails with closed", () =>
  run(Effect.gen(function* () {
    const store = yield* openFileStore({ path: freshPath(), sizeBytes: 1 * MiB, create: true })
    yield* store.write(0, new Uint8Array(64 * KiB).fill(1))
    const flushing = yield* Effect.forkChild(store.flush)
    yield* Effect.yieldNow
    yield* store.close
    const flushed = yield* Effect.result(Fiber.join(flushing))
    assert.is(flushed._tag, "Success")
    assert.is((yield* failureOf(store.flush)).reason, "closed")
  })))

/** Mounts a 1 MiB tmpfs on a fresh directory; returns its unmount-and-remove, or why it cannot. */
function mountTinyTmpfs(): { dir: string; unmount: () => void } | string {
  if (process.platform !== "linux") return `needs Linux tmpfs (platform ${process.platform})`
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs"
  const dir = mkdtempSync(join(tmpdir(), "replivol-full-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "pipe", timeout: 10_000 })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    return `mount -t tmpfs failed: ${String((error as { stderr?: unknown }).stderr ?? error).trim()}`
  }
  return {
    dir,
    unmount: () => {
      execFileSync("umount", [dir], { stdio: "pipe", timeout: 10_000 })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// Probe once at load (mount and unmount at once) so the test is skipped, with the reason
// printed, where mounting is not allowed; the test mounts its own tmpfs and unmounts in finally.
const probe = mountTinyTmpfs()
if (typeof probe !== "string") probe.unmount()
const fullDiskName = "a full disk gives a typed no-space error and earlier data stays readable"
if (typeof probe === "string") {
  console.log(`skipping the full-disk test: ${probe}`)
  test.skip(fullDiskName, () => {})
} else {
  test(fullDiskName, async () => {
    const disk = mountTinyTmpfs()
    assert.type(disk, "object", String(disk))
    if (typeof disk === "string") return
    try {
      await run(fillDisk(join(disk.dir, "volume.img")))
    } finally {
      disk.unmount()
    }
  })
}

/** Writes an 8 MiB sparse volume on a 1 MiB disk until it is full, then checks the early data. */
const fillDisk = (path: string) =>
  Effect.gen(function* () {
    const store = yield* openFileStore({ path, sizeBytes: 8 * MiB, create: true })
    const early = new Uint8Array(256 * KiB).map((_, i) => (i * 31) & 0xff)
    yield* store.write(0, early)
    yield* store.flush
    const chunk = new Uint8Array(64 * KiB).fill(0xab)
    let failure: { reason: string; message: string } | undefined
    for (let offset = 256 * KiB; offset < 8 * MiB && failure === undefined; offset += chunk.length) {
      const result = yield* Effect.result(store.write(offset, chunk))
      if (result._tag === "Failure") failure = result.failure
    }
    assert.ok(failure !== undefined, "writing 8 MiB into a 1 MiB tmpfs must fail")
    assert.is(failure.reason, "no-space")
    assert.ok(failure.message.includes("ENOSPC"), failure.message)
    const back = yield* store.read(0, early.length)
    assert.ok(back.every((b, i) => b === early[i]), "data written before the disk filled is intact")
    yield* store.close // before the unmount: an open file keeps the tmpfs busy
  })

test.run()
