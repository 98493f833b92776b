/**
 * The master copy of a volume: local writes fanned out to every replica, completed by acks.
 *
 * This module is the master's public face (`openMasterVolume`, `MasterVolume`) and composes its
 * parts, each a module under master/ working on the session's shared state (master/state.ts):
 * - master/writePipeline.ts — a write's way: under the order lock, queued on every link and
 *   written locally in one step; acknowledged when every copy in sync has it. Reads and flushes.
 * - master/encryptedWrite.ts — an encrypted volume's writes (whole cipher units, in turn).
 * - master/resync.ts — a replica's full sync or delta catch-up through the same ordered stream,
 *   decided from the copy's own answer (copyIdentity.ts), and its cut-over to in sync.
 * - master/opening.ts — before serving: the previously in-sync copies' activity logs reconciled
 *   (DRBD style), so copies that received different in-flight writes of a dead master converge.
 * - master/serving.ts — whether IO is served: the fence, the lease, the failure mode; a failed
 *   local disk operation fences the master (its copy no longer proves what it holds).
 * - master/links.ts, membership.ts, growth.ts — the replica links, replicas placed, dropped and
 *   revived, and the online resize.
 *
 * Encryption at rest (`cipher`, for a spec with `encryption`): the master encrypts before its own
 * store write and the fan-out, and decrypts what it reads, so every copy holds only ciphertext,
 * and resync, delta catch-up and verify move ciphertext unchanged.
 *
 * IO is refused with `VolumeUnavailable` when the failure mode says so, when the master's lease
 * is not valid (`leaseValid`), or when a replica reported a newer epoch (docs/design.md, invariant 2).
 */
import { Clock, Effect, Fiber, Random, Scope, Semaphore } from "effect"
import { assert } from "../core/assert.ts"
import { defaults, dirtyRegionBytesFor, inflightWritesPerReplicaMax } from "../core/limits.ts"
import { DirtyBitmap } from "../store/dirtyBitmap.ts"
import type { BlockStore, StoreMeta } from "../store/BlockStore.ts"
import type { Health } from "../volume/health.ts"
import type { VolumeSpec } from "../volume/labels.ts"
import { checkRange, ReplicationError, type OutOfRange, type VolumeError, type VolumeUnavailable } from "./errors.ts"
import { checkVerifyOptions, newVerifyReport, runVerify, type VerifyContext, type VerifyOptions, type VerifyReport } from "./verify.ts"
import { metricNames } from "../core/metricFamilies.ts"
import { volumeIdOf } from "./protocol.ts"
import type { Lineage } from "./copyIdentity.ts"
import type { ReplicaLink, ReplicaState, ReplicaTarget } from "./replicaLink.ts"
import { writeEncrypted, type Turns } from "./master/encryptedWrite.ts"
import { resize } from "./master/growth.ts"
import { compresses } from "./master/links.ts"
import { addReplica, removeReplica, reviveReplica } from "./master/membership.ts"
import { openSession } from "./master/opening.ts"
import { throttle } from "./master/resync.ts"
import { assess } from "./master/serving.ts"
import { emit, fence, type MasterState } from "./master/state.ts"
import { drain, flush, read, writePlain } from "./master/writePipeline.ts"

export type { MasterVolumeOptions, ReplicaPlan, VolumeEvent } from "./master/options.ts"
import type { MasterVolumeOptions, VolumeEvent } from "./master/options.ts"
export { syncWindowChunks, syncingBacklogFrames } from "./master/writePipeline.ts"
export { resyncPauseMaxMs } from "./master/resync.ts"

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

