/**
 * Deterministic simulation of a whole cluster: 5 nodes, 3 volumes, the embedded control store,
 * the simulated network and memory stores, all under TestClock and one seed.
 *
 * Safety phase: every volume's writer keeps up to 32 writes in flight (clusterWorkload.ts) while
 * the seed draws faults (clusterFaults.ts): crashes, power losses, wiped disks, disks restored from
 * older images, partitions, resets, slow links and bit flips, store errors (EIO, ENOSPC, torn
 * writes, failed fdatasync), wall-clock steps, pauses longer than a lease, control-store latency,
 * and volumes deleted and created again while a node is away. Liveness phase: faults stop,
 * every node runs, and the cluster must converge to `healthy` with byte-identical copies within a
 * bounded virtual time. Checkers (clusterModel.ts; they read typed records, never event text):
 *  - no acknowledged write lost: every block reads back as its last acknowledged write (or a write
 *    in flight after it, or what a legitimate loss of the last holder's page cache allows);
 *  - never two masters acknowledging at once: per volume, acknowledgements never go back to an
 *    older epoch once a newer one acknowledged;
 *  - only complete copies promoted: when a record commits a promotion, the promoted copy already
 *    holds every acknowledged write — or, promoted though it did not vouch for its writes (its
 *    process restarted since it was recorded in sync), when it serves;
 *  - no lost update: a record's spec changes only to the spec of a `volume update` under way;
 *  - convergence: healthy, one master, exactly the requested number of replicas (the count the
 *    last update asked for), every in-sync copy byte-identical to the master's;
 *  - verify: `volume verify` on every volume's master after convergence reports no differing
 *    region and compares every in-sync replica (and, with the `verify` operation among the
 *    faults, no verify under way reports one either).
 */
import { Clock, Effect, Fiber, Layer, Random, Scheduler, Scope, Exit } from "effect"
import { TestClock } from "effect/testing"
import { ControlStore } from "../control/ControlStore.ts"
import { layerMemory } from "../control/embedded.ts"
import { ClusterError, uidOf, type NodeRecord, type VolumeRecord } from "../cluster/records.ts"
import { vouches } from "../cluster/placement.ts"
import { decodeNamespaceKey, unwrapNamespaceKey, unwrapVolumeCipher, type KeyRing } from "../crypt/keys.ts"
import { EncryptionError, inlineXts, type CryptoPrimitives } from "../crypt/primitives.ts"
import type { VolumeCipher } from "../crypt/volumeCipher.ts"
import { mulberry32 } from "../core/seeded.ts"
import { MiB, writeChunkBytesMax } from "../core/limits.ts"
import { Entropy, seededEntropy } from "../net/entropy.ts"
import { makeMemoryStores } from "../store/Stores.ts"
import type { MemoryStore } from "../store/memory.ts"
import type { FailureMode } from "../volume/labels.ts"
import { blockBytes, sameSpec, showSpec, VolumeModel } from "./clusterModel.ts"
import { verifyCopies } from "./clusterOperations.ts"
import { chaos, createVolume, type FaultWeights } from "./clusterFaults.ts"
import { copyPath, hostOf, nameOf, nodeCount, noteAcknowledged, observeCommits, report, runningNodes, startHost, type SimVolume, type SimWorld, type Violation, type ViolationKind } from "./clusterWorld.ts"
import { writer, type WorkloadShape } from "./clusterWorkload.ts"
import { makeSimHost, type ControlLatency } from "./simHost.ts"
import { makeSimNetwork, type SimFaults } from "./simNetwork.ts"

export interface ClusterSimOptions {
  readonly seed: number
  /** Virtual milliseconds of the fault phase. */
  readonly faultMs?: number
  /** Virtual milliseconds the cluster gets to converge afterwards. */
  readonly convergeMs?: number
  /** Replaces the seed's fault weights (a hand-built scenario: only some kinds, or none). */
  readonly faultWeights?: Partial<FaultWeights>
  /** Breaks the cluster's results on purpose, to show the matching checker fails (tests of the checkers). */
  readonly sabotage?: Sabotage
  /**
   * Every volume encrypted (storageos.com/encryption=true) with these primitives (node:crypto's,
   * lib/platform/nodeCrypto.ts); keys and nonces drawn from the seed, so a seed replays exactly.
   */
  readonly encryption?: CryptoPrimitives
}

