/**
 * The cluster simulator's faults, each drawn from the seed, one table entry per kind:
 *
 * - crash: the node's process dies (its page cache survives) and restarts later;
 * - power-loss: the process dies and its disks drop every write not covered by a flush;
 * - wipe: power loss, and its disks are emptied while it is down (it restarts with nothing);
 * - restore: power loss, and its copies are replaced by disk images taken earlier (data and meta)
 *   in another master session than the one the copy follows now;
 * - isolate / block / reset: partitions from everyone and the control store, one-way blocks,
 *   connection resets;
 * - store-fault: the next write (EIO, ENOSPC, possibly torn), fdatasync (EIO, possibly dropping
 *   the page cache), read or meta operation of one copy fails;
 * - clock-step: a node's wall clock jumps forward or back (monotonic time and sleeps run on);
 * - pause: the node's process stops for longer than its lease, then continues where it was;
 * - latency: the node's control-store calls take a long time for a while;
 * - recreate: a volume is deleted and created again while a node holding a copy is away;
 * - image: a node's disks are imaged (for a later restore; no fault by itself);
 * - resize / update / move / cordon / drain / verify: operations, not faults (clusterOperations.ts):
 *   a volume grows online, its labels change (replica count up or down, failure mode and
 *   tolerance, nocompress, hint.master), its master moves to a random node, a node is cordoned
 *   for a while or drained, a volume's copies are verified against its master — among the
 *   faults, each bounded in time; refusals are expected and counted.
 *
 * A fault that would destroy the last copy holding the acknowledged writes (a wipe or a restore
 * of it) becomes a plain crash; a power loss of the last holder is allowed and tells the model
 * which writes may legitimately roll back (clusterModel.ts).
 */
import { Effect } from "effect"
import type { StoreErrorReason } from "../store/BlockStore.ts"
import type { MemoryStore, MemoryStoreOperation } from "../store/memory.ts"
import { VolumeModel } from "./clusterModel.ts"
import { between, copiesOn, count, report, hostOf, nodeCount, runningNodes, startHost, stopHost, type SimVolume, type SimWorld } from "./clusterWorld.ts"
import { cordon, drain, move, resize, update, verifyDuringFaults } from "./clusterOperations.ts"

export type FaultKind =
  | "crash" | "power-loss" | "wipe" | "restore" | "isolate" | "block" | "reset" | "store-fault"
  | "clock-step" | "pause" | "latency" | "recreate" | "image" | "resize" | "move" | "cordon" | "drain" | "update" | "verify"

export type FaultWeights = Readonly<Record<FaultKind, number>>

/** Every weight 0: a scenario spreads its own mix over this. */
export const noFaults: FaultWeights = {
  "crash": 0, "power-loss": 0, "wipe": 0, "restore": 0, "isolate": 0, "block": 0, "reset": 0, "store-fault": 0,
  "clock-step": 0, "pause": 0, "latency": 0, "recreate": 0, "image": 0, "resize": 0, "move": 0, "cordon": 0, "drain": 0,
  "update": 0, "verify": 0,
}

/**
 * Every operation among crashes, power losses, partitions, resets, pauses and store errors (the
 * mix of test/sim/cluster-ops.test.ts and of the scenarios it found), over `noFaults`.
 */
export const operationsMix: FaultWeights = {
  ...noFaults,
  "update": 2, "resize": 0.6, "move": 1.2, "cordon": 0.4, "drain": 0.6, "verify": 0.6,
  "crash": 1, "power-loss": 0.5, "isolate": 0.4, "block": 0.3, "reset": 0.4, "pause": 0.3, "store-fault": 0.4,
}

/** Disk images kept per store path (a restore picks one of them). */
const imagesPerPathMax = 3

/** Tells every volume model that `node`'s copies lost writes; returns false if that would destroy a last holder (and changes nothing). */
const damageCopies = (world: SimWorld, node: string, destroys: boolean): boolean => {
  const held = copiesOn(world, node).flatMap((c) => (c.volume ? [c.volume] : []))
  if (destroys && held.some((v) => !v.model.canDestroy(node))) return false
  for (const volume of held) volume.model.damaged(node)
  return true
}

