/**
 * Continuity of a copy across process restarts (lib/store/continuity.ts): a copy proves it holds
 * what its node's earlier processes wrote only while the machine's boot and the copy's record are
 * the ones its marker names, and never after a failed write or fdatasync.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import type { BlockStore, StoreMeta } from "../../../lib/store/BlockStore.ts"
import { continueCopy } from "../../../lib/store/continuity.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import { fileStores } from "../../../lib/platform/fileStores.ts"
import type { Stores } from "../../../lib/store/Stores.ts"

const test = suite("copy continuity across process restarts")
const path = "/node/copies/default/db.img"
const sizeBytes = 64 * 1024
const meta = (generation: string, state = "complete"): StoreMeta => ({ volume: "default/db", sizeBytes, epoch: 3, role: "replica", state, updatedAtMs: 1_700_000_000_000, uid: "u1", generation })

const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> => Effect.runPromise(Effect.scoped(effect))

/** One process's open of the copy (incarnation `incarnation`), running `body` on it. */
const openAs = <A>(stores: Stores["Service"], incarnation: number, body: (store: BlockStore) => Effect.Effect<A, unknown>, at = path) =>
  run(Effect.gen(function* () {
    const store = yield* continueCopy(yield* stores.open(at, sizeBytes), stores.markers!, at, incarnation)
    return yield* body(store)
  }))

const chainOf = (store: BlockStore) => Effect.sync(() => store.continuity!.continuedFrom())

test("a restarted process continues the chain of the processes before it; a power loss ends it", async () => {
  const memory = makeMemoryStores()
  assert.equal(await openAs(memory.service, 10, (s) => Effect.andThen(s.writeMeta(meta("g1")), chainOf(s))), [], "a new copy continues nothing")
  assert.equal(await openAs(memory.service, 11, chainOf), [10], "a crash of process 10: the copy holds what it wrote")
  assert.equal(await openAs(memory.service, 12, chainOf), [10, 11])
  assert.equal(await openAs(memory.service, 14, (s) => Effect.sync(() => [10, 13, 14, 15].map((i) => s.continuity!.holdsWritesOf(i)))), [true, false, true, false],
    "an earlier process of the chain and this one; not one outside it")
  memory.markerByPath.clear() // power loss: the machine rebooted
  assert.equal(await openAs(memory.service, 13, chainOf), [], "after a power loss nothing is proven")
})

test("a copy whose record changed behind the marker (restored, wiped) continues nothing", async () => {
  const memory = makeMemoryStores()
  await openAs(memory.service, 1, (s) => s.writeMeta(meta("g1")))
  const image = memory.byPath.get(path)!.image()
  await openAs(memory.service, 2, (s) => s.writeMeta(meta("g2")))
  memory.byPath.get(path)!.restore(image)
  assert.equal(await openAs(memory.service, 3, chainOf), [], "restored from an image of another session")
  memory.byPath.delete(path)
  assert.equal(await openAs(memory.service, 4, chainOf), [], "wiped")
})

test("a failed fdatasync ends continuity at once and for the next process", async () => {
  const memory = makeMemoryStores()
  await openAs(memory.service, 1, (s) => s.writeMeta(meta("g1")))
  const afterFailure = await openAs(memory.service, 2, (s) => Effect.gen(function* () {
    const before = s.continuity!.continuedFrom()
    memory.byPath.get(path)!.failNext("io", { operation: "flush", dropUnflushed: true })
    const flushed = yield* Effect.result(s.flush)
    // The copy's owner then records it incomplete: the marker must not come back with it.
    yield* s.writeMeta(meta("g1", "incomplete"))
    return { before, failed: flushed._tag === "Failure", after: s.continuity!.continuedFrom(), own: s.continuity!.holdsWritesOf(2), earlier: s.continuity!.holdsWritesOf(1) }
  }))
  assert.equal(afterFailure, { before: [1], failed: true, after: [], own: false, earlier: false }, "not even what this process wrote")
  assert.equal(await openAs(memory.service, 3, chainOf), [], "the next process proves nothing either")
})

test("serving as master is remembered for the next process, with the epoch", async () => {
  const memory = makeMemoryStores()
  await openAs(memory.service, 1, (s) => Effect.andThen(s.writeMeta(meta("g1")), s.continuity!.noteServed(3)))
  assert.is(await openAs(memory.service, 2, (s) => Effect.sync(() => s.continuity!.servedEpoch())), 3)
  assert.is(await openAs(memory.service, 3, (s) => Effect.sync(() => s.continuity!.servedEpoch())), 3, "carried along the chain")
  memory.markerByPath.clear()
  assert.is(await openAs(memory.service, 4, (s) => Effect.sync(() => s.continuity!.servedEpoch())), undefined)
})

test("file stores: the marker names the machine's boot, and one of another boot is ignored", async () => {
  const dir = await mkdtemp(join(tmpdir(), "replivol-continuity-"))
  try {
    const at = join(dir, "copies", "db.img")
    await openAs(fileStores, 1, (s) => s.writeMeta(meta("g1")), at)
    const bootId = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim()
    if (bootId === "") {
      console.log("    (no /proc/sys/kernel/random/boot_id on this machine: file markers are never trusted; checking only that)")
      assert.equal(await openAs(fileStores, 2, chainOf, at), [])
      return
    }
    const text = await readFile(`${at}.boot`, "utf8")
    assert.ok(text.startsWith(`${bootId}\n`), "the marker starts with this boot's id")
    assert.equal(await openAs(fileStores, 2, chainOf, at), [1], "same boot, same record: continued")
    await writeFile(`${at}.boot`, text.replace(bootId, "00000000-0000-0000-0000-000000000000"))
    assert.equal(await openAs(fileStores, 3, chainOf, at), [], "a marker of another boot (the machine rebooted) proves nothing")
    await writeFile(`${at}.boot`, "garbage")
    assert.equal(await openAs(fileStores, 4, chainOf, at), [], "a damaged marker proves nothing")
    await Effect.runPromise(fileStores.remove(at))
    assert.is(await readFile(`${at}.boot`).then(() => "present", () => "absent"), "absent", "removing the copy removes its marker")
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test.run()
