/**
 * The replica side: a node's hosted replica copies, and the per-connection loop that applies a
 * master's frames to them.
 *
 * Frames of one connection are taken in arrival order by one fiber, so overlapping writes land
 * in the master's order: writes start in that order without waiting for the one before
 * (`replicaApplyWritesMax` at once; the store orders overlapping ones), and every other frame
 * waits until the writes before it are applied. A frame whose epoch is lower than the one the replica holds
 * is refused with an Error frame (StaleEpoch) and not applied: a deposed master cannot write.
 * When a master opens a volume with a higher epoch, the replica adopts it (durably, in the
 * store's meta record) and closes the previous master's connection for that volume.
 */
import { Clock, Effect, Queue, Semaphore } from "effect"
import type { BlockStore } from "../store/BlockStore.ts"
import { encodeJsonBody, ErrorCode, makeFrame, MessageType, verifyReplyBodyBytes, type Frame } from "../wire/index.ts"
import { crc32c } from "../core/checksum.ts"
import type { Connection } from "../net/connection.ts"
import { decodeOpenRequest, volumeIdOf, type OpenRequest } from "./protocol.ts"
import { followed, identityOf, isCopyState, type CopyIdentity, type CopyState } from "./copyIdentity.ts"
import { isCount, isRecord } from "../core/guards.ts"
import { syncWindowChunks, type MasterVolume } from "./masterVolume.ts"
import { inflightWritesPerReplicaMax } from "../core/limits.ts"
import type { VolumeError } from "./errors.ts"
import type { Metrics } from "../core/metrics.ts"
import { ReplicationError } from "./errors.ts"

/** Frames queued on one connection before the replica stops reading it (the master's in-flight limit is lower). */
export const replicaQueueFramesMax = 4096

/**
 * Writes (Write, SyncChunk) of one connection being applied at once. They start in arrival order,
 * and a store applies overlapping writes in the order they start (BlockStore's ordering rule),
 * so a write on the thread pool does not hold up the next frame; every other frame waits until
 * the writes before it are applied (a Flush's fdatasync covers them, a Verify reads them).
 */
export const replicaApplyWritesMax = 64

export interface HostedReplicaStatus {
  readonly volume: string
  readonly sizeBytes: number
  readonly epoch: number
  readonly master: string | undefined
  readonly connected: boolean
  readonly writesApplied: number
  readonly bytesApplied: number
}

/** Client requests one connection may have in flight; the connection is not read further until one completes. */
export const clientRequestsInflightMax = 64

/**
 * Writes remembered per hosted volume for the activity log (DRBD's "AL"): a new master reconciles
 * these regions. A write can differ between copies only while it is unacknowledged by some copy;
 * a master has at most `inflightWritesPerReplicaMax` writes plus `syncWindowChunks` sync chunks
 * unacknowledged, and every copy applies them in order, so the last that many applied writes
 * cover every possible difference. Twice that, for margin.
 */
export const activityWritesMax = 2 * (inflightWritesPerReplicaMax + syncWindowChunks)
/** Ranges sent in an OpenAck; beyond this the replica answers "all" and the master compares everything. */
export const activityRangesMax = 2048

interface Hosted {
  /** What the copy's durable record says (copyIdentity.ts); changed only after the record is written. */
  identity: CopyIdentity
  /**
   * The activity log is incomplete: this host (re)opened a copy with history (after a restart the
   * ring is empty, but the copy may hold writes its peers lack, or have lost unflushed ones), or a
   * write or fdatasync failed. It answers "all" until a master opens it and syncs everything.
   */
  activityUnknown: boolean
  /** A write or fdatasync failed since the last Open: this copy may not claim Complete in this session. */
  damagedSinceOpen: boolean
  /**
   * A write or fdatasync failed since the copy was last recorded complete by a master's sync: it
   * may have lost writes it acknowledged (a failed fdatasync can drop the page cache), so it must
   * not count as in sync whatever the volume record says (`damaged`; cluster/agent.ts).
   */
  damagedSinceComplete: boolean
  /** Ring of the last `activityWritesMax` applied writes, as [offset, length]. */
  readonly activity: Array<readonly [number, number]>
  activityNext: number
  readonly volume: string
  readonly id: bigint
  /** Its size is the copy's (`store.sizeBytes`): grown by a Resize or by an Open of a bigger size. */
  readonly store: BlockStore
  epoch: number
  owner: Connection | undefined
  master: string | undefined
  writesApplied: number
  bytesApplied: number
}

