/**
 * A master's data frames on a hosted copy, in stream order: writes (Write, SyncChunk) start in
 * arrival order without waiting for the one before (`replicaApplyWritesMax` at once; the store
 * applies overlapping writes in the order they start); every other frame (Flush, Complete,
 * Verify, Resize, Read) waits until the writes before it are applied. A failed write or fdatasync
 * marks the copy damaged (hosted.ts `markDamaged`) and is answered with the store's error.
 */
import { Effect } from "effect"
import { crc32c } from "../../core/checksum.ts"
import { ErrorCode, makeFrame, MessageType, verifyReplyBodyBytes, type Frame } from "../../wire/index.ts"
import { followed } from "../copyIdentity.ts"
import { decodeComplete, markDamaged, noteActivity, persistIdentity, type Hosted } from "./hosted.ts"
import { reply, replyError, storeErrorCode, type ReplicaSession } from "./session.ts"

/** One Write or SyncChunk: applied, then acknowledged (or refused with the store's error). */
const applyWrite = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const { connection, options } = session
  const result = yield* Effect.result(entry.store.write(frame.offset, frame.body))
  // A store never keeps the caller's bytes past the write: the body's memory may take the next frame.
  connection.recycle?.(frame.body)
  if (result._tag === "Failure") {
    session.count(`store-${result.failure.reason}`)
    yield* markDamaged(entry)
    replyError(connection, frame, entry.epoch, storeErrorCode(result.failure.reason), result.failure.message)
    return
  }
  entry.writesApplied++
  options.metrics?.add("replivol_network_frames_total", { volume: entry.volume, direction: "in" })
  options.metrics?.add("replivol_network_bytes_total", { volume: entry.volume, direction: "in" }, frame.length)
  entry.bytesApplied += frame.length
  reply(connection, frame, frame.type === MessageType.Write ? MessageType.WriteAck : MessageType.SyncAck, entry.epoch)
})

/**
 * Starts a write without waiting for it: in the activity log from the moment it starts (a write
 * still in flight on the thread pool when a new master's Open or a detach reads the log is
 * covered), then started at once (`startImmediately`: a synchronous store write is done when
 * this returns), in arrival order.
 */
const startWrite = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.andThen(session.applySlots.take(1), Effect.suspend(() => {
  noteActivity(entry, frame.offset, frame.body.length)
  return Effect.asVoid(Effect.forkChild(Effect.ensuring(applyWrite(session, frame, entry), session.applySlots.release(1)), { startImmediately: true }))
}))

/** A Flush: the copy's fdatasync, never retried as if it worked (the page cache may have dropped what it was to persist). */
const handleFlush = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const result = yield* Effect.result(entry.store.flush)
  if (result._tag === "Failure") {
    yield* markDamaged(entry)
    replyError(session.connection, frame, entry.epoch, ErrorCode.StoreFailed, result.failure.message)
  } else reply(session.connection, frame, MessageType.FlushAck, entry.epoch)
})

/**
 * A region checksum for `volume verify`. The connection's frames are applied in order by this
 * one fiber, so the bytes read here hold every write the master queued before the Verify, and
 * none it queued after: the same point of the stream at which the master read its own region.
 */
const handleVerify = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const result = yield* Effect.result(entry.store.read(frame.offset, frame.length))
  if (result._tag === "Failure") {
    session.count(`verify-${result.failure.reason}`)
    replyError(session.connection, frame, entry.epoch, storeErrorCode(result.failure.reason), result.failure.message)
    return
  }
  const body = new Uint8Array(verifyReplyBodyBytes)
  new DataView(body.buffer).setUint32(0, crc32c(result.success), true)
  session.connection.send(makeFrame(MessageType.VerifyReply, { volumeId: frame.volumeId, epoch: entry.epoch, sequence: frame.sequence, offset: frame.offset, body }))
})

/**
 * Online growth, in stream order: every earlier write is applied, no later one addresses the
 * new bytes before this answer. The copy grows (durably), its record says the new size, then
 * ResizeAck. A size below the copy's is refused (never truncated); the same size is acknowledged.
 */
const handleResize = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const next = frame.offset
  if (next < entry.store.sizeBytes) {
    session.count("resize-shrink")
    replyError(session.connection, frame, entry.epoch, ErrorCode.OutOfRange, `Resize of ${entry.volume} to ${next} bytes refused: the copy holds ${entry.store.sizeBytes} bytes and is never shrunk`)
    return
  }
  if (next > entry.store.sizeBytes) {
    const grown = yield* Effect.result(Effect.andThen(entry.store.grow(next), persistIdentity(entry, entry.identity)))
    if (grown._tag === "Failure") {
      session.count("resize-failed")
      replyError(session.connection, frame, entry.epoch, ErrorCode.StoreFailed, `cannot grow the copy of ${entry.volume} to ${next} bytes: ${grown.failure.message}`)
      return
    }
  }
  reply(session.connection, frame, MessageType.ResizeAck, entry.epoch)
})

/** The master says this copy holds every byte of its session: fdatasync, then record it complete. */
const handleComplete = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const { connection } = session
  const completed = decodeComplete(frame.body)
  if (!completed || entry.damagedSinceOpen || !followed(entry.identity, completed)) {
    session.count("bad-complete")
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

/** A Read of the hosted copy by the connection that opened it: answered from this copy. */
const handleRead = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  const result = yield* Effect.result(entry.store.read(frame.offset, frame.length))
  if (result._tag === "Failure") replyError(session.connection, frame, entry.epoch, storeErrorCode(result.failure.reason), result.failure.message)
  else session.connection.send(makeFrame(MessageType.ReadReply, { volumeId: frame.volumeId, epoch: entry.epoch, sequence: frame.sequence, offset: frame.offset, body: result.success }))
})

/** A data frame of the copy's master on this connection, its epoch already checked (serve.ts). */
export const handleData = (session: ReplicaSession, frame: Frame, entry: Hosted) => Effect.gen(function* () {
  if (frame.type === MessageType.Write || frame.type === MessageType.SyncChunk) return yield* startWrite(session, frame, entry)
  // Every other frame comes after the writes before it in the stream.
  yield* session.allApplied
  if (frame.type === MessageType.Flush) yield* handleFlush(session, frame, entry)
  else if (frame.type === MessageType.Complete) yield* handleComplete(session, frame, entry)
  else if (frame.type === MessageType.Verify) yield* handleVerify(session, frame, entry)
  else if (frame.type === MessageType.Resize) yield* handleResize(session, frame, entry)
  else yield* handleRead(session, frame, entry)
})
