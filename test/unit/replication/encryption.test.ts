/**
 * Encryption at rest in the master (masterVolume.ts with a cipher): a master and two replicas on
 * the simulated network, memory stores. What a user checks: reads give the plaintext back, no
 * copy holds the written pattern (a plain volume's copies do — the search can fail), copies are
 * identical ciphertext and verify clean; writes that share a 4 KiB unit, many in flight, all
 * land (the read-modify-write is ordered); a replica synced later and promoted reads the same
 * plaintext with the key, and a master without the key refuses with the reason.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Layer, type Scope } from "effect"
import { startNode, type ReplivolNode } from "../../../lib/node/node.ts"
import { makeMemoryStores, Stores } from "../../../lib/store/Stores.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { makeSimNetwork, mulberry32, calmFaults } from "../../../lib/testing/simNetwork.ts"
import type { MasterVolume } from "../../../lib/replication/masterVolume.ts"
import { makeVolumeCipher, type VolumeCipher } from "../../../lib/crypt/volumeCipher.ts"
import type { CryptoPrimitives } from "../../../lib/crypt/primitives.ts"
import { nodeCrypto } from "../../../lib/platform/nodeCrypto.ts"

const test = suite("encryption at rest: master and replicas")
const secret = "encryption-test-secret-0123456789"
const sizeBytes = 4 << 20
const volumeName = "default/vol"
const crypto = nodeCrypto() as CryptoPrimitives
const keyOf = (seed: number) => Uint8Array.from({ length: 64 }, (_, i) => (seed * 31 + i * 7) & 0xff)
const cipherOf = (seed: number): VolumeCipher => makeVolumeCipher(crypto.xts(keyOf(seed)))
const pattern = new TextEncoder().encode("REPLIVOL-KNOWN-PATTERN-0123456789abcdef|")

interface Cluster {
  readonly volume: MasterVolume
  readonly nodes: readonly [ReplivolNode, ReplivolNode, ReplivolNode]
  readonly copy: (node: string) => MemoryStore
}

const withCluster = <A>(cipher: VolumeCipher | undefined, body: (cluster: Cluster) => Effect.Effect<A, unknown, Scope.Scope>) => {
  const stores = makeMemoryStores()
  // Reads take a turn of the clock, as a file store's reads on the thread pool do: a read-modify-write
  // not ordered against other writes then reads stale bytes (the shared-unit test fails).
  const slowReads = Layer.succeed(Stores, Stores.of({
    ...stores.service,
    open: (path, size) => Effect.map(stores.service.open(path, size), (store) => ({ ...store, read: (offset: number, length: number) => Effect.andThen(Effect.sleep(1), store.read(offset, length)) })),
  }))
  const program = Effect.scoped(Effect.gen(function* () {
    const network = yield* makeSimNetwork(mulberry32(11), calmFaults)
    const nodes = yield* Effect.forEach(["n1", "n2", "n3"], (name, i) =>
      startNode({ name, address: { host: `10.0.0.${i + 1}` }, dataDir: `/${name}`, secret }).pipe(Effect.provide(network.layer)))
    const [n1, n2, n3] = nodes as [ReplivolNode, ReplivolNode, ReplivolNode]
    yield* n2.hostReplica(volumeName, sizeBytes)
    yield* n3.hostReplica(volumeName, sizeBytes)
    const volume = yield* n1.openVolume({
      volume: volumeName, sizeBytes,
      labels: { "storageos.com/replicas": "2", ...(cipher ? { "storageos.com/encryption": "true" } : {}) },
      replicas: [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }],
      ...(cipher ? { cipher } : {}),
    })
    return yield* body({ volume, nodes: [n1, n2, n3], copy: (node) => stores.byPath.get(`/${node}/copies/${volumeName}.img`)! })
  }))
  return Effect.runPromise(program.pipe(Effect.provide(slowReads)) as Effect.Effect<A>)
}

/** Whether `needle` occurs anywhere in `haystack`. */
const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(needle) >= 0

const patternFill = (length: number) => Uint8Array.from({ length }, (_, i) => pattern[i % pattern.length]!)
/** Aligned, unaligned, inside one unit, across units, across a 1 MiB chunk boundary. */
const writes: ReadonlyArray<readonly [number, number]> = [[0, 8192], [10_000, 300], [65_535, 9000], [(1 << 20) - 5000, 12_000], [3 << 20, 4096 * 3 + 17]]

const writeAndCheck = (cluster: Cluster) => Effect.gen(function* () {
  const model = new Uint8Array(sizeBytes)
  for (const [offset, length] of writes) {
    const data = patternFill(length)
    yield* cluster.volume.write(offset, data)
    model.set(data, offset)
  }
  yield* cluster.volume.flush
  for (const [offset, length] of writes) assert.equal(yield* cluster.volume.read(offset, length), model.subarray(offset, offset + length))
  assert.equal(yield* cluster.volume.read(0, sizeBytes), model, "the whole volume reads as written (never-written units as zeros)")
  const report = yield* cluster.volume.verify({ regionBytes: 64 * 1024 })
  return { report, found: ["n1", "n2", "n3"].map((node) => contains(cluster.copy(node).snapshot(), pattern.subarray(0, 24))), digests: ["n1", "n2", "n3"].map((node) => cluster.copy(node).digest()) }
})

