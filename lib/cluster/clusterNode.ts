/**
 * A cluster node: a replivol node plus its agent, a controller candidate, and the cluster API.
 *
 * - Membership: the node registers `replivol/nodes/<name>` under a lease it keeps alive; a node
 *   whose lease expires is lost. A master serves IO only while its lease renewals are recent
 *   (`leaseValid`), and fences itself when a renewal fails.
 * - Agent (every node, every `tickMs`): reads the records and makes this node's copies match:
 *   hosts replica copies it is listed for; opens the master of volumes it masters (after taking
 *   the volume's master lease, `replivol/masters/<volume>`, under its node lease); adds, removes
 *   and revives replica links; records replica failures, sync progress and in-sync transitions.
 * - Controller (one per cluster, elected through `replivol/controller`): applies `planVolume` to
 *   every volume — promotion after the master's lease is gone, failed replicas, replacement after
 *   the grace period, missing replicas.
 * - API: create (rules → labels → spec → placement → compare-and-swap create), delete, inspect,
 *   list, rules, nodes, and volume handles that follow the master (`openVolume`).
 */
import { Clock, Effect, Exit, Fiber, PubSub, Random, Scope, Stream } from "effect"
import { ControlStore, type ControlError } from "../control/ControlStore.ts"
import { defaults } from "../core/limits.ts"
import { startNode, checkVolumeName, checkVolumeSize, type NodeOptions, type ReplivolNode } from "../node/node.ts"
import type { NetError, Transport } from "../net/Transport.ts"
import { applyRules, validateRule, type Rule, type RuleError } from "../policy/rules.ts"
import type { ReplicationError, VolumeError } from "../replication/errors.ts"
import type { VerifyOptions, VerifyReport } from "../replication/verify.ts"
import type { MasterVolume, ReplicaPlan, VolumeEvent } from "../replication/masterVolume.ts"
import type { BlockStore } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { assessVolume, type Health } from "../volume/health.ts"
import { isLabelKey, isLabelValue, labelCountMax, parseLabels, type LabelError } from "../volume/labels.ts"
import { loadOf, placeVolume, planVolume, vouches, type NodeTopology } from "./placement.ts"
import { ClusterError, decodeNodeConfig, encode, keys, uidOf, type MasterLease, type NodeConfig, type NodeRecord, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import { getNode, getVolume, listMasterLeases, listNodeConfigs, listNodes, listVolumes, locateMaster, updateVolume, type Versioned } from "./store.ts"
import { makeVolumeClient, type VolumeClient } from "./volumeClient.ts"

export interface ClusterNodeOptions extends NodeOptions {
  /** Node lease TTL: a node silent this long is lost (default 1000 ms). */
  readonly leaseTtlMs?: number
  /** Period of the agent and controller loops (default 100 ms). */
  readonly tickMs?: number
  /** How long a failed replica's node may stay away before it is replaced (default 30 s, as StorageOS). */
  readonly graceMs?: number
  /** Longest pause a volume handle hides from the application before failing (default 60 s). */
  readonly pauseMaxMs?: number
  /** The admin API address this node serves, recorded for the CLI. */
  readonly api?: string
  /** Labels set on this node at start (merged into its config; e.g. topology.kubernetes.io/zone for failure domains). */
  readonly labels?: Readonly<Record<string, string>>
  readonly onClusterEvent?: (event: ClusterEvent) => void
  /** Share of time a resync may take while foreground IO is active (0 < share ≤ 1, default ½). */
  readonly resyncShare?: number
  /** Let handles call masters of other nodes in this process directly (default true; the simulator turns it off to test the wire). */
  readonly inProcessShortcut?: boolean
}

export interface ClusterEvent {
  readonly atMs: number
  readonly node: string
  readonly kind: string
  readonly volume?: string
  readonly message: string
}

export interface ReplicaInfo {
  readonly node: string
  readonly state: ReplicaRecord["state"]
  readonly reason?: string
  readonly bytesDone?: number
  readonly bytesTotal?: number
}

export interface VolumeInfo {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  readonly health: Health
  readonly usable: boolean
  readonly reason: string
  readonly epoch: number
  readonly master: string | undefined
  readonly replicas: ReadonlyArray<ReplicaInfo>
  readonly rulesApplied: ReadonlyArray<string>
}

export interface NodeInfo extends NodeRecord {
  readonly alive: boolean
  readonly controller: boolean
  /** The operator's labels on the node (failure domains among them); none when absent. */
  readonly labels?: Readonly<Record<string, string>>
  /** No new copy is placed on it and no replica on it is promoted (absent: false). */
  readonly cordoned?: boolean
}

/** A change to a volume's labels: `set` wins over the current values, then `remove` drops keys. */
export interface VolumeLabelChange {
  readonly setLabels?: Readonly<Record<string, string>>
  readonly removeLabels?: ReadonlyArray<string>
}

/** Replicas kept when a volume's count goes down: in-sync ones first, then syncing, then the rest. */
const keepRank: Readonly<Record<ReplicaRecord["state"], number>> = { "in-sync": 0, syncing: 1, provisioned: 2, failed: 3 }
export const replicasKept = (replicas: ReadonlyArray<ReplicaRecord>, count: number): ReadonlyArray<ReplicaRecord> =>
  replicas.length <= count ? replicas : [...replicas].sort((a, b) => keepRank[a.state] - keepRank[b.state]).slice(0, count)

/** A change to a node's config: labels to set or remove, cordon or uncordon. */
export interface NodeConfigChange {
  readonly setLabels?: Readonly<Record<string, string>>
  readonly removeLabels?: ReadonlyArray<string>
  readonly cordoned?: boolean
}

export interface CreateVolumeOptions {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels?: Readonly<Record<string, string>>
}

type ApiError = ClusterError | ControlError | LabelError | ReplicationError | RuleError

export interface ClusterNode {
  readonly name: string
  readonly node: ReplivolNode
  readonly createVolume: (options: CreateVolumeOptions) => Effect.Effect<VolumeInfo, ApiError>
  readonly deleteVolume: (volume: string) => Effect.Effect<void, ApiError>
  readonly listVolumes: Effect.Effect<ReadonlyArray<VolumeInfo>, ApiError>
  readonly inspectVolume: (volume: string) => Effect.Effect<VolumeInfo, ApiError>
  /** Changes a live volume's labels (replica count, failure mode and tolerance, compression, hint, the user's own); IO goes on. */
  readonly updateVolume: (volume: string, change: VolumeLabelChange) => Effect.Effect<VolumeInfo, ApiError>
  /** Waits until the volume is healthy (polling), failing with `timeout` after `timeoutMs`. */
  readonly waitHealthy: (volume: string, timeoutMs: number) => Effect.Effect<VolumeInfo, ApiError>
  /** A handle whose IO follows the volume's master. Closed with the scope. */
  readonly openVolume: (volume: string) => Effect.Effect<VolumeClient, ApiError, Scope.Scope>
  readonly listNodes: Effect.Effect<ReadonlyArray<NodeInfo>, ApiError>
  /** Changes a node's labels or cordon (the node must have registered once); returns its new config. */
  readonly configureNode: (name: string, change: NodeConfigChange) => Effect.Effect<NodeConfig, ApiError>
  readonly putRule: (input: unknown) => Effect.Effect<Rule, ApiError>
  readonly deleteRule: (namespace: string, name: string) => Effect.Effect<void, ApiError>
  readonly listRules: (namespace?: string) => Effect.Effect<ReadonlyArray<Rule>, ApiError>
  readonly isController: () => boolean
  readonly recentEvents: () => ReadonlyArray<ClusterEvent>
  /** Every later event of this node (node lost, promoted, replica placed, sync progress, sync done, …). */
  readonly events: Stream.Stream<ClusterEvent>
  /**
   * Verifies the volume's in-sync replicas against its master (region checksums, online;
   * lib/replication/verify.ts) and returns the report when it is done. Runs where the master is:
   * on this node, or on another node of this process; a master in another process answers
   * `remote-master` naming its node and admin API.
   */
  readonly verifyVolume: (volume: string, options?: VerifyOptions) => Effect.Effect<VerifyReport, ApiError | VolumeError>
  /** Starts a verify in the background and returns its report (which shows its progress). */
  readonly startVerify: (volume: string, options?: VerifyOptions) => Effect.Effect<VerifyReport, ApiError>
  /** The running or last verify of the volume's current master session (`not-found` if none ran). */
  readonly verifyStatus: (volume: string) => Effect.Effect<VerifyReport, ApiError>
  /** Marks the node as crashing: closing its scope then keeps its lease (it must expire, as after a real crash). */
  readonly crash: () => void
}

/** Cordons and labels from the node configs, for placement. */
const topologyOf = (configs: ReadonlyMap<string, Versioned<NodeConfig>>): NodeTopology => ({
  cordoned: new Set([...configs.values()].filter((c) => c.value.cordoned).map((c) => c.value.name)),
  labelsOf: (node) => configs.get(node)?.value.labels,
})

/** Why a node label change is refused (undefined: it is fine). */
const nodeLabelError = (change: NodeConfigChange, current: NodeConfig): ClusterError | undefined => {
  for (const [key, value] of Object.entries(change.setLabels ?? {})) {
    if (!isLabelKey(key)) return new ClusterError({ reason: "bad-request", message: `node label key ${JSON.stringify(key)} is malformed: allowed [prefix/]name, name 1..63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit` })
    if (typeof value !== "string" || !isLabelValue(value)) return new ClusterError({ reason: "bad-request", message: `node label ${key}=${JSON.stringify(value)} has a malformed value: allowed 0..63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit` })
  }
  const count = Object.keys({ ...current.labels, ...change.setLabels }).filter((k) => !(change.removeLabels ?? []).includes(k)).length
  return count > labelCountMax ? new ClusterError({ reason: "bad-request", message: `node ${current.name} would have ${count} labels: allowed at most ${labelCountMax}` }) : undefined
}

interface MasterRole {
  readonly scope: Scope.Closeable
  readonly epoch: number
  volume: MasterVolume | undefined
  readonly busy: Set<string>
  readonly reviveAtMs: Map<string, number>
  progressAtMs: number
}

interface Copy {
  readonly volume: string
  /** The volume instance the copy was opened for (a name deleted and created again is another volume). */
  readonly uid: string
  readonly sizeBytes: number
  readonly scope: Scope.Closeable
  readonly store: BlockStore
  /** This process served the copy as master since it opened it (its recent writes are known here). */
  servedHere: boolean
  /** A write or fdatasync of this copy failed while it was master: it steps down when an in-sync replica can serve. */
  suspect: boolean
  /** The record listed this copy as an in-sync replica that vouches, when this node last read it as a replica. */
  recordedInSync: boolean
  replicaScope: Scope.Closeable | undefined
  master: MasterRole | undefined
}

const recentEventsMax = 500

/**
 * Masters served by cluster nodes of this process, by node identity (`name@host:port`). A volume
 * handle whose master runs in the same process (a local cluster, `cluster up`) calls it directly
 * instead of going through a socket to itself.
 */
const processMasters = new Map<string, ReplivolNode>()
const identity = (name: string, address: { readonly host: string; readonly port: number }) => `${name}@${address.host}:${address.port}`

export const inProcessMaster = (location: { readonly node: string; readonly address: { readonly host: string; readonly port: number } }, volume: string): MasterVolume | undefined => {
  const master = processMasters.get(identity(location.node, location.address))?.masters().get(volume)
  return master && !master.isFenced() ? master : undefined
}

/** Health of a volume as its record says (usable by every node, not only the master's). */
export const volumeInfo = (record: VolumeRecord, alive: ReadonlySet<string>): VolumeInfo => {
  // Counted against the requested replicas: copies on lost nodes and slots not placed yet are failed.
  const requested = record.spec.replicas
  const countOf = (states: ReadonlyArray<ReplicaRecord["state"]>) => record.replicas.filter((r) => states.includes(r.state) && alive.has(r.node)).length
  const inSync = Math.min(countOf(["in-sync"]), requested)
  const syncing = Math.min(countOf(["syncing", "provisioned"]), requested - inSync)
  const masterAvailable = record.master !== undefined && alive.has(record.master) && record.unavailableReason === undefined
  const assessment = assessVolume(record.spec, { inSync, syncing, failed: requested - inSync - syncing }, masterAvailable)
  return {
    volume: record.volume, sizeBytes: record.sizeBytes, labels: record.labels, epoch: record.epoch, master: record.master,
    health: assessment.health, usable: assessment.usable,
    reason: record.unavailableReason ?? (masterAvailable ? assessment.reason : `master ${record.master ?? "(none)"} is not available; ${assessment.reason}`),
    replicas: record.replicas.map((r) => ({
      node: r.node, state: r.state,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.bytesDone === undefined ? {} : { bytesDone: r.bytesDone, bytesTotal: r.bytesTotal ?? 0 }),
    })),
    rulesApplied: record.rulesApplied,
  }
}