/**
 * What a checker test breaks: an acknowledged block overwritten on every copy (no acknowledged
 * write lost), one in-sync replica's bytes changed (byte-identical copies), the first promoted copy
 * changed before the check (only complete copies promoted), an acknowledgement from an older epoch
 * (never two masters), one in-sync replica's bytes changed after the other checks and before the
 * verify (the verify checker alone can see it).
 */
export type { ViolationKind }

export type Sabotage = "lose-acknowledged-write" | "diverge-replica" | "promote-incomplete" | "second-master" | "corrupt-before-verify"

const junk = new Uint8Array(blockBytes).fill(0xee)
/** Overwrites bytes of a memory store directly (sabotage only: the store is open, the write synchronous). */
const overwrite = (store: MemoryStore, offset: number, bytes: Uint8Array) => Effect.runSync(Effect.ignore(store.write(offset, bytes)))

export interface ClusterSimResult {
  readonly seed: number
  /** What the checkers found, as text (empty: the seed passed) … */
  readonly violations: ReadonlyArray<string>
  /** … and the kind of each, in the same order. */
  readonly violationKinds: ReadonlyArray<ViolationKind>
  /** Blocks written and acknowledged. */
  readonly acknowledged: number
  readonly refused: number
  readonly crashes: number
  readonly partitions: number
  readonly promotions: number
  /** Faults injected, by kind. */
  readonly faults: Readonly<Record<string, number>>
  readonly virtualMs: number
  readonly trace: string
}

/**
 * Where every host's wall clock starts (a real date, so a step back never goes below zero). It is
 * an offset on each host's clock, not TestClock.setTime: moving the TestClock that far would wake
 * the control store's sweeper once per sweep interval on the way.
 */
const startWallMs = 1_700_000_000_000
/** Virtual time of the fault phase and of the convergence bound, unless the options say otherwise. */
export const faultMsDefault = 3_500
export const convergeMsDefault = 45_000
/** Volume 0 is big and sparse in most seeds (many chunks: zero skipping, long resyncs); the others small. */
const bigSizesMiB = [1, 16, 32, 64]
const smallSizesMiB = [1, 1, 4]
const depths = [1, 2, 4, 8, 16, 32]
const modes: FailureMode[] = ["soft", "hard", "alwayson"]

/** Everything the seed decides before the run: volume shapes, workload, fault mix, latencies. */
const drawProfile = (seed: number) => {
  const random = mulberry32(seed ^ 0x9e3779b9)
  const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(random.next() * items.length)]!
  const volumes = [0, 1, 2].map((index) => ({
    index, name: `sim/v${index}`, mode: modes[(seed + index) % 3]!, replicas: index === 2 ? 1 : 2,
    sizeBytes: pick(index === 0 ? bigSizesMiB : smallSizesMiB) * MiB, depth: pick(depths),
  }))
  const weight = () => (random.next() < 0.25 ? 0 : random.next())
  const weights: FaultWeights = {
    "crash": 1, "power-loss": weight(), "wipe": weight() * 0.4, "restore": weight() * 0.8, "isolate": 0.6, "block": 0.5, "reset": 0.3,
    "store-fault": weight(), "clock-step": weight() * 0.5, "pause": weight() * 0.5, "latency": weight() * 0.4, "recreate": weight() * 0.2, "image": weight() * 0.8,
    // Off unless a scenario's `faultWeights` asks for it: a weight drawn here would change every seed's run.
    "resize": 0,
    // Operations among the faults: off in the seeded sweep (its seeds replay as before), on in named scenarios.
    "move": 0, "cordon": 0, "drain": 0, "update": 0, "verify": 0,
  }
  const workload: WorkloadShape = { flushProbability: pick([0, 0.02, 0.1]), runProbability: pick([0, 0.05, 0.2]), hugeProbability: pick([0, 0, 0.003, 0.01]) }
  const latencies: ControlLatency[] = Array.from({ length: nodeCount }, () => ({ baseMaxMs: pick([0, 1, 5, 20]), spikeProbability: pick([0, 0.002, 0.01]), spikeMs: 300 }))
  const network: SimFaults = { delayMinMs: 0, delayMaxMs: 2, slowProbability: random.next() * 0.01, slowDelayMs: 300, resetProbability: random.next() * 0.002, bitFlipProbability: random.next() < 0.5 ? 0 : 0.0005 }
  return { volumes, weights, workload, latencies, network, chaosFibers: random.next() < 0.5 ? 1 : 2 }
}

