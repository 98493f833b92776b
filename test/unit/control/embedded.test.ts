/**
 * The embedded control store: the shared compliance suite under TestClock, plus what only it
 * has — file persistence (restart keeps non-leased keys, corrupt file → typed error), the
 * background expiry sweep seen by a watcher, and a lagging watcher failing instead of growing.
 */
import { Clock, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { type ControlError, ControlError as ControlErrorClass, ControlStore } from "../../../lib/control/ControlStore.ts"
import type { SnapshotStorage } from "../../../lib/control/snapshot.ts"
import { layerMemory, make } from "../../../lib/control/embedded.ts"
import { layerFile } from "../../../lib/control/embeddedFile.ts"
import { wallSteppedClock } from "../../../lib/testing/simHost.ts"
import { registerControlStoreCompliance, runBounded } from "../../support/controlStoreCompliance.ts"

const testTimeoutMs = 10_000

const Compliance = suite("embedded ControlStore compliance")
registerControlStoreCompliance(Compliance, {
  name: "embedded",
  layer: () => layerMemory,
  wrap: (effect) => Effect.provide(effect, TestClock.layer()),
  leaseTtlMs: 1_000,
  advance: (ms) => TestClock.adjust(ms),
  awaitExpiry: (ttlMs) => TestClock.adjust(ttlMs + 1),
  pause: Effect.yieldNow,
  testTimeoutMs,
})
Compliance.run()

const run = <A>(effect: Effect.Effect<A, ControlError, ControlStore>, layer: Layer.Layer<ControlStore, ControlError> = layerMemory) =>
  runBounded(effect.pipe(Effect.provide(layer), Effect.provide(TestClock.layer())), testTimeoutMs)

const Embedded = suite("embedded ControlStore")

Embedded("the background sweep expires a lease and watchers see the delete without any other call", () =>
  run(Effect.scoped(Effect.gen(function* () {
    const store = yield* ControlStore
    const lease = yield* store.grantLease(200)
    yield* store.put("nodes/a", "up", { lease })
    const events = yield* Effect.forkScoped(Stream.runCollect(Stream.take(store.watch("nodes/"), 1)))
    yield* Effect.yieldNow
    yield* TestClock.adjust(250) // only the sweeper runs: nobody calls the store
    const seen = yield* Fiber.join(events)
    assert.equal(seen.map((event) => event.type), ["delete"])
  }))))

Embedded("a watcher that falls behind its buffer fails with watch-lagged; the store goes on", () =>
  runBounded(Effect.scoped(Effect.gen(function* () {
    const store = yield* make({ watchBufferEvents: 4 })
    const pull = yield* Stream.toPull(store.watch("k/"))
    for (let index = 0; index < 10; index++) yield* store.put(`k/${index}`, "v")
    const drained: Array<unknown> = []
    const failure = yield* Effect.flip(Effect.forever(Effect.map(pull, (chunk) => drained.push(...chunk))))
    assert.is((failure as ControlError).reason, "watch-lagged")
    assert.ok(drained.length <= 4, `delivered at most the buffer (${drained.length})`)
    assert.is((yield* store.get("k/9"))?.value, "v")
  })).pipe(Effect.provide(TestClock.layer())), testTimeoutMs))

Embedded("keepAlive on a lease past its deadline fails with lease-expired even before any sweep", () =>
  runBounded(Effect.scoped(Effect.gen(function* () {
    const store = yield* make({ sweepIntervalMs: 60_000 })
    const lease = yield* store.grantLease(100)
    yield* store.put("hb", "x", { lease })
    yield* TestClock.adjust(99)
    yield* store.keepAlive(lease) // 1 ms before the deadline: renewed to 199
    yield* TestClock.adjust(99)
    assert.is((yield* store.get("hb"))?.value, "x", "renewed lease still holds at 198 ms")
    yield* TestClock.adjust(1)
    const result = yield* Effect.result(store.keepAlive(lease))
    assert.is(result._tag === "Failure" ? result.failure.reason : "ok", "lease-expired")
    assert.is(yield* store.get("hb"), undefined)
  })).pipe(Effect.provide(TestClock.layer())), testTimeoutMs))

Embedded("a wall-clock step forward or back neither expires a renewed lease nor keeps a dead one alive", () =>
  runBounded(Effect.scoped(Effect.gen(function* () {
    const base = yield* Clock.Clock
    const step = { ms: 0 }
    const advance = (ms: number) => Effect.provideService(TestClock.adjust(ms), Clock.Clock, base)
    yield* Effect.gen(function* () {
      const store = yield* make()
      const healthy = yield* store.grantLease(1_000)
      const dead = yield* store.grantLease(1_000)
      yield* store.put("nodes/healthy", "up", { lease: healthy })
      yield* store.put("nodes/dead", "up", { lease: dead })
      step.ms = 3_600_000 // an hour forward: on the wall clock both leases are long past their TTL
      yield* advance(500)
      yield* store.keepAlive(healthy)
      assert.is((yield* store.get("nodes/healthy"))?.value, "up", "a lease renewed within its TTL survives a forward step")
      assert.is((yield* store.get("nodes/dead"))?.value, "up", "500 ms of 1000 have passed: not expired yet")
      step.ms = -7_200_000 // an hour back from the start: on the wall clock the TTLs have barely begun
      yield* advance(600)
      yield* store.keepAlive(healthy)
      assert.is(yield* store.get("nodes/dead"), undefined, "a lease not renewed for 1100 ms of a 1000 ms TTL expired, whatever the wall clock says")
      assert.is((yield* store.get("nodes/healthy"))?.value, "up")
      const late = yield* Effect.result(store.keepAlive(dead))
      assert.is(late._tag === "Failure" ? late.failure.reason : "ok", "lease-expired", "the dead node cannot renew it any more")
    }).pipe(Effect.provideService(Clock.Clock, wallSteppedClock(base, () => step.ms)))
  })).pipe(Effect.provide(TestClock.layer())), testTimeoutMs))

Embedded.run()

const Persistence = suite("embedded ControlStore file persistence")
let dir = ""
Persistence.before.each(() => void (dir = mkdtempSync(join(tmpdir(), "replivol-control-"))))
Persistence.after.each(() => rmSync(dir, { recursive: true, force: true }))

Persistence("a restart keeps non-leased keys and their revisions, and drops leased keys", async () => {
  const path = join(dir, "control.json")
  const before = await run(Effect.gen(function* () {
    const store = yield* ControlStore
    const lease = yield* store.grantLease(10_000)
    yield* store.put("nodes/a", "up", { lease })
    yield* store.put("volumes/default/v1", "{\"replicas\":1}")
    yield* store.transaction({ compare: [{ key: "volumes/default/v2", revision: 0 }], put: [{ key: "volumes/default/v2", value: "{}" }] })
    yield* store.delete("volumes/default/v2")
    return { v1: yield* store.get("volumes/default/v1"), revision: yield* store.put("volumes/default/v3", "x") }
  }), layerFile(path))
  const after = await run(Effect.gen(function* () {
    const store = yield* ControlStore
    const listed = yield* store.list("")
    const next = yield* store.put("volumes/default/v4", "y")
    return { listed, next }
  }), layerFile(path))
  assert.equal(after.listed.map((kv) => kv.key), ["volumes/default/v1", "volumes/default/v3"])
  assert.equal(after.listed[0], before.v1, "value and revisions survive")
  assert.ok(after.next > before.revision, "revisions keep increasing after a restart")
})

Persistence("every acknowledged put is already in the file (no flush needed)", async () => {
  const path = join(dir, "control.json")
  await run(Effect.gen(function* () {
    const store = yield* ControlStore
    yield* store.put("rules/default/r1", "replicas=2")
    assert.match(readFileSync(path, "utf8"), "rules/default/r1", "written before put returned")
  }), layerFile(path))
})

Persistence("a corrupt file is a typed `corrupt` error naming the file", async () => {
  const path = join(dir, "control.json")
  for (const content of ["{not json", JSON.stringify({ format: "replivol-control-store/1", revision: 1, leaseSeq: 0, entries: [{ key: "a", value: "v", revision: 5, createRevision: 1 }] }), "[]"]) {
    writeFileSync(path, content)
    const failure = await Effect.runPromise(Layer.build(layerFile(path)).pipe(Effect.scoped, Effect.flip))
    assert.is(failure.reason, "corrupt", `content ${content.slice(0, 20)} must be refused as corrupt`)
    assert.ok(failure.message.includes(path), failure.message)
  }
})

/** A storage whose writes can be held back or made to fail, to observe what is visible before durability. */
const controlledStorage = () => {
  let text: string | undefined
  let failing = false
  let release: (() => void) | undefined
  let held = false
  const storage: SnapshotStorage = {
    name: "controlled.json",
    read: Effect.sync(() => text),
    write: (next) => Effect.callback<void, ControlError>((resume) => {
      const finish = () => resume(failing ? Effect.fail(new ControlErrorClass({ reason: "unreachable", message: "disk gone (injected)" })) : Effect.sync(() => void (text = next)))
      if (held) release = finish
      else finish()
    }),
  }
  return {
    storage,
    hold: () => void (held = true),
    release: () => { held = false; release?.(); release = undefined },
    fail: () => void (failing = true),
    durable: () => text ?? "",
  }
}

Persistence("a change is visible to readers only once it is durable", () =>
  runBounded(Effect.scoped(Effect.gen(function* () {
    const disk = controlledStorage()
    const store = yield* make({ storage: disk.storage })
    disk.hold()
    const writer = yield* Effect.forkChild(store.put("volumes/default/v1", "promoted"))
    const reader = yield* Effect.forkChild(store.get("volumes/default/v1"))
    yield* Effect.yieldNow
    assert.not.match(disk.durable(), "promoted", "not on disk yet")
    assert.is(reader.pollUnsafe(), undefined, "the reader waits while the change is not durable")
    disk.release()
    yield* Fiber.join(writer)
    const seen = yield* Fiber.join(reader)
    assert.is(seen?.value, "promoted", "the reader sees the change once it is durable")
    assert.match(disk.durable(), "promoted")
  })).pipe(Effect.provide(TestClock.layer())), testTimeoutMs))

Persistence("a failed write fails the operation and stops the store loudly (no change served from memory only)", () =>
  runBounded(Effect.scoped(Effect.gen(function* () {
    const disk = controlledStorage()
    const store = yield* make({ storage: disk.storage })
    yield* store.put("volumes/default/v1", "kept")
    disk.fail()
    const failed = yield* Effect.flip(store.put("volumes/default/v1", "lost"))
    assert.is(failed.reason, "unreachable")
    assert.match(failed.message, "disk gone")
    const after = yield* Effect.flip(store.get("volumes/default/v1"))
    assert.is(after.reason, "unreachable", "every later operation fails: the store stopped")
    assert.match(disk.durable(), "kept")
  })).pipe(Effect.provide(TestClock.layer())), testTimeoutMs))

Persistence.run()