export const startClusterNode = (
  options: ClusterNodeOptions,
): Effect.Effect<ClusterNode, NetError | ReplicationError | ControlError | ClusterError, Scope.Scope | ControlStore | Transport | Stores> =>
  Effect.gen(function* () {
    const control = yield* ControlStore
    const stores = yield* Stores
    const clock = yield* Clock.Clock
    const nodeScope = yield* Effect.scope
    const context = yield* Effect.context<ControlStore | Transport | Stores>()
    const leaseTtlMs = options.leaseTtlMs ?? 1000
    const tickMs = options.tickMs ?? 100
    const graceMs = options.graceMs ?? 30_000
    const pauseMaxMs = options.pauseMaxMs ?? 60_000
    const ackTimeoutMs = options.ackTimeoutMs ?? defaults.ackTimeoutMs
    const me = options.name
    const events: ClusterEvent[] = []
    // Subscribers that fall more than this many events behind lose the oldest (sliding).
    const eventHub = yield* PubSub.sliding<ClusterEvent>(recentEventsMax)
    const now = () => clock.currentTimeMillisUnsafe()
    const publish = (kind: string, message: string, volume?: string) => {
      const event: ClusterEvent = { atMs: now(), node: me, kind, message, ...(volume ? { volume } : {}) }
      events.push(event)
      if (events.length > recentEventsMax) events.shift()
      PubSub.publishUnsafe(eventHub, event)
      options.onClusterEvent?.(event)
    }
    const lastPublishedMs = new Map<string, number>()
    /** Publishes at most once every 5 s per key (a condition the agent sees at every tick). */
    const publishThrottled = (key: string, kind: string, message: string, volume?: string) => {
      if (now() - (lastPublishedMs.get(key) ?? -Infinity) < 5000) return
      if (lastPublishedMs.size > recentEventsMax) lastPublishedMs.clear()
      lastPublishedMs.set(key, now())
      publish(kind, message, volume)
    }
    const volumeEvent = (event: VolumeEvent) => publish(event.kind, event.message, event.volume)
    // This process's incarnation (records.ts): the control store's revision now, so higher at every
    // start of the process. A replica recorded in sync vouches for its copy until it changes.
    const incarnation = (yield* control.transaction({ compare: [] })).revision
    const startedMs = Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
    const node = yield* startNode({ ...options, onEvent: volumeEvent, incarnation })
    const address = node.address
    processMasters.set(identity(me, address), node)
    yield* Effect.addFinalizer(() => Effect.sync(() => processMasters.get(identity(me, address)) === node && processMasters.delete(identity(me, address))))
    const copies = new Map<string, Copy>()
    let lease: string | undefined
    let lastRenewOkMs = -Infinity
    let controller = false
    let crashed = false
    // Lease ages are measured on the monotonic clock: a wall-clock step neither extends nor cuts them.
    const monotonicMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
    const leaseValid = () => lease !== undefined && monotonicMs() - lastRenewOkMs < leaseTtlMs * 0.75

    const closeScope = (scope: Scope.Closeable) => Scope.close(scope, Exit.void)

    const closeMaster = (copy: Copy, why: string) =>
      Effect.gen(function* () {
        const role = copy.master
        if (!role) return
        copy.master = undefined
        role.volume?.fence("not-master", `volume ${copy.volume}: ${why}`)
        yield* closeScope(role.scope)
        publish("master-closed", `${me} stopped serving ${copy.volume} as master: ${why}`, copy.volume)
      })

    const closeCopy = (name: string, remove: boolean) =>
      Effect.gen(function* () {
        const copy = copies.get(name)
        if (!copy) return
        copies.delete(name)
        yield* closeMaster(copy, "the copy was closed")
        yield* closeScope(copy.scope)
        if (remove) yield* Effect.ignore(stores.remove(node.storePath(name)))
      })

    const fenceAll = (why: string) =>
      Effect.forEach([...copies.values()], (copy) => closeMaster(copy, why), { discard: true })

    // Membership: register under a lease and keep it alive; on loss, fence every master first.
    const register = Effect.gen(function* () {
      const grantStartedMs = monotonicMs()
      const granted = yield* control.grantLease(leaseTtlMs)
      const startedAtMs = now()
      const record: NodeRecord = { name: me, host: address.host, port: address.port, startedAtMs, incarnation, ...(options.api ? { api: options.api } : {}) }
      yield* control.put(keys.node(me), encode(record), { lease: granted })
      lease = granted
      lastRenewOkMs = grantStartedMs
      publish("node-registered", `${me} joined at ${address.host}:${address.port}`)
    })
    const keepAlive = Effect.gen(function* () {
      for (;;) {
        if (lease === undefined) {
          const result = yield* Effect.result(register)
          if (result._tag === "Failure") yield* Effect.sleep(tickMs)
          continue
        }
        yield* Effect.sleep(Math.max(10, Math.floor(leaseTtlMs / 3)))
        const startedMs = monotonicMs()
        const result = yield* Effect.result(control.keepAlive(lease))
        if (result._tag === "Success") lastRenewOkMs = startedMs
        else if (result.failure.reason === "lease-expired" || result.failure.reason === "lease-not-found" || !leaseValid()) {
          publish("lease-lost", `${me} lost its lease (${result.failure.message}); fencing its masters`)
          lease = undefined
          yield* fenceAll("the node's lease was lost")
        }
      }
    })
    yield* register
    if (options.labels !== undefined && Object.keys(options.labels).length > 0) yield* configureNode(me, { setLabels: options.labels })
    yield* Effect.forkIn(keepAlive, nodeScope)

    const targetOf = (name: string, nodes: ReadonlyMap<string, NodeRecord>) => {
      const record = nodes.get(name)
      return record ? { node: name, address: { host: record.host, port: record.port } } : undefined
    }

    /** Opens this node's copy of the record's volume; a copy left by another volume of the same name is discarded first. */
    const ensureCopy = (record: VolumeRecord) =>
      Effect.gen(function* () {
        const existing = copies.get(record.volume)
        if (existing && existing.uid === uidOf(record) && existing.sizeBytes === record.sizeBytes) return existing
        // The volume was deleted and created again between two ticks (this node may even be its
        // master again, at the same epoch): the open copy is the old volume's. It goes, with its
        // master or replica role, before the new volume's copy is opened. Found by the cluster
        // simulator (seed 49: the old master kept serving the re-created volume, old size and data).
        if (existing) yield* closeCopy(record.volume, true)
        const first = yield* openCopyScoped(record)
        const meta = yield* Effect.result(first.store.readMeta)
        const foreign = meta._tag === "Success" && meta.success?.uid !== undefined && meta.success.uid !== uidOf(record)
        if (!foreign) return registerCopy(record, first)
        yield* closeScope(first.scope)
        yield* stores.remove(node.storePath(record.volume))
        publish("copy-discarded", `${me}: the copy of ${record.volume} belonged to volume id ${(meta as { success: { uid: string } }).success.uid}, not ${uidOf(record)} (deleted and created again while ${me} was away); removed`, record.volume)
        return registerCopy(record, yield* openCopyScoped(record))
      })
    const openCopyScoped = (record: VolumeRecord) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(nodeScope)
        const store = yield* node.openCopy(record.volume, record.sizeBytes).pipe(Scope.provide(scope), Effect.onError(() => closeScope(scope)))
        return { scope, store }
      })
    const registerCopy = (record: VolumeRecord, opened: { readonly scope: Scope.Closeable; readonly store: BlockStore }) => {
      const copy: Copy = { volume: record.volume, uid: uidOf(record), sizeBytes: record.sizeBytes, ...opened, servedHere: false, suspect: false, recordedInSync: false, replicaScope: undefined, master: undefined }
      copies.set(record.volume, copy)
      return copy
    }

    /**
     * Removes copies on this node's disk that no record places here (a volume deleted, or its copy
     * replaced, while the node was away). A copy whose name a record places here but whose volume
     * id differs is discarded when it is opened (`ensureCopy`), never by name alone.
     */
    const sweepUnclaimed = (volumes: ReadonlyArray<VolumeRecord>) =>
      Effect.gen(function* () {
        if (!stores.list) return
        // Only against a control store that can claim: every volume record readable, and at least
        // one (an empty or foreign store — a lost snapshot, a wrong etcd — must not empty the disk).
        const raw = yield* control.list(keys.volumes)
        if (raw.length !== volumes.length || volumes.length === 0) return
        const claimed = new Set([...copies.keys(), ...volumes.filter((v) => v.master === me || v.replicas.some((r) => r.node === me)).map((v) => v.volume)].map(node.storePath))
        for (const path of yield* stores.list(node.copiesDir)) {
          if (claimed.has(path)) continue
          yield* Effect.ignore(stores.remove(path))
          publish("copy-removed", `${me}: removed ${path}: no volume record places a copy on ${me}`)
        }
      })

    /**
     * Records a replica in sync (while `stillInSync`), with the incarnation of the replica's process
     * its link is attached to (records.ts `syncedIncarnation`; ReplicaLink `incarnation`). Not its node record read now:
     * a replica that lost power just after the sync, and registered again before this record was
     * written, would vouch for a copy that lost the writes it acknowledged since (its link is still
     * reconnecting, so in sync). A replica that does not tell (an older version) gets its node's
     * incarnation read now.
     */
    const markInSync = (volume: string, epoch: number, replicaNode: string, stillInSync: () => boolean, answered: number | undefined) =>
      Effect.gen(function* () {
        const incarnation = answered ?? (yield* getNode(replicaNode).pipe(Effect.provide(context)))?.incarnation
        yield* markReplica(volume, epoch, replicaNode, (r) =>
          stillInSync() ? { node: r.node, state: "in-sync", syncedEpoch: epoch, ...(incarnation === undefined ? {} : { syncedIncarnation: incarnation }) } : r)
      })

    const markReplica = (volume: string, epoch: number, replicaNode: string, change: (r: ReplicaRecord) => ReplicaRecord) =>
      updateVolume(volume, (record) => {
        if (record.master !== me || record.epoch !== epoch) return new ClusterError({ reason: "conflict", message: `volume ${volume}: ${me} is no longer its master at epoch ${epoch}` })
        let changed = false
        const replicas = record.replicas.map((r) => {
          if (r.node !== replicaNode) return r
          const next = change(r)
          changed ||= JSON.stringify(next) !== JSON.stringify(r)
          return next
        })
        return changed ? { ...record, replicas } : undefined
      }).pipe(Effect.asVoid, Effect.provide(context))

    const openMaster = (copy: Copy, record: VolumeRecord, nodes: ReadonlyMap<string, NodeRecord>) =>
      Effect.gen(function* () {
        let ownActivity: ReadonlyArray<readonly [number, number]> | "all" = "all"
        if (copy.replicaScope) {
          ownActivity = node.detachReplica(record.volume)
          yield* closeScope(copy.replicaScope)
          copy.replicaScope = undefined
        }
        const scope = yield* Scope.fork(copy.scope)
        const role: MasterRole = { scope, epoch: record.epoch, volume: undefined, busy: new Set(), reviveAtMs: new Map(), progressAtMs: 0 }
        copy.master = role
        const plans: ReplicaPlan[] = []
        for (const r of record.replicas) {
          const target = targetOf(r.node, nodes) ?? { node: r.node, address: { host: "0.0.0.0", port: 0 } }
          plans.push({ target, recorded: r.state === "in-sync" ? "in-sync" : "needs-sync" })
        }
        publish("master-opening", `${me} opens ${record.volume} as master at epoch ${record.epoch}`, record.volume)
        const open = node.openVolume({
          volume: record.volume, sizeBytes: record.sizeBytes, spec: record.spec, epoch: record.epoch, replicas: plans,
          store: copy.store, waitForSync: false, ownActivity, leaseValid,
          ...(options.resyncShare === undefined ? {} : { resyncShare: options.resyncShare }),
          onReplicaFailed: (replicaNode, failure) =>
            markReplica(record.volume, record.epoch, replicaNode, (r) => (r.state === "failed" ? r : { node: r.node, state: "failed", reason: failure.message, failedAtMs: now() })),
          onReplicaInSync: (replicaNode, stillInSync, answered) =>
            markInSync(record.volume, record.epoch, replicaNode, stillInSync, answered),
          onReplicaSyncing: (replicaNode) =>
            markReplica(record.volume, record.epoch, replicaNode, (r) => (r.state === "in-sync" ? { node: r.node, state: "syncing" } : r)),
          uid: uidOf(record),
        }).pipe(Scope.provide(scope), Effect.provide(context))
        yield* Effect.forkIn(
          Effect.gen(function* () {
            const result = yield* Effect.result(open)
            if (result._tag === "Failure") {
              publish("master-failed", `${me} could not open ${record.volume}: ${String((result.failure as { message?: string }).message ?? result.failure)}`, record.volume)
              if (copy.master === role) yield* closeMaster(copy, "opening failed")
              return
            }
            role.volume = result.success
            copy.servedHere = true
            // From now on its own record proves what it holds (see shouldStepDown).
            copy.recordedInSync = false
            publish("master-serving", `${me} serves ${record.volume} as master at epoch ${record.epoch}`, record.volume)
          }),
          scope,
        )
      })

    /**
     * A copy that cannot prove it holds every acknowledged write must not serve while an in-sync
     * replica can: after a restart its unflushed writes may be gone (power loss), after a failed
     * fdatasync or write its record says incomplete. It steps down so an in-sync replica is promoted.
     */
    const shouldStepDown = (copy: Copy, record: VolumeRecord) =>
      Effect.gen(function* () {
        const inSync = record.replicas.filter((r) => r.state === "in-sync" && incarnations.has(r.node))
        const meta = yield* Effect.result(copy.store.readMeta)
        const own = meta._tag === "Success" ? meta.success : undefined
        const complete = own?.state === "complete" && (own.uid === undefined || own.uid === uidOf(record)) && !copy.suspect
        const empty = copy.store.createdEmpty === true || own?.state === "empty"
        if (inSync.length === 0) {
          // The only candidate. A copy that cannot prove anything must not serve (and then sync
          // its emptiness over every returning copy) once the volume has history: it waits.
          const history = record.replicas.some((r) => r.state !== "provisioned")
          // A copy promoted from an in-sync replica that vouches holds every acknowledged write
          // whatever its own record says: a new master that crashed while opening it leaves it
          // `incomplete` for a session that never acknowledged anything (found by the cluster
          // simulator, seed 83: the volume then waited for good).
          if (!complete && !(empty && !history) && !copy.recordedInSync) {
            publishThrottled(`refuse:${record.volume}`, "master-refused", `${me} does not serve ${record.volume}: its copy is ${own?.state ?? "without a record"} and no in-sync replica is up; the volume waits for a copy that can prove it holds every acknowledged write`, record.volume)
            return "wait" as const
          }
          return false
        }
        // A promoted replica's recent writes are known from its activity log; a master's own copy only if this process served it.
        const recentKnown = copy.replicaScope ? node.replicaActivity(record.volume) !== "all" : copy.servedHere || copy.store.createdEmpty === true
        // Step down only for a replica whose process has run since before this one started (its page
        // cache holds what it acknowledged; a re-registration after a lost lease does not count as a
        // start); after a restart of every node, one of them must serve. And only for one that still
        // vouches (its process not started again since it was recorded in sync: it may have lost
        // power too); else this copy, which held every acknowledged write, serves.
        const down = !complete || (!recentKnown && inSync.some((r) => (incarnations.get(r.node) ?? Infinity) < incarnation && vouches(r, incarnations)))
        // Not yet in the first lease TTL of this process: a node whose process died before this one
        // started still looks alive (and vouching) until its lease expires. Stepping down for it
        // dropped this copy, the only one left with every acknowledged write, and the dead
        // replica's node returned to serve a copy that had lost power (cluster simulator seed 439).
        if (down && viewReadMs - startedMs < leaseTtlMs) return "wait" as const
        return down
      })

    /** Gives the volume up: no master recorded, the master lease released, so the controller promotes an in-sync replica. */
    const stepDown = (record: VolumeRecord, revision: number, held: Versioned<MasterLease> | undefined) =>
      Effect.gen(function* () {
        const { unavailableReason: _dropped, ...rest } = record
        // It is dropped from the record like any lost master; placed again later, it is synced in full.
        // (Keeping it listed as a failed replica left hard volumes stuck syncing: cluster simulator seed 325.)
        const done = yield* control.transaction({
          compare: [{ key: keys.volume(record.volume), revision }],
          put: [{ key: keys.volume(record.volume), value: encode({ ...rest, master: undefined }) }],
          ...(held ? { delete: [keys.master(record.volume)] } : {}),
        })
        if (done.succeeded) publish("master-stepped-down", `${me} steps down as master of ${record.volume}: its copy cannot prove it holds every acknowledged write; an in-sync replica takes over`, record.volume)
      })

    /** Keeps an open master's links in line with its record, and the record with its links. */
    const reconcileLinks = (copy: Copy, role: MasterRole, record: VolumeRecord, nodes: ReadonlyMap<string, NodeRecord>) =>
      Effect.gen(function* () {
        const volume = role.volume!
        /** Runs `effect` in the master's scope unless one with the same key is still running. */
        const background = (key: string, effect: Effect.Effect<void, unknown>) =>
          Effect.suspend(() => {
            if (role.busy.has(key)) return Effect.void
            role.busy.add(key)
            const done = Effect.sync(() => void role.busy.delete(key))
            return Effect.asVoid(Effect.forkIn(Effect.ensuring(Effect.ignore(effect), done), role.scope))
          })
        for (const r of record.replicas) {
          const link = volume.links().find((l) => l.target.node === r.node)
          const target = targetOf(r.node, nodes)
          if (!link) {
            if (target) yield* background(`add:${r.node}`, volume.addReplica(target))
            continue
          }
          const state = link.state()
          // A link made while its node was not registered (placeholder address 0.0.0.0:0, see
          // openMaster) or before the node moved dials the old address forever: a revive would
          // never reach it. Drop it; the next tick adds it at the node's address (a full sync).
          // Found by the cluster simulator (seed 2: a replica wiped and away while its master opened).
          if (state === "failed" && target && (link.target.address.host !== target.address.host || link.target.address.port !== target.address.port)) {
            yield* volume.removeReplica(r.node)
            continue
          }
          if (state === "failed" && target && now() - (role.reviveAtMs.get(r.node) ?? -Infinity) >= 1000) {
            role.reviveAtMs.set(r.node, now())
            yield* background(`revive:${r.node}`, volume.reviveReplica(r.node))
          } else if (link.completed() && r.state !== "in-sync") {
            yield* background(`state:${r.node}`, markInSync(record.volume, record.epoch, r.node, () => link.completed(), link.incarnation()))
          } else if (state === "syncing" && (r.state === "provisioned" || r.state === "failed" || now() - role.progressAtMs >= 1000)) {
            const status = (yield* volume.status).replicas.find((x) => x.node === r.node)
            role.progressAtMs = now()
            yield* background(`state:${r.node}`, markReplica(record.volume, record.epoch, r.node, (x): ReplicaRecord => (link.state() === "syncing" ? { node: x.node, state: "syncing", bytesDone: status?.syncBytesDone ?? 0, bytesTotal: status?.syncBytesTotal ?? 0 } : x)))
          }
        }
        for (const link of volume.links()) {
          if (!record.replicas.some((r) => r.node === link.target.node)) yield* volume.removeReplica(link.target.node)
        }
      })

    const reconcileVolume = (record: VolumeRecord, revision: number, nodes: ReadonlyMap<string, NodeRecord>, leases: ReadonlyMap<string, Versioned<MasterLease>>) =>
      Effect.gen(function* () {
        const isMaster = record.master === me
        const isReplica = record.replicas.some((r) => r.node === me)
        // A master lease this node took from a stale view (it re-registered after a pause and read
        // itself master) goes once the record says otherwise: kept alive with the node's lease, it
        // stopped the recorded master from ever serving and the controller from promoting
        // (cluster simulator seed 451: the promoted master never served, a replica provisioned for good).
        const held = leases.get(record.volume)
        if (!isMaster && held && lease !== undefined && held.lease === lease) {
          yield* control.transaction({ compare: [{ key: keys.master(record.volume), revision: held.revision }], delete: [keys.master(record.volume)] })
          publish("master-lease-released", `${me} released the master lease of ${record.volume}: the record names ${record.master ?? "no node"} as master at epoch ${record.epoch}`, record.volume)
        }
        if (!isMaster && !isReplica) return yield* closeCopy(record.volume, copies.has(record.volume))
        const copy = yield* ensureCopy(record)
        if (!isMaster) {
          copy.recordedInSync = record.replicas.some((r) => r.node === me && r.state === "in-sync" && vouches(r, incarnations))
          if (copy.master) yield* closeMaster(copy, `the record names ${record.master ?? "no node"} as master at epoch ${record.epoch}`)
          if (!copy.replicaScope) {
            const scope = yield* Scope.fork(copy.scope)
            const hosted = yield* Effect.result(node.hostReplicaStore(record.volume, copy.store, uidOf(record)).pipe(Scope.provide(scope)))
            if (hosted._tag === "Failure") yield* closeScope(scope)
            else {
              copy.replicaScope = scope
              // Hosted as a replica, the copy is what its record says and a master's sync makes it;
              // it is in sync again only after that. A suspect mark from an earlier master role
              // kept it from ever serving again (found by the cluster simulator, seed 2099).
              copy.suspect = false
            }
          }
          return
        }
        if (copy.master && copy.master.epoch !== record.epoch) yield* closeMaster(copy, `epoch moved to ${record.epoch}`)
        if (copy.master) {
          if (copy.master.volume && !copy.master.volume.isFenced()) {
            // A volume update: the serving master applies the record's spec at once (failure mode, tolerance, compression).
            if (JSON.stringify(copy.master.volume.spec()) !== JSON.stringify(record.spec)) copy.master.volume.updateSpec(record.spec)
            yield* reconcileLinks(copy, copy.master, record, nodes)
          }
          else if (copy.master.volume?.isFenced()) {
            // A copy whose own write or fdatasync failed is suspect even if its record could not say so (a full disk).
            if (copy.master.volume.fencedReason() === "store-failed") copy.suspect = true
            yield* closeMaster(copy, "it was fenced")
          }
          return
        }
        if (!leaseValid() || lease === undefined) return
        if (held && held.lease !== lease) return // an older incarnation's or another node's lease must expire first
        const stepDownDecision = yield* shouldStepDown(copy, record)
        if (stepDownDecision === "wait") return
        if (stepDownDecision) return yield* stepDown(record, revision, held)
        if (!held || held.value.epoch !== record.epoch) {
          const taken = yield* control.transaction({
            compare: [{ key: keys.master(record.volume), revision: held?.revision ?? 0 }],
            put: [{ key: keys.master(record.volume), value: encode({ node: me, epoch: record.epoch }), lease }],
          })
          if (!taken.succeeded) return
        }
        yield* openMaster(copy, record, nodes)
      })

    let swept = false
    /** Alive nodes' process incarnations (records.ts `incarnation`: lower, running since earlier). */
    let incarnations = new Map<string, number | undefined>()
    /** When (monotonic) the agent's current view of the records began to be read. */
    let viewReadMs = -Infinity
    const agentTick = Effect.gen(function* () {
      viewReadMs = monotonicMs()
      const [volumes, nodeRows, leases] = yield* Effect.all([listVolumes, listNodes, listMasterLeases])
      const nodes = new Map(nodeRows.map((n) => [n.value.name, n.value]))
      incarnations = new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation]))
      if (!swept) {
        yield* sweepUnclaimed(volumes.map((v) => v.value))
        swept = true
      }
      for (const { value: record, revision } of volumes) {
        const result = yield* Effect.result(reconcileVolume(record, revision, nodes, leases))
        if (result._tag === "Failure") publish("agent-error", `${me}: ${record.volume}: ${String((result.failure as { message?: string }).message ?? result.failure)}`, record.volume)
      }
      const names = new Set(volumes.map((v) => v.value.volume))
      for (const name of [...copies.keys()]) if (!names.has(name)) yield* closeCopy(name, true)
    })

    const controllerTick = Effect.gen(function* () {
      if (lease === undefined) return
      const current = yield* control.get(keys.controller)
      if (!current) {
        const won = yield* control.transaction({ compare: [{ key: keys.controller, revision: 0 }], put: [{ key: keys.controller, value: encode({ node: me }), lease }] })
        controller = won.succeeded
        if (controller) publish("controller", `${me} is the controller`)
      } else controller = current.lease === lease
      if (!controller) return
      const [volumes, nodeRows, leases, configs] = yield* Effect.all([listVolumes, listNodes, listMasterLeases, listNodeConfigs])
      const randoms = yield* Effect.forEach(Array.from({ length: 16 }), () => Random.next)
      let drawn = 0
      const view = {
        nowMs: now(), graceMs, topology: topologyOf(configs),
        aliveNodes: new Set(nodeRows.map((n) => n.value.name)),
        incarnations: new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation])),
        masterLeased: new Set([...leases.keys()]),
        load: loadOf(volumes.map((v) => v.value)),
        random: () => randoms[drawn++ % randoms.length]!,
      }
      for (const { value: record, revision } of volumes) {
        const plan = planVolume(record, view)
        if (!plan) continue
        const done = yield* control.transaction({ compare: [{ key: keys.volume(record.volume), revision }], put: [{ key: keys.volume(record.volume), value: encode(plan.record) }] })
        if (done.succeeded) for (const message of plan.events) publish(message.startsWith("warning: ") ? "placement-warning" : "controller-action", message, record.volume)
      }
    })

    const loop = (name: string, tick: Effect.Effect<void, unknown>) =>
      Effect.forever(Effect.andThen(Effect.catchCause(tick, (cause) => Effect.sync(() => publish(`${name}-error`, `${me}: ${String(cause).slice(0, 300)}`))), Effect.sleep(tickMs)))
    yield* Effect.forkIn(loop("agent", agentTick.pipe(Effect.provide(context))), nodeScope)
    yield* Effect.forkIn(loop("controller", controllerTick.pipe(Effect.provide(context))), nodeScope)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* fenceAll(crashed ? "the node crashed" : "the node is stopping")
        if (lease !== undefined && !crashed) yield* Effect.ignore(control.revokeLease(lease))
        lease = undefined
      }))

    // ---- API
    const aliveSet = Effect.map(listNodes, (rows) => new Set(rows.map((r) => r.value.name)))

    const listRules = (namespace?: string) =>
      Effect.map(control.list(namespace ? `${keys.rules}${namespace}/` : keys.rules), (rows) => {
        const out: Rule[] = []
        for (const row of rows) {
          try {
            const rule = validateRule(JSON.parse(row.value))
            if (!("_tag" in rule)) out.push(rule)
          } catch {
            // a corrupt rule record is skipped
          }
        }
        return out
      })

    /**
     * A new volume's first epoch: above every epoch an earlier volume of the same name reached
     * (each of its epochs came from a change of the store, so none exceeds the store's revision).
     * A master of a deleted instance that has not closed yet (it learns at its next tick) then
     * serves another epoch than the one clients locate, and is refused by them, instead of
     * acknowledging writes into a copy about to be discarded. Found by the cluster simulator
     * (seed 49: a volume deleted and created again, both on the same master, within one tick).
     */
    const firstEpoch = Effect.map(control.transaction({ compare: [] }), (result) => result.revision + 1)

    const createVolume = (create: CreateVolumeOptions) =>
      Effect.gen(function* () {
        const bad = checkVolumeName(create.volume) ?? checkVolumeSize(create.volume, create.sizeBytes)
        if (bad) return yield* bad
        const namespace = create.volume.split("/")[0]!
        const rules = yield* listRules(namespace)
        const applied = applyRules(rules, namespace, create.labels ?? {})
        const spec = yield* parseLabels(applied.labels)
        const existing = yield* getVolume(create.volume)
        if (existing) return yield* new ClusterError({ reason: "exists", message: `volume ${create.volume} already exists` })
        const [volumes, alive, configs] = yield* Effect.all([listVolumes, aliveSet, listNodeConfigs])
        const randoms = yield* Effect.forEach(Array.from({ length: 16 }), () => Random.next)
        let drawn = 0
        const placement = placeVolume(create.volume, spec, [...alive].sort(), loadOf(volumes.map((v) => v.value)), () => randoms[drawn++ % randoms.length]!, topologyOf(configs))
        if (placement instanceof ClusterError) return yield* placement
        if (placement.warning !== undefined) publish("placement-warning", `warning: ${placement.warning}`, create.volume)
        const uid = (yield* Effect.forEach([0, 1, 2], () => Random.nextIntBetween(0, 0x7fffffff))).map((n) => n.toString(36)).join("")
        const record: VolumeRecord = {
          volume: create.volume, uid, sizeBytes: create.sizeBytes, labels: applied.labels, spec, createdAtMs: now(),
          epoch: yield* firstEpoch, master: placement.master, replicas: placement.replicas.map((n) => ({ node: n, state: "provisioned" as const })),
          rulesApplied: applied.applied,
        }
        const created = yield* control.transaction({ compare: [{ key: keys.volume(create.volume), revision: 0 }], put: [{ key: keys.volume(create.volume), value: encode(record) }] })
        if (!created.succeeded) return yield* new ClusterError({ reason: "exists", message: `volume ${create.volume} already exists` })
        publish("volume-created", `${create.volume} created: master ${placement.master}, replicas ${placement.replicas.join(", ") || "none"}`, create.volume)
        return volumeInfo(record, alive)
      })

    const inspectVolume = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        return volumeInfo(found.value, yield* aliveSet)
      })

    /**
     * A volume's labels changed at run time, validated as at creation. More replicas: the
     * controller places and syncs them (with progress); fewer: in-sync replicas are kept first. A
     * count the uncordoned nodes cannot hold is refused, naming what is allowed; nothing changes.
     */
    const changeVolumeLabels = (volume: string, change: VolumeLabelChange) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 10; attempt++) {
          const found = yield* getVolume(volume)
          if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
          const record = found.value
          const labels = Object.fromEntries(Object.entries({ ...record.labels, ...change.setLabels }).filter(([key]) => !(change.removeLabels ?? []).includes(key)))
          const spec = yield* parseLabels(labels)
          const [alive, configs] = yield* Effect.all([aliveSet, listNodeConfigs])
          const usable = [...alive].filter((n) => !configs.get(n)?.value.cordoned).length
          const held = new Set([record.master, ...record.replicas.map((r) => r.node)].filter((n) => n !== undefined)).size
          if (spec.replicas > record.spec.replicas && spec.replicas > Math.max(usable, held) - 1) {
            return yield* new ClusterError({ reason: "too-few-nodes", message: `cannot give ${volume} ${spec.replicas} replicas: only ${usable} uncordoned node${usable === 1 ? " is" : "s are"} up (allowed: at most ${Math.max(usable, held) - 1} replicas); nothing was changed` })
          }
          // Fewer replicas only while a master serves: it holds every acknowledged write. Without
          // one, a dropped replica may be the copy a promotion needs (and its node deletes copies
          // that no record claims).
          const masterServes = record.master !== undefined && alive.has(record.master) && record.unavailableReason === undefined
          if (spec.replicas < record.replicas.length && !masterServes) {
            return yield* new ClusterError({ reason: "no-master", message: `cannot drop replicas of ${volume} now: its master ${record.master ?? "(none)"} is not serving, and a replica may be the copy a promotion needs; try again once it serves (replivol volume inspect ${volume}); nothing was changed` })
          }
          const replicas = replicasKept(record.replicas, spec.replicas)
          const next: VolumeRecord = { ...record, labels, spec, replicas }
          const done = yield* control.transaction({ compare: [{ key: keys.volume(volume), revision: found.revision }], put: [{ key: keys.volume(volume), value: encode(next) }] })
          if (!done.succeeded) continue
          const dropped = record.replicas.filter((r) => !replicas.includes(r)).map((r) => r.node)
          publish("volume-updated", `${volume} updated: replicas ${record.spec.replicas} → ${spec.replicas}, failure mode ${spec.failureMode} (tolerance ${spec.failureTolerance})${dropped.length > 0 ? `, replicas dropped from ${dropped.join(", ")}` : ""}`, volume)
          return volumeInfo(next, alive)
        }
        return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} kept changing while updating; try again` })
      })

    const waitHealthy = (volume: string, timeoutMs: number) =>
      Effect.gen(function* () {
        const deadline = now() + timeoutMs
        for (;;) {
          const info = yield* inspectVolume(volume)
          if (info.health === "healthy") return info
          if (now() >= deadline) return yield* new ClusterError({ reason: "timeout", message: `volume ${volume} is still ${info.health} after ${timeoutMs} ms: ${info.reason}` })
          yield* Effect.sleep(Math.min(100, tickMs))
        }
      })

    const openVolume = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        const client = makeVolumeClient({
          volume, sizeBytes: found.value.sizeBytes, clientName: me, pauseMaxMs,
          requestTimeoutMs: ackTimeoutMs * 2 + 1000,
          locate: locateMaster(volume).pipe(Effect.provide(context)),
          local: (location) => {
            const master = location.node === me ? copies.get(volume)?.master?.volume : options.inProcessShortcut === false ? undefined : inProcessMaster(location, volume)
            // Only the master of the located epoch (see firstEpoch): an older instance's is not this volume.
            return master?.epoch === location.epoch ? master : undefined
          },
          connect: (target) => node.connect(target),
          onRetry: (why) => publish("client-retry", `${me}: IO on ${volume} waits: ${why}`, volume),
        })
        yield* Effect.addFinalizer(() => client.close)
        return client
      })

    const deleteVolume = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        const done = yield* control.transaction({ compare: [{ key: keys.volume(volume), revision: found.revision }], delete: [keys.volume(volume), keys.master(volume)] })
        if (!done.succeeded) return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} changed while deleting; try again` })
        publish("volume-deleted", `${volume} deleted`, volume)
      })

    const listNodesInfo = Effect.gen(function* () {
      const [rows, configs] = yield* Effect.all([listNodes, listNodeConfigs])
      const ctl = yield* control.get(keys.controller)
      const controllerNode = ctl ? (JSON.parse(ctl.value) as { node?: string }).node : undefined
      return rows.map((r): NodeInfo => {
        const config = configs.get(r.value.name)?.value
        return { ...r.value, alive: true, controller: r.value.name === controllerNode, labels: config?.labels ?? {}, cordoned: config?.cordoned ?? false }
      })
    })

    /** Compare-and-swap on the node's config; a node that never registered (and has no config) is unknown. */
    function configureNode(name: string, change: NodeConfigChange) {
      return Effect.gen(function* () {
        for (let attempt = 0; attempt < 10; attempt++) {
          const row = yield* control.get(keys.nodeConfig(name))
          const decoded = row ? decodeNodeConfig(row.key, row.value) : undefined
          if (decoded instanceof ClusterError) return yield* decoded
          if (!decoded && !(yield* control.get(keys.node(name)))) {
            return yield* new ClusterError({ reason: "not-found", message: `node ${name} is not known: it has never registered with this cluster (see replivol node ls)` })
          }
          const current: NodeConfig = decoded ?? { name, labels: {}, cordoned: false }
          const bad = nodeLabelError(change, current)
          if (bad) return yield* bad
          const labels = Object.fromEntries(Object.entries({ ...current.labels, ...change.setLabels }).filter(([key]) => !(change.removeLabels ?? []).includes(key)))
          const next: NodeConfig = { name, labels, cordoned: change.cordoned ?? current.cordoned }
          const done = yield* control.transaction({ compare: [{ key: keys.nodeConfig(name), revision: row?.revision ?? 0 }], put: [{ key: keys.nodeConfig(name), value: encode(next) }] })
          if (done.succeeded) {
            if (next.cordoned !== current.cordoned) publish(next.cordoned ? "node-cordoned" : "node-uncordoned", `${name} ${next.cordoned ? "is cordoned: no new copy is placed on it and no replica on it is promoted" : "is uncordoned"}`)
            return next
          }
        }
        return yield* new ClusterError({ reason: "conflict", message: `node ${name}'s config kept changing; try again` })
      })
    }

    const putRule = (input: unknown) =>
      Effect.gen(function* () {
        const rule = validateRule(input)
        if ("_tag" in rule) return yield* rule
        yield* control.put(keys.rule(rule.namespace, rule.name), encode(rule))
        publish("rule-saved", `rule ${rule.namespace}/${rule.name} saved`)
        return rule
      })

    const deleteRule = (namespace: string, name: string) =>
      Effect.gen(function* () {
        const existing = yield* control.get(keys.rule(namespace, name))
        if (!existing) return yield* new ClusterError({ reason: "not-found", message: `rule ${namespace}/${name} does not exist` })
        yield* control.delete(keys.rule(namespace, name))
      })

    /** The serving master of `volume` reachable from this process, or the error saying where it is. */
    const verifyingMaster = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        const record = found.value
        const notServing = () => new ClusterError({ reason: "no-master", message: `volume ${volume} has no serving master right now (${record.master === undefined ? "none recorded" : `${record.master} at epoch ${record.epoch}`}); try again once it is healthy` })
        if (record.master === undefined) return yield* notServing()
        const local = record.master === me ? copies.get(volume)?.master?.volume : undefined
        if (local) return local.isFenced() || local.epoch !== record.epoch ? yield* notServing() : local
        const location = yield* locateMaster(volume)
        const inProcess = location && location.epoch === record.epoch ? inProcessMaster(location, volume) : undefined
        if (inProcess) return inProcess
        if (record.master === me) return yield* notServing()
        const masterNode = (yield* listNodes).find((n) => n.value.name === record.master)?.value
        return yield* new ClusterError({
          reason: "remote-master",
          message: `volume ${volume} is served by ${record.master}, in another process: run the verify against that node's admin API${masterNode?.api ? ` (replivol --api ${masterNode.api} volume verify ${volume})` : " (start it with --api)"}`,
        })
      })

    const verifyStatus = (volume: string) =>
      Effect.flatMap(verifyingMaster(volume), (master) => {
        const report = master.lastVerify()
        return report ? Effect.succeed(report) : Effect.fail(new ClusterError({ reason: "not-found", message: `no verify of ${volume} ran since its master opened (epoch ${master.epoch}): start one with replivol volume verify ${volume}` }))
      })

    const api = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(context)) as Effect.Effect<A, E, Exclude<R, ControlStore | Transport | Stores>>

    return {
      name: me,
      node,
      createVolume: (o) => api(createVolume(o)),
      deleteVolume: (v) => api(deleteVolume(v)),
      listVolumes: api(Effect.gen(function* () {
        const [volumes, alive] = yield* Effect.all([listVolumes, aliveSet])
        return volumes.map((v) => volumeInfo(v.value, alive))
      })),
      inspectVolume: (v) => api(inspectVolume(v)),
      updateVolume: (v, change) => api(changeVolumeLabels(v, change)),
      waitHealthy: (v, t) => api(waitHealthy(v, t)),
      openVolume: (v) => api(openVolume(v)),
      listNodes: api(listNodesInfo),
      configureNode: (name, change) => api(configureNode(name, change)),
      putRule,
      deleteRule,
      listRules: (ns) => listRules(ns),
      isController: () => controller,
      recentEvents: () => [...events],
      events: Stream.fromPubSub(eventHub),
      verifyVolume: (v, o) => api(Effect.flatMap(verifyingMaster(v), (master) => master.verify(o))),
      startVerify: (v, o) => api(Effect.flatMap(verifyingMaster(v), (master) => master.startVerify(o))),
      verifyStatus: (v) => api(verifyStatus(v)),
      crash: () => void (crashed = true),
    } satisfies ClusterNode
  })
