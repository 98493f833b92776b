/**
 * One authenticated connection to a replica host, served until it closes: its frames are taken
 * in arrival order by one fiber, so overlapping writes land in the master's order (apply.ts). A
 * frame whose epoch is lower than the one the copy holds is refused with an Error frame
 * (StaleEpoch) and not applied: a deposed master cannot write. Client requests for a volume this
 * node masters run concurrently (clientFrames.ts).
 */
import { Effect, Queue, Semaphore } from "effect"
import type { Connection } from "../../net/connection.ts"
import { ErrorCode, MessageType, type Frame } from "../../wire/index.ts"
import type { ReplicaHostOptions } from "./options.ts"
import { handleData } from "./apply.ts"
import { serveClientFrame } from "./clientFrames.ts"
import type { Hosted } from "./hosted.ts"
import { handleOpen } from "./open.ts"
import { reply, replyError, type ReplicaSession } from "./session.ts"

/** Frames queued on one connection before the replica stops reading it (the master's in-flight limit is lower). */
export const replicaQueueFramesMax = 4096

/**
 * Writes (Write, SyncChunk) of one connection being applied at once. They start in arrival order,
 * and a store applies overlapping writes in the order they start (BlockStore's ordering rule),
 * so a write on the thread pool does not hold up the next frame; every other frame waits until
 * the writes before it are applied (a Flush's fdatasync covers them, a Verify reads them).
 */
export const replicaApplyWritesMax = 64

/** Client requests one connection may have in flight; the connection is not read further until one completes. */
export const clientRequestsInflightMax = 64

/** Clients read, write and flush; SyncChunk, Complete, Verify and Resize come only from a master to its replica. */
const isClientRequest = (type: MessageType) =>
  type !== MessageType.SyncChunk && type !== MessageType.Complete && type !== MessageType.Verify && type !== MessageType.Resize

/** A frame that addresses a volume: a client's request to its master here, or a data frame for a hosted copy. */
const handleVolumeFrame = (session: ReplicaSession, frame: Frame): Effect.Effect<boolean> => {
  const { connection, options } = session
  const clientVolume = session.clientOpened.get(frame.volumeId)
  if (clientVolume !== undefined && isClientRequest(frame.type)) {
    const master = options.lookupMaster?.(clientVolume)
    if (!master || master.isFenced() || master.epoch !== frame.epoch) {
      replyError(connection, frame, 0, ErrorCode.NotReplica, JSON.stringify({ tag: "NotMaster", reason: "not-master", message: `${options.nodeName} no longer serves ${clientVolume} as master` }))
      return Effect.succeed(true)
    }
    return Effect.andThen(session.clientSlots.take(1), Effect.as(Effect.forkChild(Effect.ensuring(serveClientFrame(connection, master, frame), session.clientSlots.release(1))), true))
  }
  const entry = session.hosted.get(frame.volumeId)
  if (!entry || !session.opened.has(frame.volumeId)) {
    session.count("not-open")
    replyError(connection, frame, 0, ErrorCode.UnknownVolume, `no volume with id ${frame.volumeId} is open on this connection to ${options.nodeName}`)
    return Effect.succeed(true)
  }
  if (frame.epoch < entry.epoch || entry.owner !== connection) {
    session.count("stale-epoch")
    replyError(connection, frame, entry.epoch, ErrorCode.StaleEpoch, `epoch ${frame.epoch} is older than ${entry.epoch} held by ${options.nodeName} for ${entry.volume}`)
    return Effect.succeed(true)
  }
  if (frame.epoch > entry.epoch) {
    session.count("epoch-ahead")
    replyError(connection, frame, entry.epoch, ErrorCode.BadFrame, `epoch ${frame.epoch} was not opened (held: ${entry.epoch}); send Open first`)
    return Effect.succeed(true)
  }
  return Effect.as(handleData(session, frame, entry), true)
}

/** One frame; false when the connection is done (Close, or a frame a replica never accepts). */
const handle = (session: ReplicaSession, frame: Frame): Effect.Effect<boolean> => {
  switch (frame.type) {
    case MessageType.Open:
      return Effect.as(Effect.andThen(session.allApplied, handleOpen(session, frame)), true)
    case MessageType.Ping:
      reply(session.connection, frame, MessageType.Pong, 0)
      return Effect.succeed(true)
    case MessageType.Close:
      return Effect.succeed(false)
    case MessageType.Write:
    case MessageType.SyncChunk:
    case MessageType.Flush:
    case MessageType.Complete:
    case MessageType.Verify:
    case MessageType.Resize:
    case MessageType.Read:
      return handleVolumeFrame(session, frame)
    default:
      session.count("unexpected-frame")
      replyError(session.connection, frame, 0, ErrorCode.BadFrame, `frame type ${frame.type} is not accepted by a replica`)
      return Effect.succeed(false)
  }
}

/** Serves `connection` until it closes or sends Close; every write it started is applied before it is let go. */
export const serveConnection = (
  connection: Connection,
  hosted: Map<bigint, Hosted>,
  options: ReplicaHostOptions,
  count: (reason: string) => void,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const clientSlots = yield* Semaphore.make(clientRequestsInflightMax)
    const queue = yield* Queue.bounded<Frame | undefined>(replicaQueueFramesMax + 1)
    let queued = 0
    connection.onFrame((frame) => {
      if (queued >= replicaQueueFramesMax) return connection.close("replica receive queue is full")
      queued++
      Queue.offerUnsafe(queue, frame)
    })
    connection.link.onClose(() => void Queue.offerUnsafe(queue, undefined))
    const applySlots = yield* Semaphore.make(replicaApplyWritesMax)
    const session: ReplicaSession = {
      connection, hosted, options, count, opened: new Set(), clientOpened: new Map(), clientSlots, applySlots,
      allApplied: applySlots.withPermits(replicaApplyWritesMax)(Effect.void),
    }
    for (;;) {
      const frame = yield* Queue.take(queue)
      if (frame === undefined) break
      queued--
      const keepGoing = yield* handle(session, frame)
      if (!keepGoing) break
      // Nothing more has arrived: the answers batched so far leave now, not after this turn's other work.
      if (queued === 0) connection.link.flush?.()
    }
    yield* session.allApplied
    connection.close("replica connection finished")
    for (const id of session.opened) {
      const entry = hosted.get(id)
      if (entry?.owner === connection) entry.owner = undefined
    }
  })