/**
 * A power loss of the copy at `path`: its unflushed writes are gone and so is its continuity
 * marker (lib/store/continuity.ts: it lives only as long as the machine's boot). A wipe or a
 * restore keeps the markers (the disk replaced while the machine stayed up, the harder case):
 * the copy's record no longer matches them.
 */
const loseUnflushed = (world: SimWorld, path: string, store: MemoryStore) => {
  store.crash()
  world.stores.markerByPath.delete(path)
}

/** The node goes down in one of four ways, stays down a while, and starts again. */
const down = (world: SimWorld, index: number, kind: "crash" | "power-loss" | "wipe" | "restore") =>
  Effect.gen(function* () {
    const node = world.slots[index]!.host.name
    yield* stopHost(world, index)
    let done: string = "crash"
    if (kind === "wipe" && damageCopies(world, node, true)) {
      for (const { path } of copiesOn(world, node)) world.stores.byPath.delete(path)
      done = "wipe"
    } else if (kind === "restore" && copiesOn(world, node).some((c) => world.images.has(c.path)) && damageCopies(world, node, true)) {
      for (const { path, store } of copiesOn(world, node)) {
        // Only an image from another master session than the copy's record names now: a backup
        // taken within the same session is undetectable by design (docs/design.md, "What this does
        // not detect": it needs region checksums), so restoring one tests nothing the product claims.
        const session = store.image().meta?.generation
        const images = world.images.get(path)?.filter((image) => image.sizeBytes === store.sizeBytes && (session === undefined || image.meta?.generation !== session)) ?? []
        if (images.length === 0) loseUnflushed(world, path, store)
        else {
          store.restore(images[Math.floor(world.faultRandom.next() * images.length)]!)
          // A record without a session could equal the image's: the marker goes with the machine's boot.
          if (session === undefined) world.stores.markerByPath.delete(path)
        }
      }
      done = "restore"
    } else if (kind !== "crash") {
      damageCopies(world, node, false)
      for (const { path, store } of copiesOn(world, node)) loseUnflushed(world, path, store)
      done = "power-loss"
    }
    count(world, done, node)
    yield* Effect.sleep(world.faultRandom.next() < 0.5 ? between(world, 300, 800) : between(world, 2000, 5000))
    yield* startHost(world, index)
  })

const isolate = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const host = world.slots[index]!.host
    world.network.isolate(hostOf(index))
    host.cutFromStore = true
    yield* Effect.sleep(world.faultRandom.next() < 0.5 ? 600 : 2500)
    world.network.healAll()
    host.cutFromStore = false
  })

const block = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const other = (index + 1 + Math.floor(world.faultRandom.next() * (nodeCount - 1))) % nodeCount
    world.network.block(hostOf(index), hostOf(other))
    yield* Effect.sleep(Math.floor(world.faultRandom.next() * 1500))
    world.network.healAll()
  })

const storeFaults: ReadonlyArray<{ readonly operation: MemoryStoreOperation; readonly reasons: ReadonlyArray<StoreErrorReason> }> = [
  { operation: "write", reasons: ["io", "no-space"] },
  { operation: "flush", reasons: ["io"] },
  { operation: "read", reasons: ["io"] },
  { operation: "writeMeta", reasons: ["io", "no-space"] },
  { operation: "readMeta", reasons: ["io"] },
]