/** The typed promotion checker: when a record commits a new epoch, its master's copy must hold every acknowledged write. */
const onRecord = (world: SimWorld) => (name: string, record: VolumeRecord | ClusterError | undefined) => {
  const volume = world.volumes.find((v) => v.name === name)
  if (!volume || record instanceof ClusterError) return
  const model = volume.model
  if (record === undefined) return void (model.record = undefined)
  if (model.uid === undefined && model.record === undefined) model.uid = record.uid
  if (record.uid !== model.uid) return
  const previous = model.record
  if (previous !== undefined && !sameSpec(previous.spec, record.spec) && !model.updatesInFlight.some((spec) => sameSpec(spec, record.spec))) {
    report(world, "lost-update", `${name}: its record's spec changed from ${showSpec(previous.spec)} to ${showSpec(record.spec)} (epoch ${record.epoch}) with no volume update asking for it under way`)
  }
  model.committed(record)
  // A committed resize: the workload addresses the grown volume from now on.
  volume.sizeBytes = model.sizeBytes
  if (globalThis.process?.env?.DEBUG_SIM) console.error(world.base.currentTimeMillisUnsafe(), "RECORD", name, record.epoch, record.master, JSON.stringify(record.replicas.map((r) => `${r.node}:${r.state}`)), "holders", [...model.holders].join(","))
  if (previous === undefined || record.epoch <= previous.epoch || record.master === undefined) return
  world.counters.promotions++
  world.promotionsToCheck.delete(name)
  // A node promoted while it is down (its lease not expired yet) cannot serve what its disk holds
  // now: a wiped or rolled-back copy there must step down when it starts, or the final checks see it.
  if (!world.slots.find((s) => s.host.name === record.master)?.node) return
  const store = world.stores.byPath.get(copyPath(record.master, name))
  if (!store) return report(world, "incomplete-promotion", `${name}: promoted ${record.master} at epoch ${record.epoch} has no copy`)
  const acked = [...model.blocks.keys()][0]
  if (world.sabotage === "promote-incomplete" && acked !== undefined) overwrite(store, acked * blockBytes, junk)
  // A copy promoted though it does not vouch (placement.ts `promote`: no vouching replica was
  // reachable) may lack writes a power loss took: it must wait for a better copy and step down,
  // or serve complete — checked when it serves (sweep seed 3513: it waited, stepped down, lost nothing).
  const entry = previous.replicas.find((r) => r.node === record.master)
  if (entry !== undefined && !vouches(entry, world.incarnations)) return void world.promotionsToCheck.set(name, { node: record.master, epoch: record.epoch })
  checkPromotedCopy(world, name, record, record.master)
}

/** A master's copy holds every acknowledged write when its serving was deferred at promotion (see `onRecord`). */
const onServing = (world: SimWorld) => (name: string, node: string) => {
  const pending = world.promotionsToCheck.get(name)
  const record = world.volumes.find((v) => v.name === name)?.model.record
  if (pending === undefined || pending.node !== node || record?.master !== node || record.epoch !== pending.epoch) return
  world.promotionsToCheck.delete(name)
  checkPromotedCopy(world, name, record, record.master)
}

