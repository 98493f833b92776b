/**
 * A replica that fails under a write: the master may go on without it only once the record says
 * it failed. Until that record is written the control store still calls the replica in sync (a
 * promotion could pick it), so the write that waited for the replica is not acknowledged before
 * (found by the cluster simulator, seed 127, where the record waited on a slow control store).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import { startNode } from "../../../lib/node/node.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { testPort } from "../../support/ports.ts"

const test = suite("a replica's failure, recorded before the master goes on")
const secret = "test-secret-0123456789"
const port = testPort(25713)
const size = 1 << 20

test("a write that waited for a replica that failed completes only after the failure is recorded", async () => {
  const stores = makeMemoryStores()
  const program = Effect.scoped(Effect.gen(function* () {
    const n1 = yield* startNode({ name: "n1", address: { host: "127.0.0.1", port }, dataDir: "/n1", secret })
    const n2 = yield* startNode({ name: "n2", address: { host: "127.0.0.2", port }, dataDir: "/n2", secret })
    yield* n2.hostReplica("default/vol", size)
    const recordWritten = yield* Deferred.make<void>()
    const failures: string[] = []
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes: size, labels: { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft" },
      replicas: [{ node: "n2", address: n2.address }],
      // The control store is slow: the record of the failure is written when the test says so.
      onReplicaFailed: (node) => Effect.andThen(Effect.sync(() => failures.push(node)), Deferred.await(recordWritten)),
    })
    yield* volume.write(0, new Uint8Array(4096).fill(1))
    // The replica's next write fails: it cannot acknowledge it, and its link fails.
    ;(stores.byPath.get("/n2/copies/default/vol.img") as MemoryStore).failNext("io", { operation: "write" })
    const writing = yield* Effect.forkChild(volume.write(4096, new Uint8Array(4096).fill(2)))
    // The link fails and its record is asked for (bounded wait: a loaded machine is slow) …
    for (let i = 0; i < 200 && failures.length === 0; i++) yield* Effect.sleep(50)
    // … and while that record is under way the write still waits.
    yield* Effect.sleep(200)
    assert.equal(failures, ["n2"], "the master asked for the failure to be recorded")
    assert.is(writing.pollUnsafe(), undefined, "the write is not acknowledged while the record still calls the replica in sync")
    const later = yield* Effect.forkChild(volume.write(8192, new Uint8Array(4096).fill(3)))
    yield* Effect.sleep(200)
    assert.is(later.pollUnsafe(), undefined, "a write issued after the link failed waits for the record too")
    yield* Deferred.succeed(recordWritten, undefined)
    yield* Fiber.join(writing)
    yield* Fiber.join(later)
    const back = yield* volume.read(4096, 8192)
    assert.ok(back.subarray(0, 4096).every((b) => b === 2) && back.subarray(4096).every((b) => b === 3), "both writes are on the master")
  }))
  await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(layerTcp, stores.layer))))
})

test("a master whose own fdatasync failed records no replica failed: its copy, not the replica's, may lack writes", async () => {
  // Cluster simulator sweep seed 7309: the master's fdatasync failed and dropped its page cache;
  // its replica crashed a moment later and was recorded failed, so the copy holding every write
  // was neither promoted nor stepped down for, and the damaged master served over it.
  const stores = makeMemoryStores()
  const program = Effect.scoped(Effect.gen(function* () {
    const n1 = yield* startNode({ name: "n1", address: { host: "127.0.0.1", port: port + 1 }, dataDir: "/n1", secret })
    const replicaScope = yield* Scope.make()
    const n2 = yield* startNode({ name: "n2", address: { host: "127.0.0.2", port: port + 1 }, dataDir: "/n2", secret }).pipe(Scope.provide(replicaScope))
    yield* n2.hostReplica("default/vol", size).pipe(Scope.provide(replicaScope))
    const failures: string[] = []
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes: size, labels: { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft" },
      replicas: [{ node: "n2", address: n2.address }],
      onReplicaFailed: (node) => Effect.sync(() => void failures.push(node)),
    })
    yield* volume.write(0, new Uint8Array(4096).fill(1))
    ;(stores.byPath.get("/n1/copies/default/vol.img") as MemoryStore).failNext("io", { operation: "flush" })
    const flushed = yield* Effect.result(volume.flush)
    assert.is(flushed._tag, "Failure", "the flush fails on the master")
    assert.ok(volume.isFenced(), "the master fenced itself")
    // The replica's node goes away: its link fails.
    yield* Scope.close(replicaScope, Exit.void)
    for (let i = 0; i < 40 && volume.links()[0]?.state() !== "failed"; i++) yield* Effect.sleep(50)
    assert.is(volume.links()[0]?.state(), "failed", "the link failed")
    yield* Effect.sleep(100)
    assert.equal(failures, [], "no failure recorded by a master whose own copy is damaged")
  }))
  await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(layerTcp, stores.layer))))
})

test.run()