/** The session's shared state (master/state.ts), before any replica is connected; `own` is this copy's record as it was. */
const makeState = (options: MasterVolumeOptions, own: { readonly meta: StoreMeta | undefined } | undefined) =>
  Effect.gen(function* () {
    const { volume, store, epoch, cipher } = options
    assert((options.spec.encryption === true) === (cipher !== undefined), "an encrypted volume is opened with its cipher, a plain one without")
    const visibleBytes = options.visibleSizeBytes ?? store.sizeBytes
    assert(visibleBytes <= store.sizeBytes, `the visible size ${visibleBytes} is inside the copy of ${store.sizeBytes} bytes`)
    const uid = options.uid ?? `name:${volume}`
    // A master copy that starts empty (a new volume) knows its non-zero regions: those it wrote.
    // An empty replica then needs only those, without reading the rest of the volume.
    const writtenSinceEmpty = copyEmpty(store, own) ? new DirtyBitmap(store.sizeBytes, dirtyRegionBytesFor(store.sizeBytes, options.dirtyRegionBytes ?? defaults.dirtyRegionBytes)) : undefined
    const lineage: Lineage = { uid, epoch, generation: yield* newGeneration(epoch) }
    const resyncShare = options.resyncShare ?? 0.5
    assert(resyncShare > 0 && resyncShare <= 1, "resyncShare is in (0, 1]")
    const state: MasterState = {
      options, volume, volumeId: volumeIdOf(volume), uid, store, epoch, cipher, lineage,
      ackTimeoutMs: options.ackTimeoutMs ?? defaults.ackTimeoutMs, diskTimeoutMs: options.diskTimeoutMs ?? defaults.diskTimeoutMs, resyncShare,
      spec: options.spec, countedReplicas: options.spec.replicas, visibleBytes, fenced: undefined, damaged: false, lastForegroundMs: -Infinity,
      writtenSinceEmpty, links: [], failurePersisted: new Map(), syncProgress: new Map(), syncFibers: new Map(),
      orderLock: yield* Semaphore.make(1), inflight: yield* Semaphore.make(inflightWritesPerReplicaMax),
      scope: yield* Effect.scope, clock: yield* Clock.Clock, fiberContext: yield* Effect.context<never>(),
    }
    return state
  })

/** The volume's status as `status` reports it: health from the links (or the fence), each replica's state and sync progress. */
const statusOf = (state: MasterState): VolumeStatus => {
  const assessment = state.fenced ? { health: "unavailable" as const, usable: false, reason: state.fenced.message } : assess(state)
  return {
    volume: state.volume, sizeBytes: state.visibleBytes, master: state.options.nodeName, epoch: state.epoch, spec: state.spec,
    health: assessment.health, usable: assessment.usable, reason: assessment.reason,
    replicas: state.links.map((link) => {
      const progress = state.syncProgress.get(link)
      return {
        node: link.target.node, address: `${link.target.address.host}:${link.target.address.port}`,
        state: link.state(), reason: link.failure()?.message, dirtyBytes: link.dirty.dirtyBytes,
        syncBytesDone: progress?.done ?? 0, syncBytesTotal: progress?.total ?? 0,
      }
    }),
  }
}

/** verify and startVerify over the session (verify.ts), one at a time; the last report's gauges recorded. */
const makeVerifier = (state: MasterState) => {
  const { volume, options } = state
  let verifying: VerifyReport | undefined
  const context: VerifyContext = {
    volume, epoch: state.epoch, master: options.nodeName, store: state.store, orderLock: state.orderLock, links: () => state.links, fenced: () => state.fenced,
    throttle: throttle(state), nowMs: () => state.clock.currentTimeMillisUnsafe(), emit: (kind, message) => emit(state, kind, message),
  }
  /** The gauges of the last result: differing regions left, and when every copy was last found equal. */
  const recordVerify = (report: VerifyReport) => {
    if (!options.metrics || report.state !== "done") return
    options.metrics.set(metricNames.volumeVerifyDiffering, { volume }, report.differingRegions)
    // Success: every requested replica was in sync, compared, and equal.
    const allCompared = report.copies.length >= state.spec.replicas && report.copies.every((c) => c.state === "compared")
    if (report.differingRegions === 0 && allCompared) options.metrics.set(metricNames.volumeVerifyLastSuccess, { volume }, Math.floor((report.finishedAtMs ?? 0) / 1000))
  }
  const begin = (verifyOptions: VerifyOptions) =>
    Effect.suspend((): Effect.Effect<VerifyReport, ReplicationError> => {
      const bad = checkVerifyOptions(volume, verifyOptions)
      if (bad) return Effect.fail(bad)
      if (verifying?.state === "running") return Effect.fail(new ReplicationError({ reason: "busy", volume, message: `volume ${volume}: a verify is already running (${verifying.bytesDone} of ${verifying.bytesTotal} bytes); wait for it to finish` }))
      verifying = newVerifyReport(context, state.visibleBytes, verifyOptions)
      return Effect.succeed(verifying)
    })
  const runRecorded = (report: VerifyReport) => runVerify(context, report).pipe(Effect.tap((done) => Effect.sync(() => recordVerify(done))))
  return {
    verify: (verifyOptions: VerifyOptions = {}): Effect.Effect<VerifyReport, VolumeError | ReplicationError> => Effect.flatMap(begin(verifyOptions), runRecorded),
    startVerify: (verifyOptions: VerifyOptions = {}): Effect.Effect<VerifyReport, ReplicationError> => Effect.tap(begin(verifyOptions), (report) => Effect.forkIn(Effect.ignore(runRecorded(report)), state.scope)),
    lastVerify: () => verifying,
  }
}