export interface ReplicaHost {
  /**
   * Hosts a copy; with `uid`, a copy recorded for another volume id is refused (`foreign-copy`).
   * `handedOver`: the copy was this process's master until a planned hand-over that drained every
   * write onto the in-sync replica now taking over, so it holds nothing that replica lacks and lost
   * nothing (same process, same page cache): its activity log starts known and empty, and the new
   * master catches it up by delta instead of copying it in full.
   */
  readonly host: (volume: string, store: BlockStore, uid?: string, handedOver?: boolean) => Effect.Effect<void, ReplicationError>
  readonly unhost: (volume: string) => Effect.Effect<void>
  readonly isHosted: (volume: string) => boolean
  /** Serves one authenticated connection until it closes. */
  readonly serve: (connection: Connection) => Effect.Effect<void>
  readonly status: () => ReadonlyArray<HostedReplicaStatus>
  /** The activity log of a hosted copy ("all" when not hosted here: nothing is known). */
  readonly activity: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
  readonly detach: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
  /** A write or fdatasync of this hosted copy failed since a master's sync last recorded it complete. */
  readonly damaged: (volume: string) => boolean
  /** Rejections seen (typed reasons), for tests and metrics. */
  readonly rejections: () => Readonly<Record<string, number>>
}

const encoder = new TextEncoder()

export interface ReplicaHostOptions {
  readonly nodeName: string
  readonly metrics?: Metrics
  /** The master volumes this node serves to remote clients (the cluster's agent keeps them). */
  readonly lookupMaster?: (volume: string) => MasterVolume | undefined
  /**
   * The master of `volume` at `epoch` once it serves, waiting a bounded time while it may still
   * open here (node.ts); undefined at once when this node cannot be it (a newer or closed epoch).
   */
  readonly awaitMaster?: (volume: string, epoch: number) => Effect.Effect<MasterVolume | undefined>
  /** The process incarnation told in every OpenAck (the master records a copy in sync with the process that holds it). */
  readonly incarnation?: number
}

export const makeReplicaHost = (options: ReplicaHostOptions): ReplicaHost => {
  const hosted = new Map<bigint, Hosted>()
  const rejected: Record<string, number> = {}
  const count = (reason: string) => void (rejected[reason] = (rejected[reason] ?? 0) + 1)

  const host = (volume: string, store: BlockStore, uid?: string, handedOver = false) =>
    Effect.gen(function* () {
      const id = volumeIdOf(volume)
      const existing = hosted.get(id)
      if (existing) {
        return yield* new ReplicationError({ reason: "already-hosted", volume, message: existing.volume === volume ? `volume ${volume} is already hosted on ${options.nodeName}` : `volume ${volume} has the same id as hosted volume ${existing.volume}; rename one` })
      }
      const meta = yield* store.readMeta.pipe(Effect.mapError((cause) => new ReplicationError({ reason: "store", volume, message: `cannot read the replica's meta record: ${cause.message}`, cause })))
      // A record of a smaller size is a copy that grew and crashed before its record was rewritten.
      if (meta && (meta.volume !== volume || meta.sizeBytes > store.sizeBytes)) {
        return yield* new ReplicationError({ reason: "bad-request", volume, message: `the store holds ${meta.volume} (${meta.sizeBytes} bytes), not ${volume} (${store.sizeBytes} bytes)` })
      }
      if (uid !== undefined && meta?.uid !== undefined && meta.uid !== uid) {
        return yield* new ReplicationError({ reason: "foreign-copy", volume, message: `the copy of ${volume} on ${options.nodeName} belongs to volume id ${meta.uid}, not ${uid} (the volume was deleted and created again); remove the copy first` })
      }
      const entry: Hosted = {
        identity: identityOf(meta, store.createdEmpty === true), activityUnknown: store.createdEmpty !== true && !handedOver, damagedSinceOpen: false, damagedSinceComplete: false,
        activity: [], activityNext: 0, volume, id, store, epoch: meta?.epoch ?? 0, owner: undefined, master: undefined, writesApplied: 0, bytesApplied: 0,
      }
      // A copy created here is provably all zeros: say so durably, so a restart still knows it.
      if (meta === undefined && entry.identity.state === "empty") yield* persistIdentity(entry, { ...entry.identity, uid })
      hosted.set(id, entry)
    })

  const unhost = (volume: string) =>
    Effect.sync(() => {
      const entry = hosted.get(volumeIdOf(volume))
      if (!entry || entry.volume !== volume) return
      hosted.delete(entry.id)
      entry.owner?.close(`volume ${volume} is no longer hosted on ${options.nodeName}`)
    })

  const serve = (connection: Connection) => serveConnection(connection, hosted, options, count)

  const status = () =>
    [...hosted.values()].map((h) => ({
      volume: h.volume, sizeBytes: h.store.sizeBytes, epoch: h.epoch, master: h.master,
      connected: h.owner !== undefined && h.owner.link.isOpen(), writesApplied: h.writesApplied, bytesApplied: h.bytesApplied,
    }))

  const activity = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    return entry && entry.volume === volume ? activityRanges(entry) : "all"
  }

  /** Stops hosting at once (no frame is applied after this) and returns the copy's activity log. */
  const detach = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    if (!entry || entry.volume !== volume) return "all" as const
    hosted.delete(entry.id)
    entry.owner?.close(`volume ${volume} is no longer hosted as a replica on ${options.nodeName}`)
    return activityRanges(entry)
  }

  const damaged = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    return entry?.volume === volume && entry.damagedSinceComplete
  }
  return { activity, detach, damaged, host, unhost, isHosted: (volume) => hosted.get(volumeIdOf(volume))?.volume === volume, serve, status, rejections: () => ({ ...rejected }) }
}

