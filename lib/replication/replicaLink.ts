/**
 * The master's view of one replica: its connection, its in-flight frames, its state. This module
 * is the link's public face; its parts are link/state.ts, link/frames.ts (queueing, acks, failure)
 * and link/connect.ts (open, reconnect, watchdog).
 *
 * Frames are numbered per link and kept until acknowledged. The connection is one ordered
 * stream, so the replica applies them in the master's order. When the connection drops the link
 * reconnects with backoff (Effect `Schedule`) and resends every unacknowledged frame in order —
 * re-applying a suffix of writes in order leaves the same bytes — so a reset costs a pause, not a
 * resync. A replica that does not acknowledge within the ack timeout (or cannot be reached within
 * it) is marked `failed`: its pending frames are failed, the regions they touched are marked in
 * its dirty bitmap for a later delta catch-up, and the volume decides by its failure mode.
 */
import { Clock, Deferred, Effect, Queue, Scope } from "effect"
import { assert } from "../core/assert.ts"
import { dirtyRegionBytesFor } from "../core/limits.ts"
import { DirtyBitmap, type BitmapError } from "../store/dirtyBitmap.ts"
import { CompressionGovernor, MessageType } from "../wire/index.ts"
import type { Connection } from "../net/connection.ts"
import type { OpenReply } from "./protocol.ts"
import { makeOpeners, startLink, supervise, watchdog } from "./link/connect.ts"
import { adoptBody, closeLink, enqueueFrame, enqueueVerify, failLink } from "./link/frames.ts"
import type { LinkState } from "./link/state.ts"
import type { LinkFailure, ReplicaLinkOptions, ReplicaState, ReplicaTarget } from "./link/options.ts"

export { LinkFailure, pendingFramesPerReplicaMax, type ReplicaLinkOptions, type ReplicaState, type ReplicaTarget } from "./link/options.ts"

export interface ReplicaLink {
  readonly target: ReplicaTarget
  readonly state: () => ReplicaState
  readonly failure: () => LinkFailure | undefined
  /** Connects and opens the volume; the link is `syncing` (or `in-sync` when `startInSync`) or `failed` afterwards. */
  readonly start: (startInSync: boolean) => Effect.Effect<void>
  /** The replica's answer to the last Open (fresh copy? its activity log). */
  readonly lastOpen: () => OpenReply | undefined
  /**
   * The incarnation of the replica's process whose connection the link uses (from the OpenAck it
   * was attached on; kept while a reconnect is under way): the process that acknowledges its frames.
   */
  readonly incarnation: () => number | undefined
  /** Marks the copy complete: from now on every write waits for this replica. */
  readonly markInSync: () => void
  /** In sync and not failed: every write waits for this replica (also while it reconnects). */
  readonly inSync: () => boolean
  /** The replica recorded itself complete for this session (CompleteAck) and is still in sync: it may be recorded in sync. */
  readonly completed: () => boolean
  /** Called once the replica acknowledged Complete. */
  readonly markCompleted: () => void
  /** Acks of everything queued so far (for the end of a resync). */
  readonly pendingAcks: () => ReadonlyArray<Deferred.Deferred<void, LinkFailure>>
  /** Synchronously queues a frame (Write/Flush/SyncChunk) for an in-sync link; undefined if the link is failed. */
  readonly enqueue: (type: MessageType, offset: number, body: Uint8Array) => Deferred.Deferred<void, LinkFailure> | undefined
  /**
   * Synchronously queues a Verify of `length` bytes at `offset` (an in-sync or syncing link): the
   * replica answers with its CRC-32C of the region after applying every frame queued before it.
   * Undefined if the link is failed or still connecting.
   */
  readonly verify: (offset: number, length: number) => Deferred.Deferred<number, LinkFailure> | undefined
  /** The caller of the write behind `done` stops waiting (interrupted): the link keeps its own copy of the bytes from now on. */
  readonly adoptBody: (done: Deferred.Deferred<void, LinkFailure>) => void
  /** Waits for an ack, failing the link when none arrives within the ack timeout. */
  readonly awaitAck: (done: Deferred.Deferred<void, LinkFailure>) => Effect.Effect<void, LinkFailure>
  /** Regions written while this replica was not in sync (or possibly unapplied when it failed). */
  readonly dirty: DirtyBitmap
  readonly pendingCount: () => number
  /**
   * Covers a volume grown to `sizeBytes` (online resize): the bitmaps grow in place, the next Open
   * tells the new size. The caller queues the Resize frame itself (an in-sync or syncing link);
   * a link that opened at a smaller size queues one when it attaches. A size past the bitmaps'
   * reach (regionCountMax regions of this link's region size) is refused, nothing changed.
   */
  readonly grow: (sizeBytes: number) => BitmapError | undefined
  /** The size this link opens the replica's copy at (the master's capacity). */
  readonly sizeBytes: () => number
  /** Payload bytes sent in SyncChunk frames (resync traffic) since the link was made. */
  readonly syncBytesSent: () => number
  /** Reconnections after a dropped connection (replication retries). */
  readonly reconnects: () => number
  readonly drained: Effect.Effect<void>
  readonly fail: (failure: LinkFailure) => void
  /** Compresses the frames sent from now on, or stops (volume update of storageos.com/nocompress). */
  readonly setCompress: (on: boolean) => void
  readonly close: Effect.Effect<void>
}

