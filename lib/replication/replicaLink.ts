/**
 * The master's view of one replica: its connection, its in-flight frames, its state.
 *
 * Frames are numbered per link and kept until acknowledged. The connection is one ordered
 * stream, so the replica applies them in the master's order. When the connection drops the link
 * reconnects with backoff (Effect `Schedule`) and resends every unacknowledged frame in order —
 * re-applying a suffix of writes in order leaves the same bytes — so a reset costs a pause, not a
 * resync. A replica that does not acknowledge within the ack timeout (or cannot be reached within
 * it) is marked `failed`: its pending frames are failed, the regions they touched are marked in
 * its dirty bitmap for a later delta catch-up, and the volume decides by its failure mode.
 */
import { Clock, Deferred, Effect, Queue, Schedule, Scope } from "effect"
import { assert } from "../core/assert.ts"
import { copyBytes } from "../core/bytes.ts"
import { dirtyRegionBytesFor, inflightWritesPerReplicaMax } from "../core/limits.ts"
import { DirtyBitmap, type BitmapError } from "../store/dirtyBitmap.ts"
import { CompressionGovernor, encodeJsonBody, ErrorCode, makeFrame, MessageType, messageTypeName, SharedBodyEncoder, type Frame } from "../wire/index.ts"
import type { Connection } from "../net/connection.ts"
import type { Metrics } from "../core/metrics.ts"
import type { Address } from "../net/Transport.ts"
import { decodeOpenReply, decodeText, type OpenReply } from "./protocol.ts"
import { followed } from "./copyIdentity.ts"

/**
 * `connecting`: dialling / opening; `syncing`: receiving live writes while its copy catches up;
 * `in-sync`: a full copy, waited for by every write; `reconnecting`: an in-sync replica whose
 * connection dropped, still waited for until the ack timeout; `failed`: not waited for, dirty
 * regions tracked.
 */
/** Frames one replica may have unacknowledged; in-sync replicas stay far below (the volume bounds writes in flight). */
export const pendingFramesPerReplicaMax = inflightWritesPerReplicaMax * 4

export type ReplicaState = "connecting" | "syncing" | "in-sync" | "reconnecting" | "failed"

export interface ReplicaTarget {
  readonly node: string
  readonly address: Address
}

export class LinkFailure {
  readonly _tag = "LinkFailure"
  constructor(
    readonly reason: "ack-timeout" | "unreachable" | "refused-connection" | "stale-epoch" | "refused" | "store" | "closed" | "overloaded" | "lost-copy" | "overruled",
    readonly message: string,
  ) {}
}

interface Pending {
  readonly frame: Frame
  readonly done: Deferred.Deferred<void, LinkFailure>
  /** Clock time when it was queued: the watchdog fails the link when the oldest gets too old. */
  readonly queuedAtMs: number
  /** A Verify's answer: the replica's CRC-32C of the region. */
  readonly checksum?: Deferred.Deferred<number, LinkFailure>
}

export interface ReplicaLinkOptions {
  readonly target: ReplicaTarget
  readonly volume: string
  readonly volumeId: bigint
  readonly sizeBytes: number
  readonly epoch: number
  /** The volume's unique id and this master session: sent in Open, checked on every reconnect. */
  readonly uid: string
  readonly generation: string
  readonly masterName: string
  readonly compress: boolean
  readonly ackTimeoutMs: number
  readonly reconnectBaseMs: number
  readonly reconnectCeilingMs: number
  readonly dirtyRegionBytes: number
  readonly connect: Effect.Effect<Connection, unknown>
  readonly metrics?: Metrics
  /** Called once when the link fails (state already `failed`). */
  readonly onFailed: (failure: LinkFailure) => void
}

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

/**
 * Encode once for every replica: the links of a write share its encoded body (lz4 + checksum).
 * The encoding is forgotten whenever a write may have completed (any link receives a frame,
 * attaches or fails), so a caller reusing its buffer never gets a stale one (lib/wire/bodyEncoder.ts).
 */
const sharedBodies = new SharedBodyEncoder()

/** Frames that carry volume data (their regions are owed when they may not have been applied). */
const isDataFrame = (type: MessageType) => type === MessageType.Write || type === MessageType.SyncChunk

const describeAnswer = (answer: OpenReply | undefined) =>
  answer === undefined ? "no answer"
    : `it follows epoch ${answer.identity.epoch} session ${answer.identity.generation ?? "(none)"}, state ${answer.identity.state}${answer.activity === "all" ? ", recent writes unknown" : ""}`

