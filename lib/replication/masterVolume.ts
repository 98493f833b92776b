/**
 * The master copy of a volume: local writes fanned out to every replica, completed by acks.
 *
 * Write path (one network round trip): under the order lock, the chunk is queued on every replica
 * link (sent at once) and its local store write started in the same step, so every copy sees
 * overlapping writes in one order and the replicas apply it while the master writes its own.
 * The lock is released before waiting; many writes are in flight at once, bounded by
 * `inflightWritesPerReplicaMax`. A write completes when the master and every replica that was
 * in sync when it was queued acknowledged it, or — when such a replica failed meanwhile — once
 * that failure is recorded (`onReplicaFailed`, so a later promotion never picks a replica that
 * misses an acknowledged write) and the failure mode still allows IO.
 *
 * Resync: a syncing replica receives live writes, and the copy of old data goes through the same
 * ordered stream — each chunk is read from the master's store and queued under the order lock,
 * so it can never overwrite a newer write. The copy walks the link's dirty bitmap (all regions
 * for a full sync; the regions written while it was away for a delta). It is throttled to a share
 * of the time while foreground IO is active. The replica becomes in-sync only after the copy and
 * every write queued since it began are acknowledged (docs/design.md, invariant 3).
 *
 * After a failover the new master first reconciles the activity logs (the regions of the most
 * recent writes of every copy, DRBD style) so copies that received different in-flight writes of
 * the dead master converge, and only then serves IO.
 *
 * Encryption at rest (`cipher`, for a spec with `encryption`): the master encrypts before its own
 * store write and the fan-out, and decrypts what it reads, so every copy — its own and every
 * replica's — holds only ciphertext, and resync, delta catch-up and verify move ciphertext
 * unchanged. A write that does not cover whole data units (4 KiB) reads, merges and re-encrypts
 * its edge units under the order lock, so it is ordered against every other write to them.
 *
 * IO is refused with `VolumeUnavailable` when the failure mode says so, when the master's lease
 * is not valid (`leaseValid`), or when a replica reported a newer epoch (docs/design.md, invariant 2).
 */
import { Clock, Deferred, Effect, Fiber, Random, Scope, Semaphore } from "effect"
import { assert } from "../core/assert.ts"
import { defaults, dirtyRegionBytesFor, inflightWritesPerReplicaMax, sectorBytes, writeChunkBytesMax } from "../core/limits.ts"
import { DirtyBitmap } from "../store/dirtyBitmap.ts"
import { StoreError, type BlockStore, type StoreMeta } from "../store/BlockStore.ts"
import { assessVolume, type Assessment, type Health } from "../volume/health.ts"
import type { VolumeSpec } from "../volume/labels.ts"
import { MessageType } from "../wire/index.ts"
import type { Metrics } from "../core/metrics.ts"
import type { Connection } from "../net/connection.ts"
import { checkRange, ReplicationError, VolumeIoError, VolumeUnavailable, type OutOfRange, type VolumeError } from "./errors.ts"
import { checkVerifyOptions, newVerifyReport, runVerify, type VerifyContext, type VerifyOptions, type VerifyReport } from "./verify.ts"
import { metricNames } from "../core/metricFamilies.ts"
import { encodeJsonBody } from "../wire/index.ts"
import { volumeIdOf } from "./protocol.ts"
import { decideSync, type Lineage, type SyncDecision } from "./copyIdentity.ts"
import { checkResize } from "./resize.ts"
import { unitSpan, type VolumeCipher } from "../crypt/volumeCipher.ts"
import { makeReplicaLink, LinkFailure, pendingFramesPerReplicaMax, type ReplicaLink, type ReplicaState, type ReplicaTarget } from "./replicaLink.ts"

export interface ReplicaStatus {
  readonly node: string
  readonly address: string
  readonly state: ReplicaState
  readonly reason: string | undefined
  readonly dirtyBytes: number
  /** While syncing: bytes copied so far and in all. */
  readonly syncBytesDone: number
  readonly syncBytesTotal: number
}

export interface VolumeStatus {
  readonly volume: string
  readonly sizeBytes: number
  readonly master: string
  readonly epoch: number
  readonly health: Health
  readonly usable: boolean
  readonly reason: string
  readonly replicas: ReadonlyArray<ReplicaStatus>
  readonly spec: VolumeSpec
}

export interface VolumeEvent {
  readonly volume: string
  readonly atMs: number
  readonly kind: "replica-failed" | "superseded" | "sync-started" | "sync-progress" | "sync-done" | "replica-added" | "replica-removed" | "verify-started" | "verify-progress" | "verify-done" | "resized"
  readonly node?: string
  readonly message: string
}

/** How the master should treat one replica when it opens or adds it. */
export interface ReplicaPlan {
  readonly target: ReplicaTarget
  /** `in-sync`: it was in sync with the previous master (reconcile activity, then serve); else a full sync. */
  readonly recorded: "in-sync" | "needs-sync"
}

export interface MasterVolumeOptions {
  readonly volume: string
  /** The volume's unique id (default: derived from the name, for volumes opened without a cluster). */
  readonly uid?: string
  /** The session the previously in-sync replicas followed (this copy's own record); without it they are synced in full. */
  readonly lineage?: Lineage
  readonly spec: VolumeSpec
  readonly epoch: number
  readonly store: BlockStore
  /**
   * The size IO may address (default: the store's). Smaller only for a copy that grew in a resize
   * not recorded yet (a crash mid-resize): `resize` to the store's size completes it.
   */
  readonly visibleSizeBytes?: number
  readonly nodeName: string
  readonly replicas: ReadonlyArray<ReplicaPlan>
  readonly connect: (target: ReplicaTarget) => Effect.Effect<Connection, unknown>
  readonly ackTimeoutMs?: number
  /** The local fdatasync and identity record writes must finish within this (default `defaults.diskTimeoutMs`), else the disk counts as failed. */
  readonly diskTimeoutMs?: number
  readonly reconnectBaseMs?: number
  readonly reconnectCeilingMs?: number
  readonly dirtyRegionBytes?: number
  /** Share of time a resync may use while foreground IO is active (0 < share ≤ 1). */
  readonly resyncShare?: number
  /** Ranges this node's own copy wrote last (its activity log when it was a replica), or "all". */
  readonly ownActivity?: ReadonlyArray<readonly [number, number]> | "all"
  /**
   * The previous session ended in a planned hand-over to this copy that drained every write
   * (cluster/handover.ts): each write was acknowledged by every copy in sync with it, so the copies
   * that follow that session and know their recent writes hold the same bytes. Their activity logs
   * are not reconciled (a delta of nothing); the rest is decided as after any failover.
   */
  readonly previousSessionDrained?: boolean
  /** IO is served only while this says the master's lease is valid. */
  readonly leaseValid?: () => boolean
  /** Records a replica's failure durably; writes that depended on it wait for this. */
  readonly onReplicaFailed?: (node: string, failure: LinkFailure) => Effect.Effect<void, unknown>
  /**
   * Records a replica that became in sync; `stillInSync` is checked when the record is changed (a
   * late update never overwrites a failure). `incarnation`: the replica's process that answered the
   * connection this sync completed on (`ReplicaLink.incarnation`; undefined when it did not tell).
   */
  readonly onReplicaInSync?: (node: string, stillInSync: () => boolean, incarnation: number | undefined) => Effect.Effect<void, unknown>
  /** Records, before this master serves, that a replica recorded in sync is syncing again (its copy could not prove a delta suffices). */
  readonly onReplicaSyncing?: (node: string) => Effect.Effect<void, unknown>
  readonly onEvent?: (event: VolumeEvent) => void
  readonly metrics?: Metrics
  /** Told of every write this master acknowledged (for checkers and metrics). */
  readonly onWriteAcknowledged?: (offset: number, length: number) => void
  /** The volume's cipher: required exactly when `spec.encryption` (lib/crypt/keys.ts unwraps it). */
  readonly cipher?: VolumeCipher
}