test("encrypted: reads give the plaintext back; no copy (master or replica) holds the pattern; copies are identical and verify clean", async () => {
  const result = await withCluster(cipherOf(1), writeAndCheck)
  assert.equal(result.found, [false, false, false], "the pattern is on no copy's store")
  assert.is(result.digests[1], result.digests[0])
  assert.is(result.digests[2], result.digests[0])
  assert.is(result.report.differencesFound, 0)
  assert.ok(result.report.copies.every((c) => c.state === "compared"))
})

test("plain (the control): every copy holds the pattern, so the search above can fail", async () => {
  const result = await withCluster(undefined, writeAndCheck)
  assert.equal(result.found, [true, true, true])
})

test("writes sharing 4 KiB units, 6 writers with many in flight: every byte ends as its own writer's last write (read-modify-write is ordered)", async () => {
  const stride = 6
  await withCluster(cipherOf(2), (cluster) => Effect.gen(function* () {
    const span = 64 * 1024
    // Writer w owns bytes with (offset / 700) % stride === w: runs of 700 bytes, so every unit is shared by several writers.
    const runs = (w: number) => Array.from({ length: Math.ceil(span / 700) }, (_, i) => i).filter((i) => i % stride === w).map((i) => [i * 700, Math.min(700, span - i * 700)] as const)
    const valueOf = (w: number, round: number) => (w * 16 + round + 1) & 0xff
    const writer = (w: number) => Effect.forEach([0, 1, 2], (round) =>
      Effect.forEach(runs(w), ([offset, length]) => cluster.volume.write(offset, new Uint8Array(length).fill(valueOf(w, round))), { concurrency: 16, discard: true }), { discard: true })
    yield* Effect.forEach(Array.from({ length: stride }, (_, w) => w), writer, { concurrency: "unbounded", discard: true })
    yield* cluster.volume.flush
    const read = yield* cluster.volume.read(0, span)
    for (let w = 0; w < stride; w++) {
      for (const [offset, length] of runs(w)) {
        const wrong = read.subarray(offset, offset + length).findIndex((b) => b !== valueOf(w, 2))
        assert.is(wrong, -1, `writer ${w}'s run at ${offset}: byte ${offset + wrong} is ${read[offset + wrong]}, expected ${valueOf(w, 2)}`)
      }
    }
    assert.is(cluster.copy("n2").digest(), cluster.copy("n1").digest())
  }))
})

test("big whole-unit writes (encrypted on worker threads, concurrently), 12 in flight over one range: each byte ends as the last issued write's, on every copy", async () => {
  await withCluster(cipherOf(4), (cluster) => Effect.gen(function* () {
    const length = 256 * 1024
    // Offsets shifted by 64 KiB per write, so each write overlaps the next ones in part.
    const issued = Array.from({ length: 12 }, (_, i) => ({ offset: (i % 4) * 64 * 1024, value: i + 1 }))
    yield* Effect.forEach(issued, ({ offset, value }) => cluster.volume.write(offset, new Uint8Array(length).fill(value)), { concurrency: "unbounded", discard: true })
    yield* cluster.volume.flush
    const model = new Uint8Array(length + 3 * 64 * 1024)
    for (const { offset, value } of issued) model.fill(value, offset, offset + length)
    const read = yield* cluster.volume.read(0, model.length)
    const wrong = read.findIndex((b, i) => b !== model[i])
    assert.is(wrong, -1, `byte ${wrong} holds write ${read[wrong]}'s data; the last issued write there was ${model[wrong]}`)
    assert.is(cluster.copy("n2").digest(), cluster.copy("n1").digest())
    assert.is(cluster.copy("n3").digest(), cluster.copy("n1").digest())
  }))
})

test("a replica synced later and promoted reads the plaintext with the key; without the key the node refuses, saying why", async () => {
  const cipher = cipherOf(3)
  await withCluster(cipher, (cluster) => Effect.gen(function* () {
    const [, n2, n3] = cluster.nodes
    const data = patternFill(50_000)
    yield* cluster.volume.write(12_345, data)
    yield* cluster.volume.flush
    // n3's copy is lost and synced again in full (ciphertext through the resync).
    yield* cluster.volume.removeReplica("n3")
    yield* n3.unhostReplica(volumeName)
    cluster.copy("n3").restore({ sizeBytes, pages: new Map(), meta: undefined })
    yield* n3.hostReplica(volumeName, sizeBytes)
    yield* cluster.volume.addReplica({ node: "n3", address: n3.address })
    yield* cluster.volume.awaitSyncs
    assert.is(cluster.copy("n3").digest(), cluster.copy("n1").digest(), "the re-synced copy is the same ciphertext")
    assert.not.ok(contains(cluster.copy("n3").snapshot(), pattern.subarray(0, 24)))
    yield* cluster.volume.close
    // Failover: n2's copy becomes the master (epoch 2).
    yield* n2.unhostReplica(volumeName)
    const store = cluster.copy("n2")
    const open = (withKey: boolean) => n2.openVolume({
      volume: volumeName, sizeBytes, epoch: 2, store,
      labels: { "storageos.com/replicas": "1", "storageos.com/encryption": "true" },
      replicas: [{ node: "n3", address: n3.address }],
      ...(withKey ? { cipher } : {}),
    })
    const refused = yield* Effect.flip(open(false))
    assert.is(refused._tag, "EncryptionError")
    assert.is((refused as { reason: string }).reason, "no-key")
    assert.match(refused.message, /encrypted .* without its key: node n2 cannot serve it/)
    const promoted = yield* open(true)
    assert.equal(yield* promoted.read(12_345, data.length), data)
    assert.equal(yield* promoted.read(0, 12_345), new Uint8Array(12_345))
  }))
})

test.run()
