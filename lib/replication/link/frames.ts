/**
 * A link's frames: numbered per link and kept until acknowledged (resent in order after a
 * reconnect), the regions they touched owed to the replica when the link fails, and the answers
 * matched to them. Plain functions of the link's state; nothing here waits.
 */
import { Deferred, Effect } from "effect"
import { copyBytes } from "../../core/bytes.ts"
import { DirtyBitmap } from "../../store/dirtyBitmap.ts"
import type { Connection } from "../../net/connection.ts"
import { ErrorCode, makeFrame, MessageType, messageTypeName, type Frame } from "../../wire/index.ts"
import { decodeText } from "../protocol.ts"
import { LinkFailure, pendingFramesPerReplicaMax } from "./options.ts"
import { isDataFrame, sharedBodies, type LinkState } from "./state.ts"

/** Everything the replica may not hold is owed to it: pending data frames, and what no acknowledged fdatasync covered. */
const markPendingDirty = (s: LinkState) => {
  for (const { frame } of s.pending.values()) if (isDataFrame(frame.type) && frame.length > 0) s.dirty.mark(frame.offset, frame.length)
  s.dirty.merge(s.sinceFlush)
  for (const { regions } of s.flushing) s.dirty.merge(regions)
  s.sinceFlush.clearAll()
  s.flushing.length = 0
}

/** Tracks data frames until an fdatasync on the replica covers them. */
const trackUnflushed = (s: LinkState, type: MessageType, offset: number, length: number, sequence: number) => {
  if (isDataFrame(type) && length > 0) s.sinceFlush.mark(offset, length)
  else if ((type === MessageType.Flush || type === MessageType.Complete) && s.sinceFlush.dirtyRegionCount > 0) {
    s.flushing.push({ sequence, regions: s.sinceFlush })
    // The link's current region size (a resize may have coarsened it).
    s.sinceFlush = new DirtyBitmap(s.sizeBytes, s.dirty.regionBytes)
  }
}

const flushAcknowledged = (s: LinkState, sequence: number) => {
  while (s.flushing.length > 0 && s.flushing[0]!.sequence <= sequence) s.flushing.shift()
}

/** Fails the link once: its connection closed, what it may lack owed, the owner told, then every waiter. */
export const failLink = (s: LinkState, why: LinkFailure) => {
  sharedBodies.forget()
  if (s.state === "failed") return
  s.state = "failed"
  s.synced = false
  s.completedSession = false
  s.failure = why
  markPendingDirty(s)
  const waiting = [...s.pending.values()]
  s.pending.clear()
  s.connection?.close(`replica ${s.options.target.node} failed: ${why.message}`)
  s.connection = undefined
  // The owner hears of the failure before any waiter: a write that waited for this replica
  // must find the failure's record under way (master/writePipeline.ts `awaitReplica`), not miss it and
  // be acknowledged while the record still calls the replica in sync (cluster simulator seed 127).
  s.options.onFailed(why)
  for (const { done, checksum } of waiting) {
    Deferred.doneUnsafe(done, Effect.fail(why))
    if (checksum) Deferred.doneUnsafe(checksum, Effect.fail(why))
  }
}

/** The receiver of the frames of `from` (ignored once another connection is current): errors fail the link, answers settle their frame. */
export const onFrame = (s: LinkState, from: Connection) => (frame: Frame) => {
  sharedBodies.forget()
  if (from !== s.connection) return
  const node = s.options.target.node
  if (frame.type === MessageType.Error) {
    const text = decodeText(frame.body)
    if (frame.aux === ErrorCode.StaleEpoch) return failLink(s, new LinkFailure("stale-epoch", `replica ${node} holds a newer epoch: ${text}`))
    if (frame.aux === ErrorCode.StoreFailed) return failLink(s, new LinkFailure("store", `replica ${node} could not store a write: ${text}`))
    return failLink(s, new LinkFailure("refused", `replica ${node} refused frame ${frame.sequence}: ${text}`))
  }
  if (frame.type !== MessageType.WriteAck && frame.type !== MessageType.FlushAck && frame.type !== MessageType.SyncAck && frame.type !== MessageType.CompleteAck && frame.type !== MessageType.VerifyReply && frame.type !== MessageType.ResizeAck) return
  const entry = s.pending.get(frame.sequence)
  if (!entry) return
  // An answer of another kind than its request (a VerifyReply to a Write, an ack to a Verify) is a broken peer.
  if ((frame.type === MessageType.VerifyReply) !== (entry.frame.type === MessageType.Verify)) {
    return failLink(s, new LinkFailure("refused", `replica ${node} answered ${messageTypeName(entry.frame.type)} ${frame.sequence} with ${messageTypeName(frame.type)}`))
  }
  s.pending.delete(frame.sequence)
  if (entry.checksum) Deferred.doneUnsafe(entry.checksum, Effect.succeed(new DataView(frame.body.buffer, frame.body.byteOffset, frame.body.length).getUint32(0, true)))
  if (frame.type === MessageType.FlushAck || frame.type === MessageType.CompleteAck) flushAcknowledged(s, frame.sequence)
  Deferred.doneUnsafe(entry.done, Effect.void)
}