/** Arms one fault on one copy of the node: it fires at that copy's next operation of its kind. */
const storeFault = (world: SimWorld, index: number) =>
  Effect.sync(() => {
    const node = world.slots[index]!.host.name
    const copies = copiesOn(world, node)
    if (copies.length === 0) return
    const random = world.faultRandom
    const { store, volume } = copies[Math.floor(random.next() * copies.length)]!
    const { operation, reasons } = storeFaults[Math.floor(random.next() * storeFaults.length)]!
    const reason = reasons[Math.floor(random.next() * reasons.length)]!
    const torn = operation === "write" && random.next() < 0.5
    const drops = operation === "flush" && random.next() < 0.5
    const model = volume?.model
    store.failNext(reason, {
      operation,
      ...(torn ? { partialBytes: 1 + Math.floor(random.next() * 8191) } : {}),
      ...(drops ? { dropUnflushed: true, onFired: () => void model?.damaged(node) } : {}),
    })
    count(world, `store-${operation}${torn ? "-torn" : ""}${drops ? "-drop" : ""}`, `${node} ${volume?.name}`)
  })

const clockStep = (world: SimWorld, index: number) =>
  Effect.sync(() => {
    const stepMs = between(world, 500, 30_000) * (world.faultRandom.next() < 0.5 ? -1 : 1)
    world.slots[index]!.host.wallOffsetMs += stepMs
  })

/** The process stops for longer than its lease (1 s), then continues. */
const pause = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const host = world.slots[index]!.host
    if (!world.slots[index]!.node) return
    host.pause()
    world.network.pause(hostOf(index))
    yield* Effect.sleep(between(world, 1200, 4000))
    world.network.resume(hostOf(index))
    host.resume()
  })

const latency = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const host = world.slots[index]!.host
    const usual = host.latency
    host.latency = { baseMaxMs: usual.baseMaxMs, spikeProbability: 1, spikeMs: between(world, 100, 1500) }
    yield* Effect.sleep(between(world, 1000, 3000))
    host.latency = usual
  })

const image = (world: SimWorld, index: number) =>
  Effect.sync(() => {
    for (const { path, store } of copiesOn(world, world.slots[index]!.host.name)) {
      const images = world.images.get(path) ?? []
      images.push(store.image())
      if (images.length > imagesPerPathMax) images.shift()
      world.images.set(path, images)
    }
  })

/** Waits (bounded) until the volume's writer has nothing in flight. */
const quiesce = (world: SimWorld, volume: SimVolume) =>
  Effect.gen(function* () {
    volume.suspended = true
    for (let waitedMs = 0; !volume.idle && waitedMs < 20_000; waitedMs += 20) yield* Effect.sleep(20)
    return volume.idle
  })

/**
 * While a node holding a copy of the volume is away, the volume is deleted and created again
 * (another size, sometimes): the node must come back to a copy it discards, never one it serves.
 */
const recreate = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const node = world.slots[index]!.host.name
    // Not a volume another re-creation is under way for (seed 5920: two at once, the second's create found the first's volume).
    const held = world.volumes.filter((v) => !v.suspended && (v.model.record?.master === node || v.model.record?.replicas.some((r) => r.node === node)))
    if (held.length === 0 || !world.slots[index]!.node) return
    const volume = held[Math.floor(world.faultRandom.next() * held.length)]!
    yield* stopHost(world, index)
    if (world.faultRandom.next() < 0.5 && damageCopies(world, node, false)) for (const { path, store } of copiesOn(world, node)) loseUnflushed(world, path, store)
    if (yield* quiesce(world, volume)) {
      const removed = yield* deleteVolume(world, volume)
      if (removed) yield* createVolume(world, volume, world.faultRandom.next() < 0.3 ? volume.sizeBytes * 2 : volume.sizeBytes)
      count(world, "recreate", `${volume.name} while ${node} is away`)
    }
    volume.suspended = false
    yield* Effect.sleep(between(world, 500, 4000))
    yield* startHost(world, index)
  })

/** Deletes through some running node (retrying while the control store is out of reach). */
const deleteVolume = (world: SimWorld, volume: SimVolume) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 50; attempt++) {
      const via = runningNodes(world)[0]?.node
      const result = via ? yield* Effect.result(via.deleteVolume(volume.name)) : undefined
      if (result?._tag === "Success") return true
      if (result?._tag === "Failure" && result.failure._tag === "ClusterError" && result.failure.reason === "not-found") return true
      yield* Effect.sleep(100)
    }
    return false
  })

