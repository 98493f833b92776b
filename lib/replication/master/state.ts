/**
 * The state one master session shares between its parts (master/*.ts): what it serves, its links,
 * the locks that order its IO, and whether it still serves.
 *
 * One object per `openMasterVolume`, owned by that call's scope. The parts are functions of it:
 * the write pipeline (writePipeline.ts), the resync (resync.ts), the opening reconcile
 * (opening.ts), membership changes (membership.ts), the online resize (growth.ts). Mutable fields
 * change only on the event loop, at the points each part documents; nothing here does IO.
 */
import { Deferred, type Clock, type Context, type Fiber, type Scope, type Semaphore } from "effect"
import type { BlockStore } from "../../store/BlockStore.ts"
import { StoreError } from "../../store/BlockStore.ts"
import type { DirtyBitmap } from "../../store/dirtyBitmap.ts"
import type { VolumeSpec } from "../../volume/labels.ts"
import type { VolumeCipher } from "../../crypt/volumeCipher.ts"
import type { Lineage } from "../copyIdentity.ts"
import { VolumeIoError, VolumeUnavailable } from "../errors.ts"
import type { LinkFailure, ReplicaLink } from "../replicaLink.ts"
import type { MasterVolumeOptions, VolumeEvent } from "./options.ts"

export interface MasterState {
  readonly options: MasterVolumeOptions
  readonly volume: string
  readonly volumeId: bigint
  readonly uid: string
  readonly store: BlockStore
  readonly epoch: number
  readonly cipher: VolumeCipher | undefined
  /** This master session: the lineage its replicas follow. */
  readonly lineage: Lineage
  readonly ackTimeoutMs: number
  readonly diskTimeoutMs: number
  /** Share of time a resync may use while foreground IO is active (0 < share ≤ 1). */
  readonly resyncShare: number
  /** Changed at run time by `updateSpec` (volume update): failure mode, tolerance, replica count, compression. */
  spec: VolumeSpec
  /** The replica count the failure mode counts (below `spec.replicas` while replicas added by an update sync). */
  countedReplicas: number
  /** The size IO may address; the store's size is the capacity (grown first by a resize). */
  visibleBytes: number
  /** Why IO stopped; undefined while serving. */
  fenced: VolumeUnavailable | undefined
  /** A local write or fdatasync failed in this session: this copy no longer proves what it holds. */
  damaged: boolean
  /** When a foreground write last started (the resync throttle's clock). */
  lastForegroundMs: number
  /** A master copy that started empty knows its non-zero regions: those it wrote (undefined otherwise). */
  readonly writtenSinceEmpty: DirtyBitmap | undefined
  readonly links: ReplicaLink[]
  /** A failed link's failure record, while (and after) it is written: writes done without the replica wait for it. */
  readonly failurePersisted: Map<ReplicaLink, Deferred.Deferred<void>>
  readonly syncProgress: Map<ReplicaLink, { done: number; total: number }>
  readonly syncFibers: Map<ReplicaLink, Fiber.Fiber<void>>
  /** Every frame is queued on the links (and its local write started) under this lock: one order for every copy. */
  readonly orderLock: Semaphore.Semaphore
  /** Writes and flushes in flight, bounded by `inflightWritesPerReplicaMax`. */
  readonly inflight: Semaphore.Semaphore
  readonly scope: Scope.Scope
  readonly clock: Clock.Clock
  /** The opening fiber's context, for the fibers a link's callback forks. */
  readonly fiberContext: Context.Context<never>
}

/**
 * What a chunk waits for on one link: its ack from an in-sync replica, or — for a link that
 * failed and whose failure is not recorded yet — that record. Until it is written the control
 * store still calls the replica in sync and a promotion may pick it, so a write done without
 * it must not be acknowledged before (found by the cluster simulator, seed 127: a write issued
 * after the replica's ack timeout, acknowledged while the record of the failure waited on a slow
 * control store; the master's node was lost and the replica promoted without it).
 */
export type Wait =
  | { readonly link: ReplicaLink; readonly done: Deferred.Deferred<void, LinkFailure> }
  | { readonly link: ReplicaLink; readonly unrecorded: Deferred.Deferred<void> }
  /** The master's own store write, still running (on the thread pool). */
  | { readonly local: Fiber.Fiber<void, StoreError> }

export const emit = (state: MasterState, kind: VolumeEvent["kind"], message: string, node?: string) =>
  state.options.onEvent?.({ volume: state.volume, atMs: state.clock.currentTimeMillisUnsafe(), kind, message, ...(node ? { node } : {}) })

/** Stops serving IO at once; the first reason stays. */
export const fence = (state: MasterState, reason: VolumeUnavailable["reason"], message: string) => {
  if (state.fenced) return
  state.fenced = new VolumeUnavailable({ volume: state.volume, reason, health: "unavailable", message })
  emit(state, "superseded", message)
}

export const storeFailure = (volume: string) => (error: StoreError): VolumeIoError =>
  new VolumeIoError({ volume, reason: error.reason === "no-space" ? "no-space" : error.reason === "closed" ? "closed" : "io", message: `volume ${volume}: the master's store failed: ${error.message}`, cause: error })