const checkPromotedCopy = (world: SimWorld, name: string, record: VolumeRecord, master: string) => {
  const model = world.volumes.find((v) => v.name === name)!.model
  const store = world.stores.byPath.get(copyPath(master, name))
  if (!store) return report(world, "incomplete-promotion", `${name}: promoted ${master} at epoch ${record.epoch} has no copy`)
  // An encrypted copy holds ciphertext: the checker decrypts it with the volume's key (its blocks are whole 4 KiB units).
  const cipher = record.encryption ? cipherOf(world, record) : undefined
  if (record.encryption && !cipher) return report(world, "incomplete-promotion", `${name}: promoted ${master} at epoch ${record.epoch}: the volume's key cannot be unwrapped`)
  for (const block of model.blocks.keys()) {
    const stored = store.peek(block * blockBytes, blockBytes)
    const problem = model.problem(block, cipher ? cipher.decrypt(block * blockBytes, stored) : stored)
    if (problem) return report(world, "incomplete-promotion", `${name}: promoted ${master} at epoch ${record.epoch}: block ${block} ${problem}`)
  }
}

/** Reads back every block the model knows through a handle (one read per write chunk that holds any). */
const checkContents = (world: SimWorld, volume: SimVolume) =>
  Effect.scoped(Effect.gen(function* () {
    const acked = [...volume.model.blocks.keys()][0]
    if (world.sabotage === "lose-acknowledged-write" && volume.index === 0 && acked !== undefined) {
      for (const slot of world.slots) {
        const store = world.stores.byPath.get(copyPath(slot.host.name, volume.name))
        if (store) overwrite(store, acked * blockBytes, junk)
      }
    }
    if (world.sabotage === "second-master" && volume.index === 0) noteAcknowledged(world, volume.name, volume.model.lastAckEpoch - 1)
    const via = runningNodes(world)[0]!.node!
    const handle = yield* via.openVolume(volume.name)
    yield* handle.flush
    const model = volume.model
    const chunkBlocks = writeChunkBytesMax / blockBytes
    const chunks = [...new Set([...model.blocks.keys()].map((b) => Math.floor(b / chunkBlocks)))].sort((a, b) => a - b)
    for (const chunk of chunks) {
      const first = chunk * chunkBlocks
      const count = Math.min(chunkBlocks, model.blockCount - first)
      const bytes = yield* handle.read(first * blockBytes, count * blockBytes)
      for (let b = first; b < first + count; b++) {
        if (!model.blocks.has(b)) continue
        const problem = model.problem(b, bytes.subarray((b - first) * blockBytes, (b - first + 1) * blockBytes))
        if (problem) return report(world, "lost-write", `${volume.name}: block ${b} ${problem} (read back after convergence)`)
      }
    }
  }))

/** Every in-sync copy is byte-identical to the master's. */
const checkCopies = (world: SimWorld, volume: SimVolume) =>
  Effect.gen(function* () {
    const info = yield* Effect.result(runningNodes(world)[0]!.node!.inspectVolume(volume.name))
    if (info._tag === "Failure" || info.success.master === undefined) return
    const master = world.stores.byPath.get(copyPath(info.success.master, volume.name))
    if (!master) return report(world, "diverged-copy", `${volume.name}: master ${info.success.master} has no copy`)
    const digest = master.digest()
    for (const replica of info.success.replicas) {
      const copy = world.stores.byPath.get(copyPath(replica.node, volume.name))
      if (world.sabotage === "diverge-replica" && copy && replica.state === "in-sync") overwrite(copy, 0, junk)
      if (replica.state === "in-sync" && copy && copy.digest() !== digest) {
        report(world, "diverged-copy", `${volume.name}: replica on ${replica.node} is in sync but differs from master ${info.success.master}`)
      }
    }
  })

/**
 * Converged with the requested count: within `convergeMs` the record holds exactly the replicas its
 * spec asks for (the count the last update asked for), each in sync, on distinct nodes other than the master.
 */