const storeError = (entry: Hosted, what: string) => (cause: { readonly message: string }) =>
  new ReplicationError({ reason: "store", volume: entry.volume, message: `cannot record the identity of ${entry.volume}'s copy (${what}): ${cause.message}`, cause })

/** Writes the copy's identity record (durable, atomic), then adopts it in memory. */
const persistIdentity = (entry: Hosted, identity: CopyIdentity): Effect.Effect<void, ReplicationError> =>
  Effect.gen(function* () {
    const state: CopyState = identity.state === "unknown" ? "incomplete" : identity.state
    const updatedAtMs = yield* Clock.currentTimeMillis
    yield* entry.store.writeMeta({
      volume: entry.volume, sizeBytes: entry.store.sizeBytes, epoch: identity.epoch, role: "replica", state, updatedAtMs,
      ...(identity.uid === undefined ? {} : { uid: identity.uid }),
      ...(identity.generation === undefined ? {} : { generation: identity.generation }),
    }).pipe(Effect.mapError(storeError(entry, state)))
    entry.identity = { ...identity, state }
  })

/**
 * After a failed write or fdatasync the copy cannot vouch for what it holds: its activity log
 * becomes unknown (the next master session syncs it in full) and its record says incomplete.
 */
const markDamaged = (entry: Hosted) =>
  Effect.gen(function* () {
    entry.activityUnknown = true
    entry.damagedSinceOpen = true
    entry.damagedSinceComplete = true
    if (entry.identity.state !== "incomplete") yield* Effect.ignore(persistIdentity(entry, { ...entry.identity, state: "incomplete" }))
  })

/**
 * The identity a copy takes when `request` opens it: a reconnect of the session it follows keeps
 * its state; any other session (or a copy that cannot vouch for its recent writes) is owed a sync.
 */
const identityOnOpen = (entry: Hosted, request: OpenRequest): CopyIdentity => {
  const lineage = { uid: request.uid ?? entry.identity.uid ?? "", epoch: request.epoch, generation: request.generation ?? "" }
  if (!entry.activityUnknown && followed(entry.identity, lineage)) return entry.identity
  return { uid: request.uid ?? entry.identity.uid, epoch: request.epoch, generation: request.generation, state: "incomplete" }
}

/** Decodes the body of a Complete frame: the session the master says the copy now holds in full. */
const decodeComplete = (body: Uint8Array): { uid: string; epoch: number; generation: string } | undefined => {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(body))
    if (isRecord(value) && typeof value.uid === "string" && typeof value.generation === "string" && isCount(value.epoch))
      return { uid: value.uid, epoch: value.epoch, generation: value.generation }
  } catch {
    // fall through
  }
  return undefined
}

/** The activity log as sorted, merged ranges; "all" when it does not fit an OpenAck. */
const activityRanges = (entry: Hosted): Array<[number, number]> | "all" => {
  if (entry.activityUnknown) return "all"
  const sorted = [...entry.activity].sort((a, b) => a[0] - b[0])
  const merged: Array<[number, number]> = []
  for (const [offset, length] of sorted) {
    const last = merged[merged.length - 1]
    if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + length - last[0])
    else merged.push([offset, length])
  }
  return merged.length > activityRangesMax ? "all" : merged
}

