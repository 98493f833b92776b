/**
 * The cluster simulator's world: hosts and the node each runs, volumes and their models, the
 * network, the disks, and what the run counted — shared by the workload (clusterWorkload.ts), the
 * faults (clusterFaults.ts) and the run itself (clusterSim.ts).
 *
 * Starting and stopping a host lives here because every fault that takes a node down goes
 * through `stopHost`: the incarnation dies first (nothing it left behind touches a disk, the
 * control store or the network again), its sockets are reset, then its scope closes.
 */
import { Clock, Effect, Exit, Scope } from "effect"
import type { ControlStoreShape } from "../control/ControlStore.ts"
import { startClusterNode, type ClusterNode } from "../cluster/clusterNode.ts"
import { ClusterError, decodeNode, decodeVolume, keys, type NodeRecord } from "../cluster/records.ts"
import type { SeededRandom } from "../core/seeded.ts"
import type { makeMemoryStores } from "../store/Stores.ts"
import type { MemoryStore, MemoryStoreImage } from "../store/memory.ts"
import type { FailureMode } from "../volume/labels.ts"
import type { KeyRing } from "../crypt/keys.ts"
import { VolumeModel } from "./clusterModel.ts"
import type { SimNetwork } from "./simNetwork.ts"
import { hostClock, incarnationLayer, type Incarnation, type SimHost } from "./simHost.ts"

export interface SimVolume {
  readonly index: number
  readonly name: string
  /** The size IO addresses now (grown by a committed resize). */
  sizeBytes: number
  /** The size it was created at (resize faults grow it to a bounded multiple). */
  createdBytes: number
  readonly replicas: number
  readonly mode: FailureMode
  /** Concurrent writes the volume's writer keeps in flight (1..32). */
  readonly depth: number
  model: VolumeModel
  /** Blocks with a write in flight (one write per block at a time: the model stays sequential per block). */
  readonly busy: Set<number>
  /** The writer stops issuing (a delete and re-create is under way) … */
  suspended: boolean
  /** … and says when it has no handle open and nothing in flight. */
  idle: boolean
}

export interface SimNodeSlot {
  readonly host: SimHost
  incarnation: Incarnation | undefined
  scope: Scope.Closeable | undefined
  node: ClusterNode | undefined
}

export interface SimCounters {
  acknowledged: number
  refused: number
  promotions: number
  readonly faults: Record<string, number>
}

export interface SimWorld {
  readonly seed: number
  readonly slots: ReadonlyArray<SimNodeSlot>
  readonly volumes: ReadonlyArray<SimVolume>
  readonly network: SimNetwork
  readonly stores: ReturnType<typeof makeMemoryStores>
  readonly control: ControlStoreShape
  readonly base: Clock.Clock
  readonly violations: Violation[]
  readonly counters: SimCounters
  /** Random streams: the workload's and the faults' (separate, so one does not shift the other). */
  readonly workloadRandom: SeededRandom
  readonly faultRandom: SeededRandom
  readonly latencyRandom: SeededRandom
  /** Disk images taken earlier, by store path (for a copy restored from an older backup). */
  readonly images: Map<string, MemoryStoreImage[]>
  /** A deliberate fault in the cluster's results, so a test can see each checker fail (clusterSim.ts `Sabotage`). */
  readonly sabotage: string | undefined
  /** Every node's key ring when the run's volumes are encrypted (its random bytes drawn from the seed). */
  readonly keyRing: KeyRing | undefined
  /** Namespace key records as committed (the promotion checker decrypts what a promoted copy holds). */
  readonly namespaceKeys: Map<string, string>
  /** Each node's process incarnation as its node record last committed it (records.ts `incarnation`). */
  readonly incarnations: Map<string, number | undefined>
  /**
   * Promotions whose check waits until that master serves, by volume: the promoted copy did not
   * vouch for its writes (its process restarted since it was recorded in sync), so it must wait
   * for a better copy and step down, or serve complete (clusterSim.ts `onRecord`).
   */
  readonly promotionsToCheck: Map<string, { readonly node: string; readonly epoch: number }>
  /** Runs a deferred promotion check when a master says it serves (set by clusterSim.ts). */
  onServing: ((volume: string, node: string) => void) | undefined
  running: boolean
}

/** What a checker found: its kind (typed, for tests and tools) and what it saw (for people). */
export interface Violation {
  readonly kind: ViolationKind
  readonly message: string
}

export type ViolationKind =
  | "lost-write" | "two-masters" | "incomplete-promotion" | "diverged-copy" | "no-convergence" | "run-failed"
  /** `volume verify` found a region of an in-sync copy that differs from the master's. */
  | "verify-difference"
  /** A record's spec changed to one no `volume update` under way asked for (an older spec written back). */
  | "lost-update"

export const report = (world: SimWorld, kind: ViolationKind, message: string) => void world.violations.push({ kind, message })

export const nodeCount = 5
export const hostOf = (index: number) => `127.0.0.${index + 1}`
export const nameOf = (index: number) => `n${index + 1}`
export const copyPath = (node: string, volume: string) => `/sim/${node}/copies/${volume}.img`

/** A duration drawn from the faults' stream, `lowMs..highMs` inclusive. */
export const between = (world: SimWorld, lowMs: number, highMs: number) => lowMs + Math.floor(world.faultRandom.next() * (highMs - lowMs + 1))

export const count = (world: SimWorld, fault: string, target?: string) => {
  world.counters.faults[fault] = (world.counters.faults[fault] ?? 0) + 1
  if (globalThis.process?.env?.DEBUG_SIM) console.error(world.base.currentTimeMillisUnsafe(), "FAULT", fault, target ?? "")
}