const checkReplicaCount = (world: SimWorld, volume: SimVolume, convergeMs: number) =>
  Effect.gen(function* () {
    // Settled once before the content checks is not settled now: a node re-registered at the heal
    // (its lease expired while it was paused) has its replica failed by the controller's next tick
    // and revived by the master within a tick or two (sweep seed 8611 was judged 3 ms early).
    yield* countSettles(volume, convergeMs)
    const record = volume.model.record
    if (!record) return report(world, "no-convergence", `${volume.name}: no record after convergence`)
    if (!countSettled(record)) {
      report(world, "no-convergence", `${volume.name}: asks for ${record.spec.replicas} replicas, converged with master ${record.master} and ${JSON.stringify(record.replicas.map((r) => `${r.node}:${r.state}`))}`)
    }
  })

const countSettled = (record: VolumeRecord): boolean => {
  const nodes = new Set(record.replicas.map((r) => r.node))
  const inSync = record.replicas.filter((r) => r.state === "in-sync").length
  return record.replicas.length === record.spec.replicas && inSync === record.spec.replicas && nodes.size === record.replicas.length && (record.master === undefined || !nodes.has(record.master))
}

/**
 * Whether the record settles on its count within `timeoutMs`. Healthy comes first: a former
 * master's entry (uncounted, records.ts `formerMaster`) the new master has just synced goes or is
 * kept at the controller's next tick (sweep seed 2468 was judged in between).
 */
const countSettles = (volume: SimVolume, timeoutMs: number) =>
  Effect.gen(function* () {
    for (let waitedMs = 0; waitedMs <= timeoutMs; waitedMs += 100) {
      const record = volume.model.record
      if (record !== undefined && countSettled(record)) return
      yield* Effect.sleep(100)
    }
  })

/** One in-sync replica of the first volume that has one, changed behind the cluster's back (sabotage of the verify checker). */
const corruptOneReplica = (world: SimWorld) => {
  for (const volume of world.volumes) {
    const replica = volume.model.record?.replicas.find((r) => r.state === "in-sync")
    const store = replica ? world.stores.byPath.get(copyPath(replica.node, volume.name)) : undefined
    if (store) return overwrite(store, Math.floor(store.sizeBytes / 2 / blockBytes) * blockBytes, junk)
  }
}

/** Whether the volume's resizes (if any) are done within `timeoutMs`: no size still asked for. */
const resized = (world: SimWorld, volume: SimVolume, timeoutMs: number) =>
  Effect.gen(function* () {
    for (let waitedMs = 0; waitedMs <= timeoutMs; waitedMs += 100) {
      const info = yield* Effect.result(runningNodes(world)[0]!.node!.inspectVolume(volume.name))
      if (info._tag === "Success" && info.success.resizingToBytes === undefined) return true
      yield* Effect.sleep(100)
    }
    return false
  })

/** After the faults: every fault undone, every node running, then convergence and the content checks. */
const liveness = (world: SimWorld, convergeMs: number) =>
  Effect.gen(function* () {
    world.network.healAll()
    world.network.setFaults({ delayMinMs: 0, delayMaxMs: 1, slowProbability: 0, slowDelayMs: 0, resetProbability: 0, bitFlipProbability: 0 })
    for (const slot of world.slots) {
      slot.host.cutFromStore = false
      world.network.resume(hostOf(slot.host.index))
      slot.host.resume()
    }
    for (const store of world.stores.byPath.values()) store.clearFaults()
    for (let i = 0; i < nodeCount; i++) yield* startHost(world, i)
    for (const volume of world.volumes) {
      const healthy = yield* Effect.result(runningNodes(world)[0]!.node!.waitHealthy(volume.name, convergeMs))
      if (healthy._tag === "Failure") report(world, "no-convergence", `${volume.name} did not converge to healthy within ${convergeMs} ms: ${healthy.failure.message}`)
      else if (!(yield* resized(world, volume, convergeMs))) report(world, "no-convergence", `${volume.name}: a resize was still under way ${convergeMs} ms after the faults`)
      else yield* countSettles(volume, convergeMs)
    }
    for (const volume of world.volumes) {
      const checked = yield* Effect.result(checkContents(world, volume))
      if (checked._tag === "Failure") report(world, "no-convergence", `${volume.name}: final read failed: ${String((checked.failure as { message?: string }).message)}`)
      yield* checkCopies(world, volume)
    }
    // After the other checks (they stay as they were): the record's replica count, then a verify of each volume.
    if (world.sabotage === "corrupt-before-verify") corruptOneReplica(world)
    for (const volume of world.volumes) {
      yield* checkReplicaCount(world, volume, convergeMs)
      yield* verifyCopies(world, volume)
    }
  })