export interface MasterVolume {
  readonly name: string
  /** The size IO may address now (it changes only when a `resize` completed). */
  readonly sizeBytes: number
  readonly epoch: number
  /** This master session (fresh at every open): the lineage its replicas follow. */
  readonly lineage: Lineage
  /** Buffer rule: `data` belongs to the library until the write settles (resolves or rejects); reuse it only after that. */
  readonly write: (offset: number, data: Uint8Array) => Effect.Effect<void, VolumeError>
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, VolumeError>
  readonly flush: Effect.Effect<void, VolumeError>
  readonly status: Effect.Effect<VolumeStatus>
  /** Stops serving IO at once (lease lost, superseded, closing); every later IO fails. */
  readonly fence: (reason: VolumeUnavailable["reason"], message: string) => void
  readonly isFenced: () => boolean
  /** Why IO stopped (undefined while serving); `store-failed`: this copy no longer proves what it holds. */
  readonly fencedReason: () => VolumeUnavailable["reason"] | undefined
  /**
   * Waits until no write or flush is in flight (each acknowledged by every replica that was in
   * sync, or its failure recorded), at most `timeoutMs`; true when it got there. After `fence`, a
   * planned hand-over drains this way before the new master starts (cluster/handover.ts).
   */
  readonly drain: (timeoutMs: number) => Effect.Effect<boolean>
  /** A local write or fdatasync failed in this session (even after a fence): the copy no longer proves what it holds. */
  readonly copyDamaged: () => boolean
  /** Adds a replica (a new placement) and syncs it in full in the background. */
  readonly addReplica: (target: ReplicaTarget) => Effect.Effect<void>
  /** The volume's spec as this master applies it now. */
  readonly spec: () => VolumeSpec
  /** Applies a changed spec at once (volume update): failure mode and tolerance decide the next IO, compression the next frames. */
  readonly updateSpec: (next: VolumeSpec) => void
  /** Drops a replica (replaced, or the volume shrank its replica count). */
  readonly removeReplica: (node: string) => Effect.Effect<void>
  /** Reconnects a failed replica whose node came back and catches it up by delta (its dirty regions). */
  readonly reviveReplica: (node: string) => Effect.Effect<void>
  readonly links: () => ReadonlyArray<ReplicaLink>
  /** Waits until every running resync finished (successfully or not). */
  readonly awaitSyncs: Effect.Effect<void>
  /**
   * Compares every in-sync replica with this master by region checksums while IO goes on
   * (verify.ts), throttled like a resync; with `repair`, sends the differing regions again and
   * compares them once more. One verify at a time per volume (`busy` otherwise).
   */
  readonly verify: (options?: VerifyOptions) => Effect.Effect<VerifyReport, VolumeError | ReplicationError>
  /** Starts `verify` in the background and returns its report, which shows its progress. */
  readonly startVerify: (options?: VerifyOptions) => Effect.Effect<VerifyReport, ReplicationError>
  /** The running or last verify of this master session. */
  readonly lastVerify: () => VerifyReport | undefined
  /**
   * Grows the volume online to `sizeBytes` (resize.ts says which sizes): this master's copy first
   * (durably), then every in-sync and syncing replica through the ordered
   * stream (a Resize frame); a failed or unreachable replica is told at its next Open. Once every
   * replica that was in sync acknowledged (or its failure is recorded), `commit` runs (a cluster
   * records the new size there) and only then does IO reach the new bytes: a failure before that
   * leaves the volume at its old size, the copies grown past it holding zeros there. IO goes on
   * throughout; idempotent (a second call re-sends the Resize frames); one at a time.
   */
  readonly resize: <E = never, R = never>(sizeBytes: number, commit?: Effect.Effect<void, E, R>) => Effect.Effect<void, VolumeError | ReplicationError | E, R>
  /** The size this master's own copy has (at least `sizeBytes`; more while a resize is not committed). */
  readonly capacityBytes: () => number
  readonly close: Effect.Effect<void>
}

const storeFailure = (volume: string) => (error: StoreError): VolumeIoError =>
  new VolumeIoError({ volume, reason: error.reason === "no-space" ? "no-space" : error.reason === "closed" ? "closed" : "io", message: `volume ${volume}: the master's store failed: ${error.message}`, cause: error })

