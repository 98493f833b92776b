/**
 * The types the cluster node's modules share (membership, agent, controller, cluster API, the
 * factory in clusterNode.ts): the node's options, its events, what the API returns and takes, and
 * the agent's in-memory copies of volumes with their master roles.
 */
import type { Effect, Scope, Stream } from "effect"
import type { ControlError } from "../control/ControlStore.ts"
import type { NodeOptions, ReplivolNode } from "../node/node.ts"
import type { Rule, RuleError } from "../policy/rules.ts"
import type { ReplicationError, VolumeError } from "../replication/errors.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"
import type { VerifyOptions, VerifyReport } from "../replication/verify.ts"
import type { BlockStore } from "../store/BlockStore.ts"
import type { Health } from "../volume/health.ts"
import type { LabelError } from "../volume/labels.ts"
import type { KeyRing } from "../crypt/keys.ts"
import type { EncryptionError } from "../crypt/primitives.ts"
import type { ClusterError, NodeConfig, NodeRecord, ReplicaRecord } from "./records.ts"
import type { VolumeClient } from "./volumeClient.ts"

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
  /**
   * What this node unwraps encryption keys with (lib/crypt/keys.ts; the CLI reads it from
   * `--encryption-key-file`). Without it, or without a key in it, the node hosts replicas of
   * encrypted volumes (ciphertext) but creates and serves none, saying why.
   */
  readonly keyRing?: KeyRing
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
  /** A resize under way: the size every copy grows to (IO addresses `sizeBytes` until it is done). */
  readonly resizingToBytes?: number
}

export interface NodeInfo extends NodeRecord {
  readonly alive: boolean
  readonly controller: boolean
  /** The operator's labels on the node (failure domains among them); none when absent. */
  readonly labels?: Readonly<Record<string, string>>
  /** No new copy is placed on it and no replica on it is promoted (absent: false). */
  readonly cordoned?: boolean
}

/** What `acceptLoss` did: `accepted` false when nothing waits for a copy that is away (nothing changed); the message says which. */
export interface AcceptLossResult {
  readonly accepted: boolean
  readonly message: string
  readonly volume: VolumeInfo
}

/** A change to a volume's labels: `set` wins over the current values, then `remove` drops keys. */
export interface VolumeLabelChange {
  readonly setLabels?: Readonly<Record<string, string>>
  readonly removeLabels?: ReadonlyArray<string>
}

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

export type ApiError = ClusterError | ControlError | LabelError | ReplicationError | RuleError | EncryptionError