/** The nodes' key ring of an encrypted run: one unwrapping key, random bytes from the seed. */
const simKeyRing = (seed: number, crypto: CryptoPrimitives): KeyRing => {
  const random = mulberry32(seed ^ 0x6a09e667)
  const bytes = (count: number) => Uint8Array.from({ length: count }, () => Math.floor(random.next() * 256))
  return { crypto: { ...crypto, randomBytes: bytes, xts: (key) => inlineXts(crypto.xts(key)) }, unwrappingKey: bytes(32), source: "the simulator's key" }
}

/** The cipher of an encrypted volume's record, unwrapped as a master does (from the namespace key record as committed). */
const cipherOf = (world: SimWorld, record: VolumeRecord): VolumeCipher | undefined => {
  const text = world.namespaceKeys.get(record.volume.split("/")[0]!)
  if (!world.keyRing || !record.encryption || text === undefined) return undefined
  const namespaceRecord = decodeNamespaceKey("", text)
  const key = namespaceRecord instanceof EncryptionError ? namespaceRecord : unwrapNamespaceKey(world.keyRing, namespaceRecord, record.volume)
  const cipher = key instanceof EncryptionError ? key : unwrapVolumeCipher(world.keyRing.crypto, key, record.encryption, record.volume, uidOf(record))
  return cipher instanceof EncryptionError ? undefined : cipher
}

const makeWorld = (seed: number, profile: ReturnType<typeof drawProfile>, sabotage: Sabotage | undefined, encryption: CryptoPrimitives | undefined) =>
  Effect.gen(function* () {
    const network = yield* makeSimNetwork(mulberry32(seed ^ 0x5bd1e995), profile.network)
    const volumes: SimVolume[] = profile.volumes.map((v) => ({ ...v, createdBytes: v.sizeBytes, model: new VolumeModel(v.name, v.sizeBytes, undefined), busy: new Set(), suspended: false, idle: true }))
    const world: SimWorld = {
      seed, network, volumes, violations: [], running: true,
      slots: Array.from({ length: nodeCount }, (_, i) => ({ host: makeSimHost(i, nameOf(i), hostOf(i), profile.latencies[i]!, startWallMs), incarnation: undefined, scope: undefined, node: undefined })),
      stores: makeMemoryStores(), control: undefined!, base: yield* Clock.Clock,
      counters: { acknowledged: 0, refused: 0, promotions: 0, faults: {} },
      workloadRandom: mulberry32(seed), faultRandom: mulberry32(seed ^ 0x2f6b1d4a), latencyRandom: mulberry32(seed ^ 0x71c3a9e5),
      images: new Map(), sabotage, keyRing: encryption ? simKeyRing(seed, encryption) : undefined, namespaceKeys: new Map(),
      incarnations: new Map(), promotionsToCheck: new Map(), onServing: undefined,
    }
    const noteNamespaceKey = (namespace: string, text: string) => void world.namespaceKeys.set(namespace, text)
    const noteNode = (node: NodeRecord) => void world.incarnations.set(node.name, node.incarnation)
    Object.assign(world, { control: observeCommits(yield* ControlStore, onRecord(world), noteNamespaceKey, noteNode), onServing: onServing(world) })
    return world
  })

