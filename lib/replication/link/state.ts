/**
 * The state of one replica link (the master's view of one replica), shared by its parts:
 * frames.ts (queueing, acks, failure) and connect.ts (open, reconnect, watchdog). One object per
 * `makeReplicaLink`; its fields change only on the event loop, at the points each part documents.
 */
import type { Clock, Deferred, Queue, Scope } from "effect"
import type { Counter } from "../../core/metrics.ts"
import type { Connection } from "../../net/connection.ts"
import type { DirtyBitmap } from "../../store/dirtyBitmap.ts"
import { MessageType, SharedBodyEncoder, type CompressionGovernor, type Frame } from "../../wire/index.ts"
import type { OpenReply } from "../protocol.ts"
import type { LinkFailure, ReplicaLinkOptions, ReplicaState } from "./options.ts"

export interface Pending {
  readonly frame: Frame
  readonly done: Deferred.Deferred<void, LinkFailure>
  /** Clock time when it was queued: the watchdog fails the link when the oldest gets too old. */
  readonly queuedAtMs: number
  /** A Verify's answer: the replica's CRC-32C of the region. */
  readonly checksum?: Deferred.Deferred<number, LinkFailure>
}

export interface LinkState {
  readonly options: ReplicaLinkOptions
  state: ReplicaState
  /** Marked in sync (a full copy): every write waits for it while it is not failed. */
  synced: boolean
  /** The replica recorded itself complete for this session (CompleteAck). */
  completedSession: boolean
  /** The replica's answer to the last Open. */
  opened: OpenReply | undefined
  /** The incarnation from the OpenAck the current connection was attached on. */
  attachedIncarnation: number | undefined
  failure: LinkFailure | undefined
  connection: Connection | undefined
  nextSequence: number
  /** Resolved once: a frame's counters are bumped without building a series key per frame. */
  readonly framesOut: Counter | undefined
  readonly bytesOut: Counter | undefined
  syncBytes: number
  reconnectCount: number
  /** Frames sent and not acknowledged, by sequence (insertion order is sequence order). */
  readonly pending: Map<number, Pending>
  compress: boolean
  governor: CompressionGovernor | undefined
  /** This link's identity for the shared body encoder. */
  readonly bodyUser: object
  /** The master's capacity: grown by `grow` (online resize); the region size stays the link's own. */
  sizeBytes: number
  /** The size the last Open told the replica. */
  openedAtBytes: number
  readonly dirty: DirtyBitmap
  /**
   * What the replica may lose in a power loss: data frames since its last acknowledged fdatasync
   * (Flush or Complete). Owed to it whenever the link fails, so a copy that restarted within
   * this session is caught up by delta without trusting its page cache.
   */
  sinceFlush: DirtyBitmap
  readonly flushing: Array<{ readonly sequence: number; readonly regions: DirtyBitmap }>
  /** Connections that dropped, for the supervisor (connect.ts) to reconnect. */
  readonly lost: Queue.Queue<Connection>
  readonly scope: Scope.Scope
  readonly clock: Clock.Clock
}

/**
 * Encode once for every replica: the links of a write share its encoded body (lz4 + checksum).
 * The encoding is forgotten whenever a write may have completed (any link receives a frame,
 * attaches or fails), so a caller reusing its buffer never gets a stale one (lib/wire/bodyEncoder.ts).
 */
export const sharedBodies = new SharedBodyEncoder()

/** Frames that carry volume data (their regions are owed when they may not have been applied). */
export const isDataFrame = (type: MessageType) => type === MessageType.Write || type === MessageType.SyncChunk