export interface ClusterNode {
  readonly name: string
  readonly node: ReplivolNode
  readonly createVolume: (options: CreateVolumeOptions) => Effect.Effect<VolumeInfo, ApiError>
  readonly deleteVolume: (volume: string) => Effect.Effect<void, ApiError>
  readonly listVolumes: Effect.Effect<ReadonlyArray<VolumeInfo>, ApiError>
  readonly inspectVolume: (volume: string) => Effect.Effect<VolumeInfo, ApiError>
  /** Changes a live volume's labels (replica count, failure mode and tolerance, compression, hint, the user's own); IO goes on. */
  readonly updateVolume: (volume: string, change: VolumeLabelChange) => Effect.Effect<VolumeInfo, ApiError>
  /**
   * Grows a live volume on every copy (never shrinks it; lib/cluster/resize.ts); IO goes on.
   * Returns once every in-sync copy has the new size, or after `waitMs` (default 10 s) with the
   * resize recorded and still under way (`resizingToBytes`). A shrink or a bad size is refused
   * (ReplicationError `shrink` / `bad-size`) and nothing changes.
   */
  readonly resizeVolume: (volume: string, sizeBytes: number, waitMs?: number) => Effect.Effect<VolumeInfo, ApiError>
  /**
   * An operator accepts that copies away may hold writes the copy that serves lacks, for the
   * volume's current epoch (records.ts `acceptLoss`): a master that waits for such a copy serves
   * what it holds; a lost master's in-sync replica that cannot prove its recent writes may be
   * promoted. While a master serves nothing waits and nothing changes (`accepted` false). Use only
   * when the copies away will not come back: what only they hold is lost.
   */
  readonly acceptLoss: (volume: string) => Effect.Effect<AcceptLossResult, ApiError>
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
  /**
   * Moves the volume's master to `to` (a planned hand-over: fence, drain, promote at the next
   * epoch), placing and syncing a copy there first when it holds no in-sync one. Refused with a
   * reason (nothing changes) for an unknown, down, cordoned or current master node, or a volume
   * without a serving master. Completes when `to` serves; `onProgress` sees each status change.
   */
  readonly moveVolume: (volume: string, to: string, onProgress?: (status: MoveStatus) => void) => Effect.Effect<MoveStatus, ApiError>
  /** Checks and starts a move in the background; its status follows with `moveStatus` (through any node). */
  readonly startMove: (volume: string, to: string) => Effect.Effect<MoveStatus, ApiError>
  readonly moveStatus: (volume: string) => Effect.Effect<MoveStatus, ApiError>
  /**
   * Cordons the node and moves everything off it: each master to a fresh copy elsewhere, each
   * replica replaced (the new copy in sync before the old one is dropped). Refused (nothing
   * changes) for an unknown node, or when some copy on it has nowhere to go.
   */
  readonly drainNode: (name: string, onProgress?: (status: DrainStatus) => void) => Effect.Effect<DrainStatus, ApiError>
  readonly startDrain: (name: string) => Effect.Effect<DrainStatus, ApiError>
  readonly drainStatus: (name: string) => Effect.Effect<DrainStatus, ApiError>
  /** Marks the node as crashing: closing its scope then keeps its lease (it must expire, as after a real crash). */
  readonly crash: () => void
}

/** A planned move of a volume's master (`volume move`): what it does now, and its new copy's sync progress. */
export interface MoveStatus {
  readonly volume: string
  /** The node running the move (its status is kept in the control store: every node's API reads it). */
  readonly runner: string
  readonly from: string | undefined
  readonly to: string
  /** copying: the copy on `to` syncs first; handing-over: the master fences, drains and hands over; then done or failed. */
  readonly state: "copying" | "handing-over" | "done" | "failed"
  /** A copy was placed on `to` for the move (the old master's copy is dropped after). */
  readonly newCopy: boolean
  readonly bytesDone: number
  readonly bytesTotal: number
  /** The new master's epoch, once done. */
  readonly epoch?: number
  readonly error?: string
  readonly startedAtMs: number
  readonly finishedAtMs?: number
}

/** A drain of a node (`node drain`): volumes moved so far, the one moving now. */
export interface DrainStatus {
  readonly node: string
  /** The node running the drain (its status is kept in the control store: every node's API reads it). */
  readonly runner: string
  readonly state: "draining" | "done" | "failed"
  readonly volumesTotal: number
  readonly volumesDone: number
  readonly current?: { readonly volume: string; readonly action: "move-master" | "replace-replica"; readonly to: string; readonly bytesDone: number; readonly bytesTotal: number }
  readonly error?: string
  readonly startedAtMs: number
  readonly finishedAtMs?: number
}

/** This node's master role for one copy: the session's scope and epoch, and the agent's per-link bookkeeping. */
export interface MasterRole {
  readonly scope: Scope.Closeable
  readonly epoch: number
  volume: MasterVolume | undefined
  readonly busy: Set<string>
  readonly reviveAtMs: Map<string, number>
  progressAtMs: number
  /**
   * Replicas whose record entry this master saw not failed during their link's current session
   * (from its start until it fails; agentPlan.ts `noteSession`), with the newest record mod
   * revision it saw that at: a "failed" entry for one of them in a newer record was written since
   * by someone else (its own agent, the controller), and is never overwritten.
   */
  readonly seenUnfailed: Map<string, number>
}

/** This node's open copy of one volume, and the role (replica or master) it plays. */
export interface Copy {
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

/** Publishes a cluster event of this node (kind, message, volume). */
export type Publish = (kind: string, message: string, volume?: string) => void