const scenario = (seed: number, options: ClusterSimOptions, made: (world: SimWorld) => void) =>
  Effect.gen(function* () {
    const profile = drawProfile(seed)
    const world = yield* makeWorld(seed, profile, options.sabotage, options.encryption)
    made(world)
    const weights = { ...profile.weights, ...options.faultWeights }
    for (let i = 0; i < nodeCount; i++) yield* startHost(world, i)
    for (const volume of world.volumes) yield* createVolume(world, volume, volume.sizeBytes)
    for (const volume of world.volumes) yield* Effect.ignore(world.slots[0]!.node!.waitHealthy(volume.name, 20_000))
    const writers = yield* Effect.forkChild(Effect.forEach(world.volumes, (v) => writer(world, v, profile.workload), { concurrency: "unbounded", discard: true }))
    const working = new Set<number>()
    const chaosFibers = yield* Effect.forEach(Array.from({ length: profile.chaosFibers }), () => Effect.forkChild(chaos(world, weights, working)))
    yield* Effect.sleep(options.faultMs ?? faultMsDefault)
    world.running = false
    yield* Fiber.join(writers)
    for (const fiber of chaosFibers) yield* Fiber.join(fiber)
    yield* liveness(world, options.convergeMs ?? convergeMsDefault)
    for (const slot of world.slots) if (slot.scope) yield* Scope.close(slot.scope, Exit.void)
  })

export const runClusterSim = (options: ClusterSimOptions): Promise<ClusterSimResult> => {
  const seed = options.seed >>> 0
  const limitMs = (options.faultMs ?? faultMsDefault) + (options.convergeMs ?? convergeMsDefault) + 60_000
  const stepMs = 10
  let world: SimWorld | undefined
  const program = Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.scoped(scenario(seed, options, (made) => void (world = made))))
    let virtualMs = 0
    while (fiber.pollUnsafe() === undefined && virtualMs < limitMs) {
      yield* TestClock.adjust(stepMs)
      virtualMs += stepMs
    }
    const exit = fiber.pollUnsafe()
    if (exit === undefined) yield* Fiber.interrupt(fiber)
    return { exit, virtualMs }
  })
  const layers = Layer.mergeAll(
    // No real-time warning deadline: a wake that takes long on a loaded machine must not change the run.
    TestClock.layer({ warningDelay: "1 hour" }),
    Layer.succeed(Scheduler.Scheduler, new Scheduler.MixedScheduler("sync")),
    Layer.succeed(Entropy, seededEntropy(seed ^ 0x2545f491)),
  )
  return Effect.runPromise(program.pipe(Random.withSeed(seed), Effect.provide(Layer.provideMerge(layerMemory, layers)))).then(({ exit, virtualMs }) => {
    if (exit === undefined) return resultOf(seed, world, virtualMs, [{ kind: "no-convergence", message: `the run did not finish within ${limitMs} ms of virtual time` }])
    if (exit._tag === "Failure") return resultOf(seed, world, virtualMs, [{ kind: "run-failed", message: `the scenario failed: ${String(exit.cause).slice(0, 500)}` }])
    return resultOf(seed, world, virtualMs, [])
  })
}

const resultOf = (seed: number, world: SimWorld | undefined, virtualMs: number, extra: ReadonlyArray<Violation>): ClusterSimResult => {
  const violations = [...(world?.violations ?? []), ...extra]
  const faults = world?.counters.faults ?? {}
  const sum = (...kinds: string[]) => kinds.reduce((n, k) => n + (faults[k] ?? 0), 0)
  const counters = world?.counters ?? { acknowledged: 0, refused: 0, promotions: 0 }
  const crashes = sum("crash", "power-loss", "wipe", "restore")
  const partitions = sum("isolate", "block")
  const faultTrace = Object.entries(faults).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}=${n}`).join(",")
  return {
    seed, violations: violations.map((v) => v.message), violationKinds: violations.map((v) => v.kind), acknowledged: counters.acknowledged, refused: counters.refused,
    crashes, partitions, promotions: counters.promotions, faults, virtualMs,
    trace: `${counters.acknowledged}|${counters.refused}|${counters.promotions}|${virtualMs}|${faultTrace}`,
  }
}
