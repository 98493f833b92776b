/**
 * `MasterVolume.resize`: online growth on a master and two replicas on the simulated network
 * (no ports), memory stores. Writers keep writing while the volume grows; the new bytes are
 * refused until every in-sync copy has them, then work on every copy; a replica away during the
 * resize is grown at its next Open and caught up by delta; a resize whose commit fails (a crash
 * before the cluster recorded it) leaves the old size serving, and a master reopened at the grown
 * copy completes it. Shrinks and malformed sizes are refused with nothing changed.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber, Scope, Exit } from "effect"
import { startNode, type ReplivolNode } from "../../../lib/node/node.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { makeSimNetwork, mulberry32, calmFaults, type SimNetwork } from "../../../lib/testing/simNetwork.ts"
import type { MasterVolume } from "../../../lib/replication/masterVolume.ts"

const test = suite("volume resize")
const secret = "resize-test-secret-0123456789"
const oldBytes = 4 << 20
const newBytes = 12 << 20

interface Cluster {
  readonly volume: MasterVolume
  readonly nodes: ReadonlyArray<ReplivolNode>
  readonly network: SimNetwork
  readonly copy: (node: string) => MemoryStore
  readonly events: ReadonlyArray<string>
  /** Opens the master again on n1 (the first one closed), as a node does after a crash. */
  readonly reopen: (visibleSizeBytes: number) => Effect.Effect<MasterVolume, unknown>
}

const labels = { "storageos.com/replicas": "2", "storageos.com/failure.mode": "soft", "storageos.com/failure.tolerance": "1" }

const withCluster = <A>(body: (cluster: Cluster) => Effect.Effect<A, unknown>) => {
  const stores = makeMemoryStores()
  const events: string[] = []
  const program = Effect.scoped(Effect.gen(function* () {
    const network = yield* makeSimNetwork(mulberry32(11), calmFaults)
    const nodes = yield* Effect.forEach(["n1", "n2", "n3"], (name, i) =>
      startNode({ name, address: { host: `10.0.0.${i + 1}` }, dataDir: `/${name}`, secret, ackTimeoutMs: 400, onEvent: (event) => void events.push(`${event.kind}: ${event.message}`) }).pipe(Effect.provide(network.layer)))
    const [n1, n2, n3] = nodes as [ReplivolNode, ReplivolNode, ReplivolNode]
    yield* n2.hostReplica("default/vol", oldBytes)
    yield* n3.hostReplica("default/vol", oldBytes)
    const replicas = [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }]
    let scope = yield* Scope.make()
    const open = (visibleSizeBytes?: number) =>
      n1.openVolume({ volume: "default/vol", sizeBytes: oldBytes, labels, replicas: visibleSizeBytes === undefined ? replicas : replicas.map((target) => ({ target, recorded: "in-sync" as const })), ...(visibleSizeBytes === undefined ? {} : { visibleSizeBytes }) }).pipe(Scope.provide(scope))
    const volume = yield* open()
    assert.is((yield* volume.status).health, "healthy")
    const reopen = (visibleSizeBytes: number) => Effect.gen(function* () {
      yield* Scope.close(scope, Exit.void)
      scope = yield* Scope.make()
      return yield* open(visibleSizeBytes)
    })
    const result = yield* body({ volume, nodes, network, events, reopen, copy: (node) => stores.byPath.get(`/${node}/copies/default/vol.img`) as MemoryStore })
    yield* Scope.close(scope, Exit.void)
    return result
  }))
  return Effect.runPromise(program.pipe(Effect.provide(stores.layer)) as Effect.Effect<A>)
}

const patterned = (length: number, seed: number) => {
  const random = mulberry32(seed)
  return new Uint8Array(length).map(() => 1 + Math.floor(random.next() * 255))
}

/** Every copy has the same size and bytes as the master's. */
const assertIdentical = (copy: (node: string) => MemoryStore, sizeBytes: number) => {
  for (const node of ["n1", "n2", "n3"]) assert.is(copy(node).sizeBytes, sizeBytes, `${node}'s copy is ${sizeBytes} bytes`)
  assert.is(copy("n2").digest(), copy("n1").digest(), "n2 holds the master's bytes")
  assert.is(copy("n3").digest(), copy("n1").digest(), "n3 holds the master's bytes")
}

test("grows online while writers write: the new bytes are refused before, work on every copy after; copies identical", async () => {
  const result = await withCluster(({ volume, copy, events }) => Effect.gen(function* () {
    let writing = true
    let writes = 0
    const writer = (id: number) => Effect.gen(function* () {
      for (let i = 0; writing; i++) {
        const random = mulberry32(id * 1000 + i)
        const length = 512 * (1 + Math.floor(random.next() * 64))
        yield* volume.write(Math.floor(random.next() * ((oldBytes - length) / 512)) * 512, patterned(length, id * 7919 + i))
        writes++
        yield* Effect.yieldNow
      }
    })
    const writers = yield* Effect.forkChild(Effect.forEach([1, 2, 3], writer, { concurrency: "unbounded", discard: true }))
    yield* Effect.sleep(10)
    const beyond = yield* Effect.flip(volume.write(oldBytes, new Uint8Array(512)))
    const before = writes
    yield* volume.resize(newBytes)
    const during = writes - before
    yield* volume.write(newBytes - 4096, patterned(4096, 5))
    const tail = yield* volume.read(newBytes - 4096, 4096)
    writing = false
    yield* Fiber.join(writers)
    yield* volume.flush
    const meta = yield* copy("n2").readMeta
    return { beyond, during, tail, status: yield* volume.status, meta, events: [...events] }
  }))
  assert.is(result.beyond._tag, "OutOfRange", "a write past the old end is refused before the resize")
  assert.ok(result.during >= 0)
  assert.is(result.status.sizeBytes, newBytes)
  assert.is(result.status.health, "healthy")
  assert.equal([...result.tail], [...patterned(4096, 5)])
  assert.is(result.meta?.sizeBytes, newBytes, "the replica's record says the new size")
  assert.ok(result.events.some((e) => e.startsWith("resized: ") && e.includes("2 in-sync replicas")), result.events.join("\n"))
})