export const makeReplicaLink = (options: ReplicaLinkOptions): Effect.Effect<ReplicaLink, never, Scope.Scope> =>
  Effect.gen(function* () {
    let state: ReplicaState = "connecting"
    let synced = false
    let completedSession = false
    let opened: OpenReply | undefined
    let attachedIncarnation: number | undefined
    let failure: LinkFailure | undefined
    let connection: Connection | undefined
    let nextSequence = 1
    // Resolved once: a frame's counters are bumped without building a series key per frame.
    const framesOut = options.metrics?.counter("replivol_network_frames_total", { volume: options.volume, direction: "out" })
    const bytesOut = options.metrics?.counter("replivol_network_bytes_total", { volume: options.volume, direction: "out" })
    let syncBytes = 0
    let reconnectCount = 0
    const pending = new Map<number, Pending>()
    let compress = options.compress
    let governor = compress ? new CompressionGovernor() : undefined
    const bodyUser = {}
    // The master's capacity: grown by `grow` (online resize); the region size stays the link's own.
    let sizeBytes = options.sizeBytes
    /** The size the last Open told the replica. */
    let openedAtBytes = sizeBytes
    const regionBytes = dirtyRegionBytesFor(options.sizeBytes, options.dirtyRegionBytes)
    const dirty = new DirtyBitmap(options.sizeBytes, regionBytes)
    // What the replica may lose in a power loss: data frames since its last acknowledged fdatasync
    // (Flush or Complete). Owed to it whenever the link fails, so a copy that restarted within
    // this session is caught up by delta without trusting its page cache.
    let sinceFlush = new DirtyBitmap(options.sizeBytes, regionBytes)
    const flushing: Array<{ readonly sequence: number; readonly regions: DirtyBitmap }> = []
    const lost = yield* Queue.unbounded<Connection>()
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock

    const markPendingDirty = () => {
      for (const { frame } of pending.values()) if (isDataFrame(frame.type) && frame.length > 0) dirty.mark(frame.offset, frame.length)
      dirty.merge(sinceFlush)
      for (const { regions } of flushing) dirty.merge(regions)
      sinceFlush.clearAll()
      flushing.length = 0
    }

    /** Tracks data frames until an fdatasync on the replica covers them. */
    const trackUnflushed = (type: MessageType, offset: number, length: number, sequence: number) => {
      if (isDataFrame(type) && length > 0) sinceFlush.mark(offset, length)
      else if ((type === MessageType.Flush || type === MessageType.Complete) && sinceFlush.dirtyRegionCount > 0) {
        flushing.push({ sequence, regions: sinceFlush })
        // The link's current region size (a resize may have coarsened it).
        sinceFlush = new DirtyBitmap(sizeBytes, dirty.regionBytes)
      }
    }
    const flushAcknowledged = (sequence: number) => {
      while (flushing.length > 0 && flushing[0]!.sequence <= sequence) flushing.shift()
    }

    const fail = (why: LinkFailure) => {
      sharedBodies.forget()
      if (state === "failed") return
      state = "failed"
      synced = false
      completedSession = false
      failure = why
      markPendingDirty()
      const waiting = [...pending.values()]
      pending.clear()
      connection?.close(`replica ${options.target.node} failed: ${why.message}`)
      connection = undefined
      // The owner hears of the failure before any waiter: a write that waited for this replica
      // must find the failure's record under way (masterVolume's awaitReplica), not miss it and
      // be acknowledged while the record still calls the replica in sync (cluster simulator seed 127).
      options.onFailed(why)
      for (const { done, checksum } of waiting) {
        Deferred.doneUnsafe(done, Effect.fail(why))
        if (checksum) Deferred.doneUnsafe(checksum, Effect.fail(why))
      }
    }

    const onFrame = (from: Connection) => (frame: Frame) => {
      sharedBodies.forget()
      if (from !== connection) return
      if (frame.type === MessageType.Error) {
        const text = decodeText(frame.body)
        if (frame.aux === ErrorCode.StaleEpoch) return fail(new LinkFailure("stale-epoch", `replica ${options.target.node} holds a newer epoch: ${text}`))
        if (frame.aux === ErrorCode.StoreFailed) return fail(new LinkFailure("store", `replica ${options.target.node} could not store a write: ${text}`))
        return fail(new LinkFailure("refused", `replica ${options.target.node} refused frame ${frame.sequence}: ${text}`))
      }
      if (frame.type !== MessageType.WriteAck && frame.type !== MessageType.FlushAck && frame.type !== MessageType.SyncAck && frame.type !== MessageType.CompleteAck && frame.type !== MessageType.VerifyReply && frame.type !== MessageType.ResizeAck) return
      const entry = pending.get(frame.sequence)
      if (!entry) return
      // An answer of another kind than its request (a VerifyReply to a Write, an ack to a Verify) is a broken peer.
      if ((frame.type === MessageType.VerifyReply) !== (entry.frame.type === MessageType.Verify)) {
        return fail(new LinkFailure("refused", `replica ${options.target.node} answered ${messageTypeName(entry.frame.type)} ${frame.sequence} with ${messageTypeName(frame.type)}`))
      }
      pending.delete(frame.sequence)
      if (entry.checksum) Deferred.doneUnsafe(entry.checksum, Effect.succeed(new DataView(frame.body.buffer, frame.body.byteOffset, frame.body.length).getUint32(0, true)))
      if (frame.type === MessageType.FlushAck || frame.type === MessageType.CompleteAck) flushAcknowledged(frame.sequence)
      Deferred.doneUnsafe(entry.done, Effect.void)
    }

    /** Dial, authenticate, open; resolves with the connection once the replica accepted our epoch. */
    const openOnce: Effect.Effect<Connection, LinkFailure> = Effect.gen(function* () {
      opened = undefined
      const conn = yield* options.connect.pipe(Effect.mapError((cause) =>
        (cause as { reason?: string }).reason === "refused"
          ? new LinkFailure("refused-connection", `replica ${options.target.node} refused the connection (nothing listens there): ${(cause as { message?: string }).message ?? String(cause)}`)
          : new LinkFailure("unreachable", `cannot reach replica ${options.target.node}: ${(cause as { message?: string }).message ?? String(cause)}`)))
      const reply = Deferred.makeUnsafe<void, LinkFailure>()
      conn.onFrame((frame) => {
        if (frame.type === MessageType.OpenAck) {
          const parsed = decodeOpenReply(frame.body)
          if (typeof parsed !== "string") opened = parsed
          Deferred.doneUnsafe(reply, typeof parsed === "string" ? Effect.fail(new LinkFailure("refused", parsed)) : Effect.void)
        } else if (frame.type === MessageType.Error) {
          // A replica that cannot store (a full disk) is not asked again and again: its reason is kept.
          const reason = frame.aux === ErrorCode.StaleEpoch ? "stale-epoch" : frame.aux === ErrorCode.StoreFailed ? "store" : "refused"
          Deferred.doneUnsafe(reply, Effect.fail(new LinkFailure(reason, `replica ${options.target.node} refused to open ${options.volume}: ${decodeText(frame.body)}`)))
        }
      })
      conn.link.onClose((why) => Deferred.doneUnsafe(reply, Effect.fail(new LinkFailure("closed", `connection to ${options.target.node} closed: ${why}`))))
      openedAtBytes = sizeBytes
      conn.send(makeFrame(MessageType.Open, { volumeId: options.volumeId, epoch: options.epoch, body: encodeJsonBody({ volume: options.volume, sizeBytes, epoch: options.epoch, master: options.masterName, uid: options.uid, generation: options.generation }) }))
      yield* Deferred.await(reply).pipe(
        Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("ack-timeout", `replica ${options.target.node} did not answer the open within ${options.ackTimeoutMs} ms`)) }),
        Effect.onError(() => Effect.sync(() => conn.close("open failed"))),
      )
      return conn
    })

    const attach = (conn: Connection) => {
      sharedBodies.forget()
      connection = conn
      attachedIncarnation = opened?.incarnation
      conn.onFrame(onFrame(conn))
      conn.link.onClose(() => {
        if (connection === conn) {
          connection = undefined
          if (state === "in-sync" || state === "syncing") state = "reconnecting"
          Queue.offerUnsafe(lost, conn)
        }
      })
      // Resend everything unacknowledged, in sequence order (Map keeps insertion order).
      const frames = [...pending.values()].map((p) => p.frame)
      for (const frame of frames) conn.send(frame, compress)
    }

    const backoff = Schedule.exponential(options.reconnectBaseMs).pipe(
      (s) => Schedule.min([s, Schedule.spaced(options.reconnectCeilingMs)]),
    )

    /**
     * Reconnects within the ack timeout. Not retried: a stale epoch (permanent), and a refused
     * connection — nothing listens there any more (the replica's process is gone), so writes
     * should not wait the whole ack timeout for it; it catches up by delta when it returns.
     */
    const reconnect = openOnce.pipe(
      Effect.retry({ schedule: backoff, while: (e) => e.reason !== "stale-epoch" && e.reason !== "refused-connection" }),
      Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("unreachable", `replica ${options.target.node} could not be reached again within ${options.ackTimeoutMs} ms`)) }),
    )

    /** The copy answered that it still follows this master session and knows its recent writes. */
    const lineageOfLink = { uid: options.uid, epoch: options.epoch, generation: options.generation }
    const followsThisSession = () => opened !== undefined && opened.activity !== "all" && followed(opened.identity, lineageOfLink)

    const supervise = Effect.gen(function* () {
      for (;;) {
        yield* Queue.take(lost)
        if (state !== "reconnecting") continue
        const result = yield* Effect.result(reconnect)
        if (state !== "reconnecting") {
          if (result._tag === "Success") result.success.close("link no longer wanted")
          continue
        }
        if (result._tag === "Failure") fail(result.failure)
        else if (!followsThisSession()) {
          // The copy came back other than it left (restarted, wiped, replaced): resending the
          // unacknowledged frames is not enough. It is owed everything; the revive path decides.
          result.success.close("the copy lost its session")
          // Another lineage (wiped, replaced, restored) owes everything; a restart within this session owes what fail() marks.
          const otherLineage = opened === undefined || !followed(opened.identity, lineageOfLink)
          if (otherLineage) dirty.markAll()
          const owed = otherLineage ? "it gets a full sync" : "it is revived and sent every region this master has not seen flushed on it"
          fail(new LinkFailure("lost-copy", `replica ${options.target.node} came back without the writes of this session (${describeAnswer(opened)}); ${owed}`))
        } else {
          state = synced ? "in-sync" : "syncing"
          reconnectCount++
          options.metrics?.add("replivol_replication_retries_total", { volume: options.volume })
          attach(result.success)
        }
      }
    })
    yield* Effect.forkIn(supervise, scope)

    // One watchdog per link instead of a timer per write: frames are acknowledged in order, so
    // only the oldest pending frame's age matters.
    const watchdog = Effect.gen(function* () {
      for (;;) {
        yield* Effect.sleep(Math.max(1, Math.floor(options.ackTimeoutMs / 4)))
        if (state === "failed") continue
        const oldest = pending.values().next()
        if (!oldest.done && clock.currentTimeMillisUnsafe() - oldest.value.queuedAtMs > options.ackTimeoutMs) {
          fail(new LinkFailure("ack-timeout", `replica ${options.target.node} did not acknowledge within ${options.ackTimeoutMs} ms`))
        }
      }
    })
    yield* Effect.forkIn(watchdog, scope)

    /** The first open retries while the replica's node is still getting ready (not hosting yet, not listening yet). */
    const firstOpen = openOnce.pipe(
      Effect.retry({ schedule: backoff, while: (e) => e.reason === "refused" || e.reason === "refused-connection" || e.reason === "unreachable" || e.reason === "closed" }),
      Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("unreachable", `replica ${options.target.node} could not be opened within ${options.ackTimeoutMs} ms`)) }),
    )

    const start = (startInSync: boolean) => Effect.gen(function* () {
      state = "connecting"
      failure = undefined
      completedSession = false
      const result = yield* Effect.result(firstOpen)
      if (result._tag === "Failure") {
        state = "connecting"
        fail(result.failure)
        return
      }
      if (state !== "connecting") return result.success.close("link failed while opening")
      synced = startInSync
      state = synced ? "in-sync" : "syncing"
      attach(result.success)
      // The volume grew while this link was opening (no Resize was queued on it): tell the copy first.
      if (openedAtBytes < sizeBytes) enqueue(MessageType.Resize, sizeBytes, new Uint8Array(0))
    })

    const enqueue = (type: MessageType, offset: number, body: Uint8Array) => {
      if (state === "failed" || state === "connecting") {
        if (isDataFrame(type) && body.length > 0) dirty.mark(offset, body.length)
        return undefined
      }
      if (pending.size >= pendingFramesPerReplicaMax) {
        // A guard that should never fire: writes wait for an in-sync link, and for a syncing one
        // once it is half this far behind (master/writePipeline.ts `syncingBacklogFrames`). Fail it; its
        // dirty bitmap keeps what it missed for a delta catch-up.
        fail(new LinkFailure("overloaded", `replica ${options.target.node} fell ${pending.size} frames behind`))
        if (isDataFrame(type) && body.length > 0) dirty.mark(offset, body.length)
        return undefined
      }
      // A caller waits for an in-sync link's ack, so its buffer outlives the frame; for any other
      // link the caller may reuse it before the frame is sent or resent: keep a copy.
      const owned = type === MessageType.Write && !synced ? copyBytes(body) : body
      const frame = makeFrame(type, { volumeId: options.volumeId, epoch: options.epoch, sequence: nextSequence++, offset, body: owned })
      trackUnflushed(type, offset, body.length, frame.sequence)
      if (type === MessageType.SyncChunk) syncBytes += body.length
      framesOut?.inc()
      bytesOut?.inc(body.length)
      const done = Deferred.makeUnsafe<void, LinkFailure>()
      pending.set(frame.sequence, { frame, done, queuedAtMs: clock.currentTimeMillisUnsafe() })
      if (connection) connection.send(frame, compress, sharedBodies.encode(type, owned, bodyUser, governor))
      return done
    }

    const verify = (offset: number, length: number) => {
      if (state === "failed" || state === "connecting") return undefined
      if (pending.size >= pendingFramesPerReplicaMax) {
        fail(new LinkFailure("overloaded", `replica ${options.target.node} fell ${pending.size} frames behind`))
        return undefined
      }
      const frame = makeFrame(MessageType.Verify, { volumeId: options.volumeId, epoch: options.epoch, sequence: nextSequence++, offset, length })
      const done = Deferred.makeUnsafe<void, LinkFailure>()
      const checksum = Deferred.makeUnsafe<number, LinkFailure>()
      pending.set(frame.sequence, { frame, done, checksum, queuedAtMs: clock.currentTimeMillisUnsafe() })
      if (connection) connection.send(frame, false)
      return checksum
    }

    /** Waits for an ack; the link's watchdog fails the link (and so this wait) when acks stop. */
    const awaitAck = (done: Deferred.Deferred<void, LinkFailure>) => Deferred.await(done)

    const close = Effect.sync(() => {
      sharedBodies.forget()
      const conn = connection
      connection = undefined
      if (state !== "failed") {
        state = "failed"
        failure = new LinkFailure("closed", "the volume was closed")
        for (const { done, checksum } of pending.values()) {
          Deferred.doneUnsafe(done, Effect.fail(failure))
          if (checksum) Deferred.doneUnsafe(checksum, Effect.fail(failure))
        }
        pending.clear()
      }
      if (conn) {
        conn.send(makeFrame(MessageType.Close))
        conn.close("volume closed")
      }
    })

    return {
      target: options.target,
      state: () => state,
      failure: () => failure,
      start,
      lastOpen: () => opened,
      incarnation: () => attachedIncarnation,
      markInSync: () => {
        assert(state === "syncing" || state === "reconnecting", `only a syncing link becomes in-sync (was ${state})`)
        synced = true
        if (state === "syncing") state = "in-sync"
      },
      inSync: () => synced && state !== "failed",
      completed: () => completedSession && synced && state !== "failed",
      markCompleted: () => {
        assert(synced && state !== "failed", "only an in-sync link completes")
        completedSession = true
      },
      pendingAcks: () => [...pending.values()].map((p) => p.done),
      enqueue,
      verify,
      adoptBody: (done) => {
        for (const [sequence, entry] of pending) {
          if (entry.done !== done) continue
          if (isDataFrame(entry.frame.type)) pending.set(sequence, { ...entry, frame: { ...entry.frame, body: copyBytes(entry.frame.body) } })
          return
        }
      },
      awaitAck,
      dirty,
      pendingCount: () => pending.size,
      grow: (next) => {
        // Every bitmap of the link the same way, so they keep one region size and merge.
        const error = dirty.grow(next) ?? sinceFlush.grow(next) ?? flushing.map(({ regions }) => regions.grow(next)).find((e) => e !== undefined)
        if (error === undefined) sizeBytes = next
        return error
      },
      sizeBytes: () => sizeBytes,
      syncBytesSent: () => syncBytes,
      reconnects: () => reconnectCount,
      drained: Effect.suspend(() => connection?.link.drained ?? Effect.void),
      fail,
      setCompress: (on) => {
        compress = on
        governor = on ? (governor ?? new CompressionGovernor()) : undefined
      },
      close,
    } satisfies ReplicaLink
  })