/** `ReplicaLink.enqueue`: queued and sent at once when connected; a failed or opening link owes the region instead. */
export const enqueueFrame = (s: LinkState, type: MessageType, offset: number, body: Uint8Array) => {
  const { options } = s
  if (s.state === "failed" || s.state === "connecting") {
    if (isDataFrame(type) && body.length > 0) s.dirty.mark(offset, body.length)
    return undefined
  }
  if (s.pending.size >= pendingFramesPerReplicaMax) {
    // A guard that should never fire: writes wait for an in-sync link, and for a syncing one
    // once it is half this far behind (master/writePipeline.ts `syncingBacklogFrames`). Fail it; its
    // dirty bitmap keeps what it missed for a delta catch-up.
    failLink(s, new LinkFailure("overloaded", `replica ${options.target.node} fell ${s.pending.size} frames behind`))
    if (isDataFrame(type) && body.length > 0) s.dirty.mark(offset, body.length)
    return undefined
  }
  // A caller waits for an in-sync link's ack, so its buffer outlives the frame; for any other
  // link the caller may reuse it before the frame is sent or resent: keep a copy.
  const owned = type === MessageType.Write && !s.synced ? copyBytes(body) : body
  const frame = makeFrame(type, { volumeId: options.volumeId, epoch: options.epoch, sequence: s.nextSequence++, offset, body: owned })
  trackUnflushed(s, type, offset, body.length, frame.sequence)
  if (type === MessageType.SyncChunk) s.syncBytes += body.length
  s.framesOut?.inc()
  s.bytesOut?.inc(body.length)
  const done = Deferred.makeUnsafe<void, LinkFailure>()
  s.pending.set(frame.sequence, { frame, done, queuedAtMs: s.clock.currentTimeMillisUnsafe() })
  if (s.connection) s.connection.send(frame, s.compress, sharedBodies.encode(type, owned, s.bodyUser, s.governor))
  return done
}

/** `ReplicaLink.verify`: a Verify queued behind every frame before it; its answer is the replica's checksum. */
export const enqueueVerify = (s: LinkState, offset: number, length: number) => {
  const { options } = s
  if (s.state === "failed" || s.state === "connecting") return undefined
  if (s.pending.size >= pendingFramesPerReplicaMax) {
    failLink(s, new LinkFailure("overloaded", `replica ${options.target.node} fell ${s.pending.size} frames behind`))
    return undefined
  }
  const frame = makeFrame(MessageType.Verify, { volumeId: options.volumeId, epoch: options.epoch, sequence: s.nextSequence++, offset, length })
  const done = Deferred.makeUnsafe<void, LinkFailure>()
  const checksum = Deferred.makeUnsafe<number, LinkFailure>()
  s.pending.set(frame.sequence, { frame, done, checksum, queuedAtMs: s.clock.currentTimeMillisUnsafe() })
  if (s.connection) s.connection.send(frame, false)
  return checksum
}

/** `ReplicaLink.adoptBody`: the frame behind `done` keeps its own copy of its bytes from now on. */
export const adoptBody = (s: LinkState, done: Deferred.Deferred<void, LinkFailure>) => {
  for (const [sequence, entry] of s.pending) {
    if (entry.done !== done) continue
    if (isDataFrame(entry.frame.type)) s.pending.set(sequence, { ...entry, frame: { ...entry.frame, body: copyBytes(entry.frame.body) } })
    return
  }
}

/** `ReplicaLink.close`: every waiter failed ("closed"), Close sent, the connection closed. */
export const closeLink = (s: LinkState) => Effect.sync(() => {
  sharedBodies.forget()
  const conn = s.connection
  s.connection = undefined
  if (s.state !== "failed") {
    s.state = "failed"
    s.failure = new LinkFailure("closed", "the volume was closed")
    for (const { done, checksum } of s.pending.values()) {
      Deferred.doneUnsafe(done, Effect.fail(s.failure))
      if (checksum) Deferred.doneUnsafe(checksum, Effect.fail(s.failure))
    }
    s.pending.clear()
  }
  if (conn) {
    conn.send(makeFrame(MessageType.Close))
    conn.close("volume closed")
  }
})