const isAllZero = (bytes: Uint8Array): boolean => {
  const words = bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : undefined
  if (words) {
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false
    return true
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

/** The lineage this copy's record proves (complete copies only): what its in-sync replicas followed. */
/** The master's own copy's record, read once at open: undefined when it cannot be read. */
const readOwnMeta = (store: BlockStore): Effect.Effect<{ readonly meta: StoreMeta | undefined } | undefined> =>
  store.readMeta.pipe(Effect.map((meta) => ({ meta })), Effect.catch(() => Effect.succeed(undefined)))

/** The lineage this copy followed when it was complete (what previously in-sync replicas follow too). */
const lineageOf = (own: { readonly meta: StoreMeta | undefined } | undefined): Lineage | undefined => {
  const meta = own?.meta
  return meta?.uid !== undefined && meta.generation !== undefined && meta.state === "complete" ? { uid: meta.uid, epoch: meta.epoch, generation: meta.generation } : undefined
}

/** The master's own copy holds only zeros: created by this open with no record, or recorded empty. */
const copyEmpty = (store: BlockStore, own: { readonly meta: StoreMeta | undefined } | undefined): boolean =>
  own === undefined ? false : own.meta === undefined ? store.createdEmpty === true : own.meta.state === "empty"

/** A fresh master session id: the epoch and 62 random bits (Effect's Random: seeded in the simulator). */
const newGeneration = (epoch: number): Effect.Effect<string> =>
  Effect.map(Effect.all([Random.nextIntBetween(0, 0x7fffffff), Random.nextIntBetween(0, 0x7fffffff)]), ([a, b]) => `${epoch}-${a.toString(36)}-${b.toString(36)}`)

/** Writes the master's own identity record (durable, atomic). */
const writeOwnRecord = (store: BlockStore, volume: string, record: Lineage & { readonly state: "complete" | "incomplete" }) =>
  Effect.flatMap(Clock.currentTimeMillis, (updatedAtMs) =>
    store.writeMeta({ volume, sizeBytes: store.sizeBytes, epoch: record.epoch, role: "master", state: record.state, updatedAtMs, uid: record.uid, generation: record.generation }))

/** Whether the links compress frames: not when asked not to, and never ciphertext (it does not compress; lz4 would only cost CPU). */
const compresses = (spec: VolumeSpec): boolean => !spec.nocompress && spec.encryption !== true

/** Sync chunks in flight per replica during a resync. */
export const syncWindowChunks = 4

/**
 * Frames a syncing link may fall behind before writes wait for it too (enqueueOnLinks): half its
 * limit, so the most writes in flight (`inflightWritesPerReplicaMax`) and a sync window on top
 * never reach the limit that fails it as overloaded.
 */
export const syncingBacklogFrames = pendingFramesPerReplicaMax / 2
assert(syncingBacklogFrames + inflightWritesPerReplicaMax + syncWindowChunks < pendingFramesPerReplicaMax, "a syncing link slowed at its backlog never overflows")
/** Longest pause the resync throttle takes between chunks while foreground IO is active. */
export const resyncPauseMaxMs = 50

export const openMasterVolume = (options: MasterVolumeOptions): Effect.Effect<MasterVolume, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { volume, store, epoch, cipher } = options
    assert((options.spec.encryption === true) === (cipher !== undefined), "an encrypted volume is opened with its cipher, a plain one without")
    // Changed at run time by `updateSpec` (volume update): failure mode, tolerance, replica count, compression.
    let spec = options.spec
    /** The replica count the failure mode counts (below `spec.replicas` while replicas added by an update sync). */
    let countedReplicas = spec.replicas
    // The store's size is the capacity (grown first by a resize); IO addresses only `visibleBytes`.
    let visibleBytes = options.visibleSizeBytes ?? store.sizeBytes
    assert(visibleBytes <= store.sizeBytes, `the visible size ${visibleBytes} is inside the copy of ${store.sizeBytes} bytes`)
    const sizeBytes = store.sizeBytes
    const volumeId = volumeIdOf(volume)
    const uid = options.uid ?? `name:${volume}`
    // The lineage the previously in-sync replicas followed: this copy's own record, read before it is replaced.
    const own = yield* readOwnMeta(store)
    const previousLineage = lineageOf(own)
    // A master copy that starts empty (a new volume) knows its non-zero regions: those it wrote.
    // An empty replica then needs only those, without reading the rest of the volume.
    const writtenSinceEmpty = copyEmpty(store, own) ? new DirtyBitmap(sizeBytes, dirtyRegionBytesFor(sizeBytes, options.dirtyRegionBytes ?? defaults.dirtyRegionBytes)) : undefined
    const lineage: Lineage = { uid, epoch, generation: yield* newGeneration(epoch) }
    const ackTimeoutMs = options.ackTimeoutMs ?? defaults.ackTimeoutMs
    const diskTimeoutMs = options.diskTimeoutMs ?? defaults.diskTimeoutMs
    const resyncShare = options.resyncShare ?? 0.5
    assert(resyncShare > 0 && resyncShare <= 1, "resyncShare is in (0, 1]")
    const orderLock = yield* Semaphore.make(1)
    const inflight = yield* Semaphore.make(inflightWritesPerReplicaMax)
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    let fenced: VolumeUnavailable | undefined
    let lastForegroundMs = -Infinity
    const emit = (kind: VolumeEvent["kind"], message: string, node?: string) =>
      options.onEvent?.({ volume, atMs: clock.currentTimeMillisUnsafe(), kind, message, ...(node ? { node } : {}) })

    const links: ReplicaLink[] = []
    const failurePersisted = new Map<ReplicaLink, Deferred.Deferred<void>>()
    const syncProgress = new Map<ReplicaLink, { done: number; total: number }>()
    const syncFibers = new Map<ReplicaLink, Fiber.Fiber<void>>()
    const startups: Array<Fiber.Fiber<void>> = []

    /**
     * Records a replica's failure before any write is acknowledged without it. Not once the
     * master's own write or fdatasync failed (`damaged`): it is fenced and acknowledges nothing more
     * (`checkUsable` after every wait), and its copy, not the replica's, is the one that may lack
     * acknowledged writes; a replica it called failed was then neither promoted nor stepped down
     * for. The cluster simulator found it (sweep seed 7309: the master's fdatasync failed and
     * dropped its page cache, its replica crashed a moment later and was recorded failed, and the
     * master served after the grace period, syncing its copy over the one holding every write).
     * A master fenced for a hand-over still records (handover.ts trusts its record of the drain).
     */
    const persistFailure = (link: ReplicaLink, failure: LinkFailure) => {
      const persisted = Deferred.makeUnsafe<void>()
      failurePersisted.set(link, persisted)
      const record = damaged ? Effect.void : options.onReplicaFailed
        ? options.onReplicaFailed(link.target.node, failure).pipe(
            Effect.retry({ times: 5 }),
            Effect.catch(() => Effect.sync(() => fence("not-master", `volume ${volume}: could not record that replica ${link.target.node} failed; refusing IO rather than risk losing a write`))),
          )
        : Effect.void
      Effect.runForkWith(fiberContext)(Effect.ensuring(record, Deferred.succeed(persisted, undefined)))
    }

    const makeLink = (target: ReplicaTarget) =>
      makeReplicaLink({
        target, volume, volumeId, sizeBytes: store.sizeBytes, epoch, uid, generation: lineage.generation, masterName: options.nodeName, compress: compresses(spec), ackTimeoutMs,
        reconnectBaseMs: options.reconnectBaseMs ?? defaults.reconnectBaseMs,
        reconnectCeilingMs: options.reconnectCeilingMs ?? defaults.reconnectCeilingMs,
        dirtyRegionBytes: options.dirtyRegionBytes ?? defaults.dirtyRegionBytes,
        connect: options.connect(target),
        ...(options.metrics ? { metrics: options.metrics } : {}),
        onFailed: (failure: LinkFailure) => {
          const link = links.find((l) => l.target.node === target.node)
          if (failure.reason === "stale-epoch") fence("superseded", `volume ${volume}: a newer master exists (${failure.message}); this master stops serving IO`)
          if (link && failure.reason !== "closed") persistFailure(link, failure)
          emit("replica-failed", failure.message, target.node)
        },
      }).pipe(Scope.provide(scope))

    const fiberContext = yield* Effect.context<never>()

    const assess = (): Assessment => {
      let inSync = 0
      let failed = 0
      for (const link of links) {
        if (link.inSync()) inSync++
        else if (link.state() === "failed") failed++
      }
      // A count raised at run time is counted once the added replicas are in sync: IO goes on while they sync.
      if (countedReplicas < spec.replicas && inSync >= spec.replicas) countedReplicas = spec.replicas
      const counted = countedReplicas === spec.replicas ? spec : { ...spec, replicas: countedReplicas, failureTolerance: Math.min(spec.failureTolerance, countedReplicas) }
      // The counted slots take in-sync links first, then failures (a missing link is one), then syncing ones.
      const missing = Math.max(0, spec.replicas - links.length)
      const inSyncCounted = Math.min(inSync, counted.replicas)
      const failedCounted = Math.min(failed + missing, counted.replicas - inSyncCounted)
      return assessVolume(counted, { inSync: inSyncCounted, syncing: counted.replicas - inSyncCounted - failedCounted, failed: failedCounted })
    }

    const unavailable = (assessment: Assessment) =>
      new VolumeUnavailable({
        volume, health: assessment.health,
        reason: spec.failureMode === "hard" ? "replicas-below-requested" : "tolerance-exceeded",
        message: `volume ${volume} is unavailable: ${assessment.reason}`,
      })

    /** This master may act for the volume: not fenced, its lease confirmed (the failure mode aside). */
    const checkServing: Effect.Effect<void, VolumeUnavailable> = Effect.suspend(() => {
      if (fenced) return Effect.fail(fenced)
      if (options.leaseValid && !options.leaseValid()) {
        return Effect.fail(new VolumeUnavailable({ volume, reason: "not-master", health: "unavailable", message: `volume ${volume}: the master ${options.nodeName} cannot confirm its lease; IO waits for the lease or a new master` }))
      }
      return Effect.void
    })

    const checkUsable: Effect.Effect<void, VolumeUnavailable> = Effect.suspend(() => {
      if (fenced) return Effect.fail(fenced)
      if (options.leaseValid && !options.leaseValid()) return checkServing
      const assessment = assess()
      return assessment.usable ? Effect.void : Effect.fail(unavailable(assessment))
    })

    function fence(reason: VolumeUnavailable["reason"], message: string) {
      if (fenced) return
      fenced = new VolumeUnavailable({ volume, reason, health: "unavailable", message })
      emit("superseded", message)
    }

    /**
     * What a chunk waits for on one link: its ack from an in-sync replica, or — for a link that
     * failed and whose failure is not recorded yet — that record. Until it is written the control
     * store still calls the replica in sync and a promotion may pick it, so a write done without
     * it must not be acknowledged before (found by the cluster simulator, seed 127: a write issued
     * after the replica's ack timeout, acknowledged while the record of the failure waited on a slow
     * control store; the master's node was lost and the replica promoted without it).
     */
    type Wait =
      | { readonly link: ReplicaLink; readonly done: Deferred.Deferred<void, LinkFailure> }
      | { readonly link: ReplicaLink; readonly unrecorded: Deferred.Deferred<void> }
      /** The master's own store write, still running (on the thread pool). */
      | { readonly local: Fiber.Fiber<void, StoreError> }

    /** Every in-flight permit taken at once: no write or flush is between its start and its settlement. */
    const drain = (timeoutMs: number) =>
      inflight.withPermits(inflightWritesPerReplicaMax)(Effect.succeed(true)).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.succeed(false) }))

    /**
     * A failed local write may have changed part of its range, a failed fdatasync may have lost
     * what the page cache held: this copy no longer matches its replicas. The master records its
     * copy incomplete (best effort) and fences itself; the node steps down or reopens it, syncing
     * the replicas from a copy that can prove what it holds.
     */
    let damaged = false
    const storeFailed = (what: string) => (error: StoreError) =>
      Effect.gen(function* () {
        damaged = true
        fence("store-failed", `volume ${volume}: the master's ${what} failed (${error.message}); this master stops serving IO`)
        yield* Effect.ignore(withinDiskTimeout("recording the copy incomplete", writeOwnRecord(store, volume, { ...lineage, state: "incomplete" })))
        return yield* Effect.fail(storeFailure(volume)(error))
      })

    /**
     * Bounds a local disk operation by the disk timeout. A hung disk must not hang the master for
     * good: past the timeout the operation counts as failed (the fiber running it is left to
     * finish or hang on its own — an fdatasync in the kernel cannot be called back).
     */
    const withinDiskTimeout = <A>(what: string, operation: Effect.Effect<A, StoreError>) =>
      Effect.flatMap(Effect.forkDetach(operation), (fiber) =>
        Fiber.join(fiber).pipe(Effect.timeoutOrElse({
          duration: diskTimeoutMs,
          orElse: () => Effect.fail(new StoreError({ reason: "io", path: undefined, message: `${what} did not finish within ${diskTimeoutMs} ms (a hung disk?)` })),
        })))

    /**
     * Writes one chunk locally and queues it on every link, atomically with respect to other
     * chunks. `prepare`, when given, makes the chunk's bytes under the order lock (an encrypted
     * write's read-modify-write of its edge units: no other write to them can come between).
     */
    const queueChunk = (type: MessageType, offset: number, chunk: Uint8Array, prepare?: Effect.Effect<Uint8Array, VolumeError>) =>
      // Uninterruptible: a chunk queued on the links is written locally too (or its write fails the master).
      orderLock.withPermits(1)(Effect.uninterruptible(Effect.gen(function* () {
        yield* checkUsable
        const data = prepare ? yield* prepare : chunk
        // The links first: the replicas receive and apply the chunk while the master writes its own copy.
        const waits = enqueueOnLinks(type, offset, data)
        if (type !== MessageType.Write) return waits
        writtenSinceEmpty?.mark(offset, data.length)
        // Started here, in order with every other chunk (the store orders overlapping writes by
        // their start); one that goes to the thread pool is waited for outside the order lock.
        const local = yield* Effect.forkChild(store.write(offset, data), { startImmediately: true })
        const exit = local.pollUnsafe()
        if (exit === undefined) return [...waits, { local }]
        return yield* Effect.suspend(() => exit).pipe(
          Effect.catch(storeFailed("write")),
          // Failed: the caller may reuse its buffer at once, the links keep their own copies.
          Effect.tapError(() => Effect.sync(() => adoptBodies(waits))),
          Effect.as(waits),
        )
      })))

    /**
     * Queues a frame on every link; what the chunk waits for on each (see Wait). A chunk waits for
     * an in-sync link's ack, and for a syncing link's once that link is `syncingBacklogFrames`
     * behind: writers then go at the pace of the replica being synced instead of outrunning it
     * until it is failed as overloaded (and revived, and overloaded again: a resync under
     * sustained writes at queue depth 32 never ended; test/unit/replication/resyncUnderLoad.test.ts).
     */
    const enqueueOnLinks = (type: MessageType, offset: number, data: Uint8Array): Wait[] => {
      const waits: Wait[] = []
      for (const link of links) {
        const wasInSync = link.inSync()
        const done = link.enqueue(type, offset, data)
        if (done && (wasInSync || link.pendingCount() > syncingBacklogFrames)) waits.push({ link, done })
        const unrecorded = wasInSync ? undefined : failurePersisted.get(link)
        if (unrecorded && !Deferred.isDoneUnsafe(unrecorded)) waits.push({ link, unrecorded })
      }
      return waits
    }

    /** The caller stops waiting for these frames: each link still holding one takes its own copy of the bytes. */
    const adoptBodies = (waits: ReadonlyArray<Wait>) => {
      for (const wait of waits) if ("done" in wait) wait.link.adoptBody(wait.done)
    }

    /** One replica's ack; a replica that failed under this write: the write completes only once that is recorded. */
    const awaitReplica = (wait: Wait): Effect.Effect<void, VolumeError> => {
      if ("local" in wait) return Fiber.join(wait.local).pipe(Effect.catch(storeFailed("write")))
      if ("unrecorded" in wait) return Deferred.await(wait.unrecorded)
      const { link, done } = wait
      return link.awaitAck(done).pipe(
        Effect.catch(() => Effect.suspend(() => {
          const persisted = failurePersisted.get(link)
          return persisted ? Deferred.await(persisted) : Effect.void
        })),
      )
    }

    /** An encrypted write chunk: `seal` gives its ciphertext (absent: `prepare` makes it, under the order lock). */
    interface Encrypted {
      readonly seal?: Effect.Effect<Uint8Array>
    }

    const awaitReplicas = (waits: ReadonlyArray<Wait>) => {
      // One replica (the common case) is awaited in this fiber; several at once, each in its own.
      const acks = waits.length === 0 ? Effect.void
        : waits.length === 1 ? awaitReplica(waits[0]!)
        : Effect.forEach(waits, awaitReplica, { concurrency: "unbounded", discard: true })
      return Effect.andThen(acks, checkUsable)
    }

    /**
     * Encrypted writes take turns: each is queued (reaches the order lock) after every encrypted
     * write that took a permit before it, as a plain write would be, though their encryption runs
     * concurrently, off the event loop (`encryptBackground`, a worker thread per core). A turn is
     * taken with the in-flight permit, so a write holding a turn never waits for a permit.
     */
    let lastTurn: Deferred.Deferred<void> | undefined
    const inTurn = (offset: number, encrypted: Encrypted, prepare: Effect.Effect<Uint8Array, VolumeError> | undefined) => {
      const previous = lastTurn
      const mine = Deferred.makeUnsafe<void>()
      lastTurn = mine
      const earlierQueued = previous ? Deferred.await(previous) : Effect.void
      return Effect.gen(function* () {
        const data = encrypted.seal ? yield* encrypted.seal : new Uint8Array(0)
        yield* earlierQueued
        return yield* queueChunk(MessageType.Write, offset, data, prepare)
      }).pipe(Effect.ensuring(Effect.andThen(earlierQueued, Deferred.succeed(mine, undefined))))
    }

    /**
     * Buffer rule: the caller may reuse `data` once the write settled. Until then in-sync links
     * send (and resend) the caller's bytes; if the caller stops waiting (interruption), each link
     * still holding the frame takes its own copy before control returns to the caller.
     */
    const writeChunk = (offset: number, data: Uint8Array, prepare?: Effect.Effect<Uint8Array, VolumeError>, acknowledged: readonly [number, number] = [offset, data.length], encrypted?: Encrypted) =>
      inflight.withPermits(1)(Effect.gen(function* () {
        lastForegroundMs = clock.currentTimeMillisUnsafe()
        const waits = yield* (encrypted ? inTurn(offset, encrypted, prepare) : queueChunk(MessageType.Write, offset, data, prepare))
        // Interrupted, or the master's own write failed: the caller may reuse its buffer, the links keep copies.
        yield* awaitReplicas(waits).pipe(Effect.onError(() => Effect.sync(() => adoptBodies(waits))))
        options.onWriteAcknowledged?.(acknowledged[0], acknowledged[1])
      }))

    /** Chunks settle each on its own (no fail-fast: none is still in flight on the caller's buffer); the first failure is the write's. */
    const settleAll = (chunks: ReadonlyArray<Effect.Effect<void, VolumeError>>) =>
      Effect.forEach(chunks, (chunk) => Effect.result(chunk), { concurrency: 8 }).pipe(
        Effect.flatMap((results) => {
          const failed = results.find((result) => result._tag === "Failure")
          return failed === undefined ? Effect.void : Effect.fail(failed.failure)
        }),
      )

    /** The plaintext of the whole unit at `at` (the cipher's zero rule: never written reads as zeros). */
    const plainUnit = (encrypt: VolumeCipher, at: number) =>
      store.read(at, Math.min(encrypt.unitBytes, visibleBytes - at)).pipe(
        Effect.mapError(storeFailure(volume)),
        Effect.map((stored) => encrypt.decrypt(at, stored)),
      )

    /**
     * An encrypted write: the whole units it touches, in chunks on unit boundaries. A chunk the
     * write covers whole is encrypted at once; one with a partial edge unit is merged with that
     * unit's current plaintext and encrypted under the order lock (queueChunk's `prepare`).
     */
    const writeEncrypted = (encrypt: VolumeCipher, offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> => {
      const span = unitSpan(offset, data.length, visibleBytes, encrypt.unitBytes)
      const chunks: Array<Effect.Effect<void, VolumeError>> = []
      for (let at = span.start; at < span.end; at += writeChunkBytesMax) {
        const end = Math.min(span.end, at + writeChunkBytesMax)
        const from = Math.max(offset, at)
        const to = Math.min(offset + data.length, end)
        const piece = data.subarray(from - offset, to - offset)
        if (from === at && to === end) {
          chunks.push(writeChunk(at, piece, undefined, [from, to - from], { seal: encrypt.encryptBackground(at, piece) }))
          continue
        }
        const lastUnit = Math.floor((end - 1) / encrypt.unitBytes) * encrypt.unitBytes
        const prepare = Effect.gen(function* () {
          const head = from > at ? yield* plainUnit(encrypt, at) : undefined
          const tail = to < end ? (lastUnit === at && head ? head : yield* plainUnit(encrypt, lastUnit)) : undefined
          const merged = new Uint8Array(end - at)
          if (head) merged.set(head, 0)
          if (tail) merged.set(tail, lastUnit - at)
          merged.set(piece, from - at)
          return yield* encrypt.encryptBackground(at, merged)
        })
        chunks.push(writeChunk(at, new Uint8Array(0), prepare, [from, to - from], {}))
      }
      return chunks.length === 1 ? chunks[0]! : settleAll(chunks)
    }

    const write = (offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> =>
      Effect.suspend((): Effect.Effect<void, VolumeError> => {
        const rangeError: OutOfRange | undefined = checkRange(volume, visibleBytes, offset, data.length)
        if (rangeError) return Effect.fail(rangeError)
        if (cipher && data.length > 0) return writeEncrypted(cipher, offset, data)
        if (data.length <= writeChunkBytesMax) return writeChunk(offset, data)
        const chunks: Array<Effect.Effect<void, VolumeError>> = []
        for (let at = 0; at < data.length; at += writeChunkBytesMax) chunks.push(writeChunk(offset + at, data.subarray(at, at + writeChunkBytesMax)))
        return settleAll(chunks)
      })

    const read = (offset: number, length: number): Effect.Effect<Uint8Array, VolumeError> =>
      Effect.suspend((): Effect.Effect<Uint8Array, VolumeError> => {
        const rangeError = checkRange(volume, visibleBytes, offset, length)
        if (rangeError) return Effect.fail(rangeError)
        if (!cipher) return Effect.andThen(checkUsable, store.read(offset, length).pipe(Effect.mapError(storeFailure(volume))))
        const span = unitSpan(offset, length, visibleBytes, cipher.unitBytes)
        return Effect.andThen(checkUsable, store.read(span.start, span.end - span.start).pipe(
          Effect.mapError(storeFailure(volume)),
          Effect.flatMap((stored) => cipher.decryptBackground(span.start, stored)),
          Effect.map((plain) => plain.subarray(offset - span.start, offset - span.start + length)),
        ))
      })

    const flush: Effect.Effect<void, VolumeError> = inflight.withPermits(1)(Effect.gen(function* () {
      const waits = yield* queueChunk(MessageType.Flush, 0, new Uint8Array(0))
      yield* withinDiskTimeout("fdatasync", store.flush).pipe(Effect.catch(storeFailed("fdatasync")))
      yield* awaitReplicas(waits)
    }))

    /**
     * Throttle of background copies (resync, verify): while foreground IO is active, they take at
     * most `resyncShare` of the time. The pause is capped so a resync under constant foreground
     * load still progresses (at least one chunk per `resyncPauseMaxMs`) instead of leaving the
     * volume degraded.
     */
    const throttle = (startedMs: number) => Effect.suspend(() => {
      const now = clock.currentTimeMillisUnsafe()
      if (resyncShare >= 1 || now - lastForegroundMs >= 1000) return Effect.void
      const spentMs = Math.max(1, now - startedMs)
      return Effect.sleep(Math.min(resyncPauseMaxMs, Math.ceil((spentMs * (1 - resyncShare)) / resyncShare)))
    })

    /** Copies the link's dirty regions through the ordered stream, then marks it in sync. */
    const resync = (link: ReplicaLink, skipZeroChunks: boolean) =>
      Effect.gen(function* () {
        const total = link.dirty.dirtyBytes
        const progress = { done: 0, total }
        syncProgress.set(link, progress)
        emit("sync-started", `replica ${link.target.node}: copying ${total} bytes${skipZeroChunks ? " (fresh copy: zero regions skipped)" : ""}${total === 0 ? " (its recent writes already match)" : ""}`, link.target.node)
        const window: Array<Deferred.Deferred<void, LinkFailure>> = []
        let lastProgressEvent = 0
        // A resize may coarsen the bitmap (bigger regions, other indexes; dirtyBitmap.ts `grow`)
        // between two steps: the walk notices it under the order lock and starts again.
        for (let walking = true; walking;) {
        walking = false
        const shape = link.dirty.regionBytes
        for (const region of [...link.dirty.regions()]) {
          if (link.state() === "failed" || fenced) return
          if (link.dirty.regionBytes !== shape) {
            walking = true
            break
          }
          // By offset: this bitmap and the link's may have regions of different sizes (a link made after a resize).
          if (skipZeroChunks && writtenSinceEmpty && !writtenSinceEmpty.anyDirtyIn(region.offset, region.length)) {
            // Zeros on both copies; a write from now on reaches the replica through the live stream.
            link.dirty.clear(region.index)
            progress.done += region.length
            continue
          }
          const started = clock.currentTimeMillisUnsafe()
          let copied = 0
          // Uninterruptible: regions cleared from the bitmap are always queued.
          const done = yield* orderLock.withPermits(1)(Effect.uninterruptible(Effect.gen(function* () {
            if (link.dirty.regionBytes !== shape) return "reshaped" as const
            if (!link.dirty.isDirty(region.index)) return undefined
            // Coalesce a run of consecutive dirty regions into one chunk of at most writeChunkBytesMax.
            let end = region.index
            let length = region.length
            while (end + 1 < link.dirty.regionCount && link.dirty.isDirty(end + 1)) {
              const next = link.dirty.region(end + 1)
              if (length + next.length > writeChunkBytesMax) break
              end++
              length += next.length
            }
            // A read error is an expected store fault, not a broken invariant: this sync fails (the
            // link fails; its regions stay dirty, a revive retries) and the master serves on — a
            // failed read changed no byte. It used to be a defect, which killed an opening master's
            // catch-up for good (found by the cluster simulator, seed 7); fencing the master instead
            // left a sole copy waiting for good once it recorded itself incomplete (seed 1243).
            const read = yield* Effect.result(store.read(region.offset, length))
            if (read._tag === "Failure") {
              link.fail(new LinkFailure("store", `the master could not read its copy to sync replica ${link.target.node}: ${read.failure.message}`))
              return undefined
            }
            const bytes = read.success
            for (let index = region.index; index <= end; index++) link.dirty.clear(index)
            copied = length
            if (skipZeroChunks && isAllZero(bytes)) return undefined
            return link.enqueue(MessageType.SyncChunk, region.offset, bytes)
          })))
          if (done === "reshaped") {
            walking = true
            break
          }
          progress.done += copied
          if (done) window.push(done)
          if (window.length >= syncWindowChunks) yield* link.awaitAck(window.shift()!)
          const now = clock.currentTimeMillisUnsafe()
          if (now - lastProgressEvent >= 500) {
            lastProgressEvent = now
            emit("sync-progress", `replica ${link.target.node}: ${progress.done} of ${total} bytes`, link.target.node)
          }
          yield* throttle(started)
        }
        }
        for (const done of window) yield* link.awaitAck(done)
        yield* completeSync(link)
      }).pipe(Effect.catch(() => Effect.void))

    /**
     * The end of a resync, bounded under any load: at a cut-over under the order lock every later
     * write waits for the replica; the writes queued before it (their callers did not wait) are
     * then awaited once, the replica records itself complete for this session (after an
     * fdatasync), and only then is it recorded in sync — so a promotion never picks a copy that
     * misses an acknowledged write (docs/design.md, invariant 3).
     */
    const completeSync = (link: ReplicaLink) =>
      Effect.gen(function* () {
        const earlier = yield* orderLock.withPermits(1)(Effect.sync(() => {
          if (link.state() === "failed" || link.dirty.dirtyRegionCount > 0) return undefined
          link.markInSync()
          return link.pendingAcks()
        }))
        if (!earlier) return
        for (const done of earlier) yield* link.awaitAck(done)
        const complete = link.enqueue(MessageType.Complete, 0, encodeJsonBody(lineage))
        if (!complete) return
        yield* link.awaitAck(complete)
        if (!link.inSync()) return
        link.markCompleted()
        syncProgress.delete(link)
        emit("sync-done", `replica ${link.target.node} is in sync`, link.target.node)
        if (options.onReplicaInSync) yield* Effect.ignore(options.onReplicaInSync(link.target.node, () => link.inSync(), link.incarnation()))
      })

    /** Full sync or delta for `link`, from its own answer to Open (copyIdentity.ts). */
    const decideFor = (link: ReplicaLink, expected: Lineage | undefined): SyncDecision => {
      const answer = link.lastOpen()
      return answer === undefined ? { kind: "full", skipZeros: false, why: "the copy did not answer" } : decideSync(answer.identity, answer.activity, expected, expected === lineage)
    }

    /** Opens a copy, decides from its answer, and starts its resync in the background. */
    const openAndSync = (link: ReplicaLink, expected: Lineage | undefined) =>
      Effect.gen(function* () {
        yield* link.start(false)
        if (link.state() === "failed") return
        const decision = decideFor(link, expected)
        if (decision.kind === "full") link.dirty.markAll()
        yield* startResync(link, decision.kind === "full" && decision.skipZeros)
      })

    /** Records a replica as syncing before IO is served without it; a master that cannot record this does not serve. */
    const recordSyncing = (link: ReplicaLink) =>
      options.onReplicaSyncing!(link.target.node).pipe(
        Effect.retry({ times: 5 }),
        Effect.catch(() => Effect.sync(() => fence("not-master", `volume ${volume}: could not record that replica ${link.target.node} is syncing; refusing IO rather than risk a promotion of an incomplete copy`))),
      )

    const startResync = (link: ReplicaLink, skipZeroChunks: boolean) =>
      Effect.gen(function* () {
        const running = syncFibers.get(link)
        if (running) yield* Fiber.interrupt(running)
        const fiber = yield* Effect.forkIn(resync(link, skipZeroChunks), scope)
        syncFibers.set(link, fiber)
      })

    // Open: connect every replica; reconcile activity logs with the previously in-sync ones before serving.
    for (const plan of options.replicas) {
      const link = yield* makeLink(plan.target)
      // A copy that needs a sync owes every region, whether or not it can be reached right now.
      if (plan.recorded === "needs-sync") link.dirty.markAll()
      links.push(link)
    }
    const previouslyInSync = links.filter((link, index) => options.replicas[index]!.recorded === "in-sync")
    // Only the copies that were in sync must answer before this master serves (their identity and activity logs).
    yield* Effect.forEach(previouslyInSync, (link) => link.start(false), { concurrency: "unbounded", discard: true })
    const decisions = new Map(previouslyInSync.map((link) => [link, decideFor(link, previousLineage)] as const))
    const deltas = previouslyInSync.filter((link) => link.state() !== "failed" && decisions.get(link)!.kind === "delta")
    const activity: Array<ReadonlyArray<readonly [number, number]> | "all"> = options.previousSessionDrained === true ? [] : [options.ownActivity ?? []]
    if (options.previousSessionDrained !== true) for (const link of deltas) activity.push(link.lastOpen()?.activity ?? "all")
    // Every previously in-sync copy owes the union — also one unreachable now: its dirty bitmap
    // keeps the regions for its catch-up when it returns. A copy that cannot prove its lineage owes everything.
    for (const link of previouslyInSync) {
      if (link.state() === "failed" || decisions.get(link)!.kind === "full") link.dirty.markAll()
      for (const ranges of activity) {
        if (ranges === "all") link.dirty.markAll()
        else for (const [offset, length] of ranges) if (offset < link.dirty.sizeBytes) link.dirty.mark(offset, Math.min(length, link.dirty.sizeBytes - offset))
      }
    }
    yield* Effect.forEach(deltas, (link) => resync(link, false), { concurrency: "unbounded", discard: true })
    for (const link of previouslyInSync) {
      const persisted = failurePersisted.get(link)
      if (persisted) yield* Deferred.await(persisted)
    }
    // Copies recorded in sync that owe a full sync are recorded syncing before any write is served without them.
    for (const link of previouslyInSync) {
      const decision = decisions.get(link)!
      if (link.state() === "failed" || decision.kind !== "full") continue
      emit("sync-started", `replica ${link.target.node}: full sync: ${decision.why}`, link.target.node)
      if (options.onReplicaSyncing) yield* recordSyncing(link)
      yield* startResync(link, decision.skipZeros)
    }
    // A master fenced while opening keeps its record as it was. One that cannot write its record
    // does not serve (nothing would prove this session), but its data is untouched: `not-master`,
    // not `store-failed`, so its node reopens it rather than holding the copy suspect — a sole
    // copy otherwise waited for good after one failed meta write (found by the cluster simulator).
    if (!fenced) yield* writeOwnRecord(store, volume, { ...lineage, state: "complete" }).pipe(
      Effect.catch((error) => Effect.sync(() => fence("not-master", `volume ${volume}: cannot record the master's copy identity: ${error.message}; it does not serve until it can`))),
    )
    for (const [index, link] of links.entries()) {
      if (options.replicas[index]!.recorded === "in-sync") continue
      startups.push(yield* Effect.forkIn(openAndSync(link, undefined), scope))
    }

    const addReplica = (target: ReplicaTarget) =>
      Effect.gen(function* () {
        if (links.some((l) => l.target.node === target.node)) return
        const link = yield* makeLink(target)
        link.dirty.markAll()
        links.push(link)
        emit("replica-added", `replica placed on ${target.node}`, target.node)
        yield* openAndSync(link, undefined)
      })

    const removeReplica = (node: string) =>
      Effect.gen(function* () {
        const index = links.findIndex((l) => l.target.node === node)
        if (index < 0) return
        const [link] = links.splice(index, 1)
        const fiber = syncFibers.get(link!)
        if (fiber) yield* Fiber.interrupt(fiber)
        yield* link!.close
        emit("replica-removed", `replica on ${node} removed`, node)
      })

    const reviveReplica = (node: string) =>
      Effect.gen(function* () {
        const link = links.find((l) => l.target.node === node)
        if (!link || link.state() !== "failed" || fenced) return
        // Writes done without it wait for its failure's record; a revive does not end that wait.
        const persisted = failurePersisted.get(link)
        if (persisted) yield* Deferred.await(persisted)
        failurePersisted.delete(link)
        // Same session: the dirty bitmap is enough if the copy proves it followed it; else a full sync.
        yield* openAndSync(link, lineage)
      })

    const resizeLock = yield* Semaphore.make(1)
    /** An encrypted volume grows in whole cipher units (resize.ts). */
    const resizeUnitBytes = cipher ? cipher.unitBytes : sectorBytes
    /** Grows this copy and every link's bitmaps, and queues a Resize on every link in the stream; the in-sync ones are returned to wait for. */
    const growCopies = (next: number) =>
      Effect.gen(function* () {
        // The own record is not rewritten here: one of the old size reads as well (the growth added
        // only zeros), and a rewrite racing a store failure's `incomplete` could undo it. The next
        // master open writes the new size.
        if (store.sizeBytes < next) yield* withinDiskTimeout("growing the master's copy", store.grow(next)).pipe(Effect.mapError(storeFailure(volume)))
        return yield* orderLock.withPermits(1)(Effect.uninterruptible(Effect.suspend(() => {
          writtenSinceEmpty?.grow(next)
          const waits: Wait[] = []
          for (const link of links) {
            link.grow(next)
            const wasInSync = link.inSync()
            const done = link.enqueue(MessageType.Resize, next, new Uint8Array(0))
            if (done && wasInSync) waits.push({ link, done })
          }
          return Effect.succeed(waits)
        })))
      })
    const resize = <E = never, R = never>(next: number, commit?: Effect.Effect<void, E, R>): Effect.Effect<void, VolumeError | ReplicationError | E, R> =>
      resizeLock.withPermits(1)(Effect.gen(function* () {
        const bad = checkResize(volume, visibleBytes, next, undefined, resizeUnitBytes)
        if (bad) return yield* bad
        if (next === visibleBytes) return
        // Not the failure mode's IO check: a resize changes no byte, and a hard volume waiting for a
        // replica grows too (the missing copy is grown at its next Open).
        yield* checkServing
        const waits = yield* growCopies(next)
        yield* awaitReplicas(waits).pipe(Effect.catchTag("VolumeUnavailable", (error) => (fenced ? Effect.fail(error) : checkServing)))
        if (commit) yield* commit
        const before = visibleBytes
        visibleBytes = next
        emit("resized", `volume ${volume} grew from ${before} to ${next} bytes on the master and ${waits.length} in-sync replica${waits.length === 1 ? "" : "s"}`)
      }))

    let verifying: VerifyReport | undefined
    const verifyContext: VerifyContext = {
      volume, epoch, master: options.nodeName, store, orderLock, links: () => links, fenced: () => fenced, throttle,
      nowMs: () => clock.currentTimeMillisUnsafe(), emit: (kind, message) => emit(kind, message),
    }
    /** The gauges of the last result: differing regions left, and when every copy was last found equal. */
    const recordVerify = (report: VerifyReport) => {
      if (!options.metrics || report.state !== "done") return
      options.metrics.set(metricNames.volumeVerifyDiffering, { volume }, report.differingRegions)
      // Success: every requested replica was in sync, compared, and equal.
      const allCompared = report.copies.length >= spec.replicas && report.copies.every((c) => c.state === "compared")
      if (report.differingRegions === 0 && allCompared) options.metrics.set(metricNames.volumeVerifyLastSuccess, { volume }, Math.floor((report.finishedAtMs ?? 0) / 1000))
    }
    const beginVerify = (verifyOptions: VerifyOptions) =>
      Effect.suspend((): Effect.Effect<VerifyReport, ReplicationError> => {
        const bad = checkVerifyOptions(volume, verifyOptions)
        if (bad) return Effect.fail(bad)
        if (verifying?.state === "running") return Effect.fail(new ReplicationError({ reason: "busy", volume, message: `volume ${volume}: a verify is already running (${verifying.bytesDone} of ${verifying.bytesTotal} bytes); wait for it to finish` }))
        verifying = newVerifyReport(verifyContext, visibleBytes, verifyOptions)
        return Effect.succeed(verifying)
      })
    const runRecorded = (report: VerifyReport) =>
      runVerify(verifyContext, report).pipe(Effect.tap((done) => Effect.sync(() => recordVerify(done))))
    const verify = (verifyOptions: VerifyOptions = {}): Effect.Effect<VerifyReport, VolumeError | ReplicationError> =>
      Effect.flatMap(beginVerify(verifyOptions), runRecorded)
    const startVerify = (verifyOptions: VerifyOptions = {}): Effect.Effect<VerifyReport, ReplicationError> =>
      Effect.tap(beginVerify(verifyOptions), (report) => Effect.forkIn(Effect.ignore(runRecorded(report)), scope))

    const status = Effect.sync((): VolumeStatus => {
      const assessment = fenced ? { health: "unavailable" as const, usable: false, reason: fenced.message } : assess()
      return {
        volume, sizeBytes: visibleBytes, master: options.nodeName, epoch, spec,
        health: assessment.health, usable: assessment.usable, reason: assessment.reason,
        replicas: links.map((link) => {
          const progress = syncProgress.get(link)
          return {
            node: link.target.node, address: `${link.target.address.host}:${link.target.address.port}`,
            state: link.state(), reason: link.failure()?.message, dirtyBytes: link.dirty.dirtyBytes,
            syncBytesDone: progress?.done ?? 0, syncBytesTotal: progress?.total ?? 0,
          }
        }),
      }
    })

    const close = Effect.gen(function* () {
      fence("closed", `volume ${volume} was closed`)
      for (const fiber of syncFibers.values()) yield* Fiber.interrupt(fiber)
      yield* Effect.forEach(links, (link) => link.close, { discard: true })
    })
    yield* Effect.addFinalizer(() => close)

    const volumeObject = {
      name: volume, epoch, lineage, resize, capacityBytes: () => store.sizeBytes, write, read, flush, status, fence, isFenced: () => fenced !== undefined, fencedReason: () => fenced?.reason, drain, copyDamaged: () => damaged,
      addReplica, removeReplica, reviveReplica, links: () => links, close, verify, startVerify, lastVerify: () => verifying,
      spec: () => spec,
      updateSpec: (next: VolumeSpec) => {
        assert((next.encryption === true) === (cipher !== undefined), "encryption is chosen at creation (labels.ts checkSpecChange)")
        if (compresses(next) !== compresses(spec)) for (const link of links) link.setCompress(compresses(next))
        countedReplicas = next.replicas > spec.replicas ? Math.min(countedReplicas, spec.replicas) : next.replicas
        spec = next
      },
      // First the background opens (they start their syncs), then every sync.
      awaitSyncs: Effect.forEach(startups, (fiber) => Fiber.await(fiber), { discard: true }).pipe(
        Effect.andThen(Effect.suspend(() => Effect.forEach([...syncFibers.values()], (fiber) => Fiber.await(fiber), { discard: true }))),
      ),
    }
    // Read through: the size changes when a resize completes.
    return Object.defineProperty(volumeObject, "sizeBytes", { get: () => visibleBytes, enumerable: true }) as typeof volumeObject & { readonly sizeBytes: number } satisfies MasterVolume
  })