export const makeReplicaLink = (options: ReplicaLinkOptions): Effect.Effect<ReplicaLink, never, Scope.Scope> =>
  Effect.gen(function* () {
    const regionBytes = dirtyRegionBytesFor(options.sizeBytes, options.dirtyRegionBytes)
    const lost = yield* Queue.unbounded<Connection>()
    const s: LinkState = {
      options, state: "connecting", synced: false, completedSession: false, opened: undefined, attachedIncarnation: undefined,
      failure: undefined, connection: undefined, nextSequence: 1,
      framesOut: options.metrics?.counter("replivol_network_frames_total", { volume: options.volume, direction: "out" }),
      bytesOut: options.metrics?.counter("replivol_network_bytes_total", { volume: options.volume, direction: "out" }),
      syncBytes: 0, reconnectCount: 0, pending: new Map(), compress: options.compress,
      governor: options.compress ? new CompressionGovernor() : undefined, bodyUser: {},
      sizeBytes: options.sizeBytes, openedAtBytes: options.sizeBytes,
      dirty: new DirtyBitmap(options.sizeBytes, regionBytes), sinceFlush: new DirtyBitmap(options.sizeBytes, regionBytes), flushing: [],
      lost, scope: yield* Effect.scope, clock: yield* Clock.Clock,
    }
    const { reconnect, first } = makeOpeners(s)
    yield* Effect.forkIn(supervise(s, reconnect), s.scope)
    yield* Effect.forkIn(watchdog(s), s.scope)

    return {
      target: options.target,
      state: () => s.state,
      failure: () => s.failure,
      start: (startInSync: boolean) => startLink(s, first, startInSync),
      lastOpen: () => s.opened,
      incarnation: () => s.attachedIncarnation,
      markInSync: () => {
        assert(s.state === "syncing" || s.state === "reconnecting", `only a syncing link becomes in-sync (was ${s.state})`)
        s.synced = true
        if (s.state === "syncing") s.state = "in-sync"
      },
      inSync: () => s.synced && s.state !== "failed",
      completed: () => s.completedSession && s.synced && s.state !== "failed",
      markCompleted: () => {
        assert(s.synced && s.state !== "failed", "only an in-sync link completes")
        s.completedSession = true
      },
      pendingAcks: () => [...s.pending.values()].map((p) => p.done),
      enqueue: (type: MessageType, offset: number, body: Uint8Array) => enqueueFrame(s, type, offset, body),
      verify: (offset: number, length: number) => enqueueVerify(s, offset, length),
      adoptBody: (done) => adoptBody(s, done),
      /** Waits for an ack; the link's watchdog fails the link (and so this wait) when acks stop. */
      awaitAck: (done) => Deferred.await(done),
      dirty: s.dirty,
      pendingCount: () => s.pending.size,
      grow: (next) => {
        // Every bitmap of the link the same way, so they keep one region size and merge.
        const error = s.dirty.grow(next) ?? s.sinceFlush.grow(next) ?? s.flushing.map(({ regions }) => regions.grow(next)).find((e) => e !== undefined)
        if (error === undefined) s.sizeBytes = next
        return error
      },
      sizeBytes: () => s.sizeBytes,
      syncBytesSent: () => s.syncBytes,
      reconnects: () => s.reconnectCount,
      drained: Effect.suspend(() => s.connection?.link.drained ?? Effect.void),
      fail: (failure) => failLink(s, failure),
      setCompress: (on) => {
        s.compress = on
        s.governor = on ? (s.governor ?? new CompressionGovernor()) : undefined
      },
      close: closeLink(s),
    } satisfies ReplicaLink
  })
