/**
 * What `openMasterVolume` is given (MasterVolumeOptions, one ReplicaPlan per replica) and what it
 * tells (VolumeEvent): types only, shared by masterVolume.ts and the parts under master/.
 */
import type { Effect } from "effect"
import type { BlockStore } from "../../store/BlockStore.ts"
import type { VolumeSpec } from "../../volume/labels.ts"
import type { Metrics } from "../../core/metrics.ts"
import type { Connection } from "../../net/connection.ts"
import type { Lineage } from "../copyIdentity.ts"
import type { VolumeCipher } from "../../crypt/volumeCipher.ts"
import type { LinkFailure, ReplicaTarget } from "../replicaLink.ts"

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