/** Creates the volume (again) with a fresh model; retries until placement succeeds. */
export const createVolume = (world: SimWorld, volume: SimVolume, sizeBytes: number) =>
  Effect.gen(function* () {
    volume.sizeBytes = sizeBytes
    volume.createdBytes = sizeBytes
    volume.model = new VolumeModel(volume.name, sizeBytes, undefined)
    for (let attempt = 0; ; attempt++) {
      const via = runningNodes(world)[0]?.node
      const labels = { "storageos.com/replicas": String(volume.replicas), "storageos.com/failure.mode": volume.mode, ...(world.keyRing ? { "storageos.com/encryption": "true" } : {}) }
      const result = via ? yield* Effect.result(via.createVolume({ volume: volume.name, sizeBytes, labels })) : undefined
      if (result?._tag === "Success") return
      if (attempt >= 300) return report(world, "run-failed", `${volume.name} could not be created again: ${result?._tag === "Failure" ? result.failure.message : "no node runs"}`)
      yield* Effect.sleep(100)
    }
  })

type Action = (world: SimWorld, index: number) => Effect.Effect<void>

const actions: Readonly<Record<FaultKind, Action>> = {
  "crash": (w, i) => down(w, i, "crash"),
  "power-loss": (w, i) => down(w, i, "power-loss"),
  "wipe": (w, i) => down(w, i, "wipe"),
  "restore": (w, i) => down(w, i, "restore"),
  "isolate": (w, i) => Effect.andThen(isolate(w, i), Effect.sync(() => count(w, "isolate", w.slots[i]!.host.name))),
  "block": (w, i) => Effect.andThen(block(w, i), Effect.sync(() => count(w, "block", w.slots[i]!.host.name))),
  "reset": (w, i) => Effect.sync(() => (w.network.resetHost(hostOf(i)), count(w, "reset", w.slots[i]!.host.name))),
  "store-fault": storeFault,
  "clock-step": (w, i) => Effect.andThen(clockStep(w, i), Effect.sync(() => count(w, "clock-step", w.slots[i]!.host.name))),
  "pause": (w, i) => Effect.andThen(pause(w, i), Effect.sync(() => count(w, "pause", w.slots[i]!.host.name))),
  "latency": (w, i) => Effect.andThen(latency(w, i), Effect.sync(() => count(w, "latency", w.slots[i]!.host.name))),
  "recreate": recreate,
  "image": image,
  "resize": resize,
  "move": move,
  "cordon": cordon,
  "drain": drain,
  "update": update,
  "verify": verifyDuringFaults,
}

/** Faults that need the target's process running. */
const needsRunning: ReadonlySet<FaultKind> = new Set(["crash", "power-loss", "wipe", "restore", "pause", "recreate"])

const drawKind = (world: SimWorld, weights: FaultWeights): FaultKind => {
  const entries = Object.entries(weights) as Array<[FaultKind, number]>
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0)
  let roll = world.faultRandom.next() * total
  for (const [kind, weight] of entries) {
    roll -= weight
    if (roll < 0) return kind
  }
  return entries[entries.length - 1]![0]
}

/**
 * One fault at a time, on a node no other chaos fiber is working on, until the run stops; each
 * fault is left whole (a node taken down is started again) before the fiber returns.
 */
export const chaos = (world: SimWorld, weights: FaultWeights, working: Set<number>) =>
  Effect.gen(function* () {
    while (world.running) {
      yield* Effect.sleep(between(world, 200, 1000))
      if (!world.running) return
      // Disk images are taken all along (cheap: pages are shared), for a later restore.
      if (world.faultRandom.next() < 0.3) yield* image(world, Math.floor(world.faultRandom.next() * nodeCount))
      const index = Math.floor(world.faultRandom.next() * nodeCount)
      const kind = drawKind(world, weights)
      if (working.has(index) || (needsRunning.has(kind) && !world.slots[index]!.node)) continue
      working.add(index)
      yield* actions[kind](world, index)
      working.delete(index)
    }
  })