export const openMasterVolume = (options: MasterVolumeOptions): Effect.Effect<MasterVolume, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { volume, store, epoch, cipher } = options
    // The lineage the previously in-sync replicas followed: this copy's own record, read before it is replaced.
    const own = yield* readOwnMeta(store)
    const state = yield* makeState(options, own)
    const startups = yield* openSession(state, lineageOf(own))
    const resizeLock = yield* Semaphore.make(1)
    const turns: Turns = { last: undefined }
    const close = Effect.gen(function* () {
      fence(state, "closed", `volume ${volume} was closed`)
      for (const fiber of state.syncFibers.values()) yield* Fiber.interrupt(fiber)
      yield* Effect.forEach(state.links, (link) => link.close, { discard: true })
    })
    yield* Effect.addFinalizer(() => close)

    const volumeObject = {
      name: volume, epoch, lineage: state.lineage, capacityBytes: () => store.sizeBytes,
      write: (offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> =>
        Effect.suspend((): Effect.Effect<void, VolumeError> => {
          const rangeError: OutOfRange | undefined = checkRange(volume, state.visibleBytes, offset, data.length)
          if (rangeError) return Effect.fail(rangeError)
          return cipher && data.length > 0 ? writeEncrypted(state, turns, cipher, offset, data) : writePlain(state, offset, data)
        }),
      read: (offset: number, length: number) => read(state, offset, length),
      flush: flush(state),
      status: Effect.sync(() => statusOf(state)),
      fence: (reason: VolumeUnavailable["reason"], message: string) => fence(state, reason, message),
      isFenced: () => state.fenced !== undefined, fencedReason: () => state.fenced?.reason, copyDamaged: () => state.damaged,
      drain: (timeoutMs: number) => drain(state, timeoutMs),
      resize: <E = never, R = never>(next: number, commit?: Effect.Effect<void, E, R>) => resize(state, resizeLock, next, commit),
      addReplica: (target: ReplicaTarget) => addReplica(state, target),
      removeReplica: (node: string) => removeReplica(state, node),
      reviveReplica: (node: string) => reviveReplica(state, node),
      links: () => state.links, close, ...makeVerifier(state),
      spec: () => state.spec,
      updateSpec: (next: VolumeSpec) => {
        assert((next.encryption === true) === (cipher !== undefined), "encryption is chosen at creation (labels.ts checkSpecChange)")
        if (compresses(next) !== compresses(state.spec)) for (const link of state.links) link.setCompress(compresses(next))
        state.countedReplicas = next.replicas > state.spec.replicas ? Math.min(state.countedReplicas, state.spec.replicas) : next.replicas
        state.spec = next
      },
      // First the background opens (they start their syncs), then every sync.
      awaitSyncs: Effect.forEach(startups, (fiber) => Fiber.await(fiber), { discard: true }).pipe(
        Effect.andThen(Effect.suspend(() => Effect.forEach([...state.syncFibers.values()], (fiber) => Fiber.await(fiber), { discard: true }))),
      ),
    }
    // Read through: the size changes when a resize completes.
    return Object.defineProperty(volumeObject, "sizeBytes", { get: () => state.visibleBytes, enumerable: true }) as typeof volumeObject & { readonly sizeBytes: number } satisfies MasterVolume
  })