const reply = (connection: Connection, request: Frame, type: MessageType, epoch: number, body?: Uint8Array) =>
  connection.send(makeFrame(type, { volumeId: request.volumeId, epoch, sequence: request.sequence, ...(body ? { body } : {}) }))

const replyError = (connection: Connection, request: Frame, epoch: number, code: ErrorCode, text: string) =>
  connection.send(makeFrame(MessageType.Error, { volumeId: request.volumeId, epoch, sequence: request.sequence, aux: code, body: encoder.encode(text) }))

const clientErrorCode = (error: VolumeError): ErrorCode =>
  error._tag === "OutOfRange" ? ErrorCode.OutOfRange : error._tag === "VolumeIoError" ? ErrorCode.StoreFailed : ErrorCode.Busy

/** One client request on a volume this node masters; replies when it completes (many run at once). */
const serveClientFrame = (connection: Connection, volume: MasterVolume, frame: Frame): Effect.Effect<void> => {
  const operation: Effect.Effect<Uint8Array | undefined, VolumeError> =
    frame.type === MessageType.Write ? Effect.as(volume.write(frame.offset, frame.body), undefined)
    : frame.type === MessageType.Flush ? Effect.as(volume.flush, undefined)
    : volume.read(frame.offset, frame.length)
  return Effect.result(operation).pipe(Effect.map((result) => {
    if (result._tag === "Failure") {
      const error = result.failure
      const reason = "reason" in error ? error.reason : "out-of-range"
      replyError(connection, frame, volume.epoch, clientErrorCode(error), JSON.stringify({ tag: error._tag, reason, message: error.message }))
    } else if (frame.type === MessageType.Read) {
      connection.send(makeFrame(MessageType.ReadReply, { volumeId: frame.volumeId, epoch: volume.epoch, sequence: frame.sequence, offset: frame.offset, body: result.success! }))
    } else reply(connection, frame, frame.type === MessageType.Write ? MessageType.WriteAck : MessageType.FlushAck, volume.epoch)
  }))
}