test("copies are byte-identical after an online resize under writes (digests)", async () => {
  await withCluster(({ volume, copy }) => Effect.gen(function* () {
    const writes = Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => volume.write((i * 7 * 4096) % (oldBytes - 4096), patterned(4096, i)), { concurrency: 16, discard: true })
    const fiber = yield* Effect.forkChild(writes)
    yield* volume.resize(newBytes)
    yield* Fiber.join(fiber)
    yield* volume.write(oldBytes, patterned(8192, 99))
    yield* volume.flush
    assertIdentical(copy, newBytes)
  }))
})

test("a replica away during the resize is grown at its next Open and caught up by delta", async () => {
  await withCluster(({ volume, copy, network }) => Effect.gen(function* () {
    network.isolate("10.0.0.3")
    yield* volume.write(0, patterned(4096, 1))
    for (let i = 0; i < 50 && (yield* volume.status).replicas.find((r) => r.node === "n3")?.state !== "failed"; i++) yield* Effect.sleep(50)
    assert.is((yield* volume.status).replicas.find((r) => r.node === "n3")?.state, "failed", "n3 failed while isolated")
    yield* volume.resize(newBytes)
    assert.is(copy("n3").sizeBytes, oldBytes, "the away copy still has its old size")
    yield* volume.write(newBytes - 8192, patterned(8192, 2))
    yield* volume.write(4096, patterned(4096, 3))
    network.healAll()
    yield* volume.reviveReplica("n3")
    yield* volume.awaitSyncs
    const status = yield* volume.status
    assert.is(status.replicas.find((r) => r.node === "n3")?.state, "in-sync")
    assert.is(status.health, "healthy")
    const n3 = volume.links().find((link) => link.target.node === "n3")!
    assert.ok(n3.syncBytesSent() < oldBytes, `a delta, not a full copy (${n3.syncBytesSent()} bytes)`)
    yield* volume.flush
    assertIdentical(copy, newBytes)
  }))
})

test("a commit that fails (a crash before the size was recorded) leaves the old size; a master reopened on the grown copy completes it", async () => {
  await withCluster(({ volume, copy, reopen }) => Effect.gen(function* () {
    yield* volume.write(oldBytes - 512, patterned(512, 4))
    const failed = yield* Effect.flip(volume.resize(newBytes, Effect.fail("control store unreachable" as const)))
    assert.is(failed, "control store unreachable")
    assert.is(volume.sizeBytes, oldBytes, "still serving at the old size")
    assert.is((yield* Effect.flip(volume.read(oldBytes, 512)))._tag, "OutOfRange")
    assert.is(copy("n2").sizeBytes, newBytes, "the in-sync replicas grew (zeros past the old end)")
    // The crash: the master's copy is grown, its record not; a new master session opens it at the recorded size.
    const again = yield* reopen(oldBytes)
    assert.is(again.sizeBytes, oldBytes)
    assert.is(again.capacityBytes(), newBytes)
    yield* again.awaitSyncs
    assert.is((yield* again.status).health, "healthy")
    yield* again.resize(newBytes)
    assert.is(again.sizeBytes, newBytes)
    yield* again.write(newBytes - 512, patterned(512, 6))
    yield* again.flush
    assertIdentical(copy, newBytes)
  }))
})

test("shrink, a size that is no whole sector, and one beyond the largest volume are refused; nothing changes", async () => {
  const result = await withCluster(({ volume, copy }) => Effect.gen(function* () {
    const shrink = yield* Effect.flip(volume.resize(oldBytes - 512))
    const unaligned = yield* Effect.flip(volume.resize(oldBytes + 100))
    const huge = yield* Effect.flip(volume.resize(2 ** 50))
    yield* volume.resize(oldBytes) // the same size: nothing to do
    return { shrink, unaligned, huge, sizes: ["n1", "n2", "n3"].map((n) => copy(n).sizeBytes), size: volume.sizeBytes }
  }))
  assert.is(result.shrink._tag, "ReplicationError")
  assert.is((result.shrink as { reason: string }).reason, "shrink")
  assert.match(result.shrink.message, /cannot shrink .*\(allowed: 4 MiB \(4194304 bytes\) to/)
  assert.is((result.unaligned as { reason: string }).reason, "bad-size")
  assert.match(result.unaligned.message, /whole number of 512-byte sectors/)
  assert.is((result.huge as { reason: string }).reason, "bad-size")
  assert.match(result.huge.message, /more than the largest volume/)
  assert.equal(result.sizes, [oldBytes, oldBytes, oldBytes])
  assert.is(result.size, oldBytes)
})

test.run()