/** The volume a store path belongs to, with its store, for every copy on `node`'s disk. */
export const copiesOn = (world: SimWorld, node: string): Array<{ readonly path: string; readonly volume: SimVolume | undefined; readonly store: MemoryStore }> => {
  const prefix = `/sim/${node}/copies/`
  const out: Array<{ path: string; volume: SimVolume | undefined; store: MemoryStore }> = []
  for (const [path, store] of world.stores.byPath) {
    if (!path.startsWith(prefix)) continue
    const name = path.slice(prefix.length, -".img".length)
    out.push({ path, volume: world.volumes.find((v) => v.name === name), store })
  }
  return out
}

/** Nodes running and not paused, in index order. */
export const runningNodes = (world: SimWorld) => world.slots.filter((s) => s.node !== undefined && !s.host.isPaused())

/**
 * The shared control store, observed: every committed change of a volume record reaches
 * `onRecord` as typed data, at the moment it commits (the promotion checker runs there).
 */
export const observeCommits = (inner: ControlStoreShape, onRecord: (name: string, record: ReturnType<typeof decodeVolume> | undefined) => void, onNamespaceKey?: (namespace: string, text: string) => void, onNode?: (record: NodeRecord) => void): ControlStoreShape => ({
  ...inner,
  put: (key, value, options) =>
    Effect.tap(inner.put(key, value, options), () =>
      Effect.sync(() => {
        const node = key.startsWith(keys.nodes) ? decodeNode(key, value) : undefined
        if (node !== undefined && !(node instanceof ClusterError)) onNode?.(node)
      })),
  transaction: (txn) =>
    Effect.tap(inner.transaction(txn), (result) =>
      Effect.sync(() => {
        if (!result.succeeded) return
        for (const put of txn.put ?? []) if (put.key.startsWith(keys.namespaceKey(""))) onNamespaceKey?.(put.key.slice(keys.namespaceKey("").length), put.value)
        for (const put of txn.put ?? []) if (put.key.startsWith(keys.volumes)) onRecord(put.key.slice(keys.volumes.length), decodeVolume(put.key, put.value))
        for (const key of txn.delete ?? []) if (key.startsWith(keys.volumes)) onRecord(key.slice(keys.volumes.length), undefined)
      })),
})

/** The two-masters checker: per volume, acknowledgements never go back to an older epoch once a newer one acknowledged. */
export const noteAcknowledged = (world: SimWorld, volumeName: string, epoch: number, offset?: number, length?: number) => {
  const model = world.volumes.find((v) => v.name === volumeName)?.model
  if (!model) return
  if (offset !== undefined && length !== undefined) model.masterAcknowledged(offset, length)
  if (epoch < model.lastAckEpoch) report(world, "two-masters", `${volumeName}: a master at epoch ${epoch} acknowledged a write after epoch ${model.lastAckEpoch} had (two masters)`)
  model.lastAckEpoch = Math.max(model.lastAckEpoch, epoch)
}

export const nodeOptions = (world: SimWorld, index: number) => ({
  name: nameOf(index), address: { host: hostOf(index) }, dataDir: `/sim/${nameOf(index)}`, secret: "cluster-simulation-secret",
  ackTimeoutMs: 1000, handshakeTimeoutMs: 500, reconnectBaseMs: 5, reconnectCeilingMs: 100,
  leaseTtlMs: 1000, tickMs: 200, graceMs: 3000, pauseMaxMs: 4000, inProcessShortcut: false,
  onWriteAcknowledged: (volumeName: string, epoch: number, offset: number, length: number) => noteAcknowledged(world, volumeName, epoch, offset, length),
  ...(world.keyRing ? { keyRing: world.keyRing } : {}),
  onClusterEvent: (event: { readonly atMs: number; readonly node: string; readonly kind: string; readonly volume?: string; readonly message: string }) => {
    if (globalThis.process?.env?.DEBUG_SIM) console.error(world.base.currentTimeMillisUnsafe(), event.node, event.kind, event.message)
    if (event.kind === "master-serving" && event.volume !== undefined) world.onServing?.(event.volume, event.node)
  },
})

/** Starts a new incarnation of the node on `index` (retrying while the control store refuses it). */
export const startHost = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const slot = world.slots[index]!
    if (slot.node) return
    for (let attempt = 0; ; attempt++) {
      const incarnation: Incarnation = { alive: true }
      const scope = yield* Scope.make()
      const layer = incarnationLayer(slot.host, incarnation, { control: world.control, stores: world.stores.service, transport: world.network.transport, base: world.base, random: world.latencyRandom })
      const started = yield* Effect.result(startClusterNode(nodeOptions(world, index)).pipe(
        Effect.provideService(Clock.Clock, hostClock(world.base, slot.host)), Scope.provide(scope), Effect.provide(layer)))
      if (started._tag === "Success") {
        Object.assign(slot, { incarnation, scope, node: started.success })
        return
      }
      incarnation.alive = false
      yield* Scope.close(scope, Exit.void)
      if (attempt >= 50) return report(world, "run-failed", `${nameOf(index)} could not start: ${String((started.failure as { message?: string }).message)}`)
      yield* Effect.sleep(200)
    }
  })

/** The node's process dies: its incarnation first (nothing it leaves behind acts again), then its sockets, then its scope. */
export const stopHost = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const slot = world.slots[index]!
    if (!slot.node) return
    slot.node.crash()
    slot.incarnation!.alive = false
    const scope = slot.scope!
    Object.assign(slot, { incarnation: undefined, scope: undefined, node: undefined })
    world.network.resetHost(hostOf(index))
    yield* Scope.close(scope, Exit.void)
    world.network.resetHost(hostOf(index))
  })