const serveConnection = (
  connection: Connection,
  hosted: Map<bigint, Hosted>,
  options: ReplicaHostOptions,
  count: (reason: string) => void,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const nodeName = options.nodeName
    const clientOpened = new Map<bigint, string>()
    const clientSlots = yield* Semaphore.make(clientRequestsInflightMax)
    const queue = yield* Queue.bounded<Frame | undefined>(replicaQueueFramesMax + 1)
    let queued = 0
    connection.onFrame((frame) => {
      if (queued >= replicaQueueFramesMax) return connection.close("replica receive queue is full")
      queued++
      Queue.offerUnsafe(queue, frame)
    })
    connection.link.onClose(() => void Queue.offerUnsafe(queue, undefined))
    const opened = new Set<bigint>()
    const handleOpen = (frame: Frame) => Effect.gen(function* () {
      const request = decodeOpenRequest(frame.body)
      if (typeof request === "string") {
        count("bad-open")
        replyError(connection, frame, 0, ErrorCode.BadFrame, request)
        return
      }
      if (request.role === "client") {
        const named = volumeIdOf(request.volume) === frame.volumeId
        const master = !named ? undefined : options.awaitMaster ? yield* options.awaitMaster(request.volume, request.epoch) : options.lookupMaster?.(request.volume)
        // A client located the master of one volume instance at one epoch; a master of another
        // epoch (an older instance of a name deleted and created again, not closed yet) is not it.
        if (!master || master.isFenced() || master.epoch !== request.epoch) {
          count("not-master")
          replyError(connection, frame, 0, ErrorCode.NotReplica, JSON.stringify({ tag: "NotMaster", reason: "not-master", message: `${nodeName} is not serving ${request.volume} as master` }))
          return
        }
        clientOpened.set(frame.volumeId, request.volume)
        reply(connection, frame, MessageType.OpenAck, master.epoch, encodeJsonBody({ epoch: master.epoch, fresh: false, activity: [] }))
        return
      }
      const entry = hosted.get(frame.volumeId)
      if (!entry || entry.volume !== request.volume || volumeIdOf(request.volume) !== frame.volumeId) {
        count("unknown-volume")
        replyError(connection, frame, 0, ErrorCode.UnknownVolume, `volume ${request.volume} is not hosted on ${nodeName}`)
        return
      }
      if (request.epoch < entry.epoch) {
        count("stale-epoch")
        replyError(connection, frame, entry.epoch, ErrorCode.StaleEpoch, `epoch ${request.epoch} is older than ${entry.epoch} held by ${nodeName} for ${request.volume}`)
        return
      }
      if (request.uid !== undefined && entry.identity.uid !== undefined && request.uid !== entry.identity.uid) {
        count("foreign-copy")
        replyError(connection, frame, entry.epoch, ErrorCode.UnknownVolume, `the copy of ${request.volume} on ${nodeName} belongs to volume id ${entry.identity.uid}, not ${request.uid}`)
        return
      }
      // Never truncated: a master of a smaller size than this copy is refused (it grows first, then opens again).
      if (request.sizeBytes < entry.store.sizeBytes) {
        count("size-mismatch")
        replyError(connection, frame, entry.epoch, ErrorCode.BadFrame, `volume ${request.volume} is ${entry.store.sizeBytes} bytes here, more than the ${request.sizeBytes} bytes opened; a copy is never shrunk`)
        return
      }
      // The previous owner's frames are refused from here on, before the record's (async) write:
      // the answer covers every write that connection got applied or started (recorded at start).
      if (entry.owner && entry.owner !== connection) entry.owner.close(`superseded by ${request.master} at epoch ${request.epoch}`)
      entry.owner = connection
      // The answer is what the copy held before this open; the record moves first, then the reply.
      const answer = {
        epoch: entry.epoch, fresh: entry.identity.state === "empty", activity: activityRanges(entry), identity: entry.identity,
        ...(options.incarnation === undefined ? {} : { incarnation: options.incarnation }),
      }
      const next = identityOnOpen(entry, request)
      // A copy that missed a resize grows (zeros past its old end, which is what the master's copy
      // held there when it grew; everything written there since is owed to it like any write).
      const grows = request.sizeBytes > entry.store.sizeBytes
      if (grows) {
        const grown = yield* Effect.result(entry.store.grow(request.sizeBytes))
        if (grown._tag === "Failure") {
          count(`store-grow-${grown.failure.reason}`)
          replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, `cannot grow the copy of ${request.volume} to ${request.sizeBytes} bytes: ${grown.failure.message}`)
          return
        }
      }
      if (next !== entry.identity || grows) {
        const persisted = yield* Effect.result(persistIdentity(entry, next))
        if (persisted._tag === "Failure") {
          count("store-meta")
          replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, persisted.failure.message)
          return
        }
      }
      entry.epoch = request.epoch
      entry.master = request.master
      opened.add(entry.id)
      reply(connection, frame, MessageType.OpenAck, entry.epoch, encodeJsonBody(answer))
      // Still "all" to every later Open until a Complete: an answer lost with its connection must
      // not let a restarted copy pass for one that kept its writes.
      entry.damagedSinceOpen = false
    })

    /** One Write or SyncChunk: applied, then acknowledged (or refused with the store's error). */
    const applyWrite = (frame: Frame, entry: Hosted) => Effect.gen(function* () {
      const result = yield* Effect.result(entry.store.write(frame.offset, frame.body))
      // A store never keeps the caller's bytes past the write: the body's memory may take the next frame.
      connection.recycle?.(frame.body)
      if (result._tag === "Failure") {
        count(`store-${result.failure.reason}`)
        yield* markDamaged(entry)
        replyError(connection, frame, entry.epoch, result.failure.reason === "out-of-range" ? ErrorCode.OutOfRange : ErrorCode.StoreFailed, result.failure.message)
        return
      }
      entry.writesApplied++
      options.metrics?.add("replivol_network_frames_total", { volume: entry.volume, direction: "in" })
      options.metrics?.add("replivol_network_bytes_total", { volume: entry.volume, direction: "in" }, frame.length)
      entry.bytesApplied += frame.length
      reply(connection, frame, frame.type === MessageType.Write ? MessageType.WriteAck : MessageType.SyncAck, entry.epoch)
    })

    /** Writes being applied (replicaApplyWritesMax at most); taking every slot waits until they are. */
    const applySlots = yield* Semaphore.make(replicaApplyWritesMax)
    const allApplied = applySlots.withPermits(replicaApplyWritesMax)(Effect.void)

    /**
     * Starts a write without waiting for it: in the activity log from the moment it starts (a write
     * still in flight on the thread pool when a new master's Open or a detach reads the log is
     * covered), then started at once (`startImmediately`: a synchronous store write is done when
     * this returns), in arrival order.
     */
    const startWrite = (frame: Frame, entry: Hosted) => Effect.andThen(applySlots.take(1), Effect.suspend(() => {
      if (entry.activity.length < activityWritesMax) entry.activity.push([frame.offset, frame.body.length])
      else entry.activity[entry.activityNext] = [frame.offset, frame.body.length]
      entry.activityNext = (entry.activityNext + 1) % activityWritesMax
      return Effect.asVoid(Effect.forkChild(Effect.ensuring(applyWrite(frame, entry), applySlots.release(1)), { startImmediately: true }))
    }))

    const handleData = (frame: Frame, entry: Hosted) => Effect.gen(function* () {
      if (frame.type === MessageType.Write || frame.type === MessageType.SyncChunk) return yield* startWrite(frame, entry)
      // Every other frame comes after the writes before it in the stream.
      yield* allApplied
      if (frame.type === MessageType.Flush) {
        const result = yield* Effect.result(entry.store.flush)
        if (result._tag === "Failure") {
          // The page cache may have dropped what the failed fdatasync was to persist: never retried as if it worked.
          yield* markDamaged(entry)
          replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, result.failure.message)
        } else reply(connection, frame, MessageType.FlushAck, entry.epoch)
      } else if (frame.type === MessageType.Complete) {
        yield* handleComplete(frame, entry)
      } else if (frame.type === MessageType.Verify) {
        yield* handleVerify(frame, entry)
      } else if (frame.type === MessageType.Resize) {
        yield* handleResize(frame, entry)
      } else {
        const result = yield* Effect.result(entry.store.read(frame.offset, frame.length))
        if (result._tag === "Failure") replyError(connection, frame, entry.epoch, result.failure.reason === "out-of-range" ? ErrorCode.OutOfRange : ErrorCode.StoreFailed, result.failure.message)
        else connection.send(makeFrame(MessageType.ReadReply, { volumeId: frame.volumeId, epoch: entry.epoch, sequence: frame.sequence, offset: frame.offset, body: result.success }))
      }
    })

    /**
     * A region checksum for `volume verify`. The connection's frames are applied in order by this
     * one fiber, so the bytes read here hold every write the master queued before the Verify, and
     * none it queued after: the same point of the stream at which the master read its own region.
     */
    const handleVerify = (frame: Frame, entry: Hosted) => Effect.gen(function* () {
      const result = yield* Effect.result(entry.store.read(frame.offset, frame.length))
      if (result._tag === "Failure") {
        count(`verify-${result.failure.reason}`)
        replyError(connection, frame, entry.epoch, result.failure.reason === "out-of-range" ? ErrorCode.OutOfRange : ErrorCode.StoreFailed, result.failure.message)
        return
      }
      const body = new Uint8Array(verifyReplyBodyBytes)
      new DataView(body.buffer).setUint32(0, crc32c(result.success), true)
      connection.send(makeFrame(MessageType.VerifyReply, { volumeId: frame.volumeId, epoch: entry.epoch, sequence: frame.sequence, offset: frame.offset, body }))
    })

    /**
     * Online growth, in stream order: every earlier write is applied, no later one addresses the
     * new bytes before this answer. The copy grows (durably), its record says the new size, then
     * ResizeAck. A size below the copy's is refused (never truncated); the same size is acknowledged.
     */
    const handleResize = (frame: Frame, entry: Hosted) => Effect.gen(function* () {
      const next = frame.offset
      if (next < entry.store.sizeBytes) {
        count("resize-shrink")
        replyError(connection, frame, entry.epoch, ErrorCode.OutOfRange, `Resize of ${entry.volume} to ${next} bytes refused: the copy holds ${entry.store.sizeBytes} bytes and is never shrunk`)
        return
      }
      if (next > entry.store.sizeBytes) {
        const grown = yield* Effect.result(Effect.andThen(entry.store.grow(next), persistIdentity(entry, entry.identity)))
        if (grown._tag === "Failure") {
          count("resize-failed")
          replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, `cannot grow the copy of ${entry.volume} to ${next} bytes: ${grown.failure.message}`)
          return
        }
      }
      reply(connection, frame, MessageType.ResizeAck, entry.epoch)
    })

    /** The master says this copy holds every byte of its session: fdatasync, then record it complete. */
    const handleComplete = (frame: Frame, entry: Hosted) => Effect.gen(function* () {
      const session = decodeComplete(frame.body)
      if (!session || entry.damagedSinceOpen || !followed(entry.identity, session)) {
        count("bad-complete")
        replyError(connection, frame, entry.epoch, ErrorCode.BadFrame, `Complete for a session this copy of ${entry.volume} does not follow (it follows epoch ${entry.identity.epoch} session ${entry.identity.generation ?? "(none)"})`)
        return
      }
      const flushed = yield* Effect.result(entry.store.flush)
      const recorded = flushed._tag === "Success" ? yield* Effect.result(persistIdentity(entry, { ...entry.identity, state: "complete" })) : flushed
      if (recorded._tag === "Failure") {
        yield* markDamaged(entry)
        replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, recorded.failure.message)
      } else {
        // Every byte of the session is on disk: from here the activity log is complete again.
        entry.activityUnknown = false
        entry.damagedSinceComplete = false
        reply(connection, frame, MessageType.CompleteAck, entry.epoch)
      }
    })

    const handle = (frame: Frame): Effect.Effect<boolean> => {
      switch (frame.type) {
        case MessageType.Open:
          return Effect.as(Effect.andThen(allApplied, handleOpen(frame)), true)
        case MessageType.Ping:
          reply(connection, frame, MessageType.Pong, 0)
          return Effect.succeed(true)
        case MessageType.Close:
          return Effect.succeed(false)
        case MessageType.Write:
        case MessageType.SyncChunk:
        case MessageType.Flush:
        case MessageType.Complete:
        case MessageType.Verify:
        case MessageType.Resize:
        case MessageType.Read: {
          const clientVolume = clientOpened.get(frame.volumeId)
          // Clients read, write and flush; SyncChunk, Complete, Verify and Resize come only from a master to its replica.
          if (clientVolume !== undefined && frame.type !== MessageType.SyncChunk && frame.type !== MessageType.Complete && frame.type !== MessageType.Verify && frame.type !== MessageType.Resize) {
            const master = options.lookupMaster?.(clientVolume)
            if (!master || master.isFenced() || master.epoch !== frame.epoch) {
              replyError(connection, frame, 0, ErrorCode.NotReplica, JSON.stringify({ tag: "NotMaster", reason: "not-master", message: `${nodeName} no longer serves ${clientVolume} as master` }))
              return Effect.succeed(true)
            }
            return Effect.andThen(clientSlots.take(1), Effect.as(Effect.forkChild(Effect.ensuring(serveClientFrame(connection, master, frame), clientSlots.release(1))), true))
          }
          const entry = hosted.get(frame.volumeId)
          if (!entry || !opened.has(frame.volumeId)) {
            count("not-open")
            replyError(connection, frame, 0, ErrorCode.UnknownVolume, `no volume with id ${frame.volumeId} is open on this connection to ${nodeName}`)
            return Effect.succeed(true)
          }
          if (frame.epoch < entry.epoch || entry.owner !== connection) {
            count("stale-epoch")
            replyError(connection, frame, entry.epoch, ErrorCode.StaleEpoch, `epoch ${frame.epoch} is older than ${entry.epoch} held by ${nodeName} for ${entry.volume}`)
            return Effect.succeed(true)
          }
          if (frame.epoch > entry.epoch) {
            count("epoch-ahead")
            replyError(connection, frame, entry.epoch, ErrorCode.BadFrame, `epoch ${frame.epoch} was not opened (held: ${entry.epoch}); send Open first`)
            return Effect.succeed(true)
          }
          return Effect.as(handleData(frame, entry), true)
        }
        default:
          count("unexpected-frame")
          replyError(connection, frame, 0, ErrorCode.BadFrame, `frame type ${frame.type} is not accepted by a replica`)
          return Effect.succeed(false)
      }
    }

    for (;;) {
      const frame = yield* Queue.take(queue)
      if (frame === undefined) break
      queued--
      const keepGoing = yield* handle(frame)
      if (!keepGoing) break
      // Nothing more has arrived: the answers batched so far leave now, not after this turn's other work.
      if (queued === 0) connection.link.flush?.()
    }
    yield* allApplied
    connection.close("replica connection finished")
    for (const id of opened) {
      const entry = hosted.get(id)
      if (entry?.owner === connection) entry.owner = undefined
    }
  })
