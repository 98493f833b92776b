/**
 * An Open on a replica connection. A client's Open locates the master of one volume instance at
 * one epoch. A master's Open adopts its epoch (durably, in the copy's record) and closes the
 * previous master's connection for that copy; its answer is what the copy held before this open —
 * its identity and activity log — from which the master decides a delta or a full sync.
 */
import { Effect } from "effect"
import { encodeJsonBody, ErrorCode, MessageType, type Frame } from "../../wire/index.ts"
import { decodeOpenRequest, volumeIdOf, type OpenRequest } from "../protocol.ts"
import { activityRanges, identityOnOpen, persistIdentity, type Hosted } from "./hosted.ts"
import { reply, replyError, type ReplicaSession } from "./session.ts"

/** A client's Open: answered once the master of that volume at that epoch serves here, else refused. */
const openAsClient = (session: ReplicaSession, frame: Frame, request: OpenRequest) =>
  Effect.gen(function* () {
    const { connection, options } = session
    const named = volumeIdOf(request.volume) === frame.volumeId
    const master = !named ? undefined : options.awaitMaster ? yield* options.awaitMaster(request.volume, request.epoch) : options.lookupMaster?.(request.volume)
    // A client located the master of one volume instance at one epoch; a master of another
    // epoch (an older instance of a name deleted and created again, not closed yet) is not it.
    if (!master || master.isFenced() || master.epoch !== request.epoch) {
      session.count("not-master")
      replyError(connection, frame, 0, ErrorCode.NotReplica, JSON.stringify({ tag: "NotMaster", reason: "not-master", message: `${options.nodeName} is not serving ${request.volume} as master` }))
      return
    }
    session.clientOpened.set(frame.volumeId, request.volume)
    reply(connection, frame, MessageType.OpenAck, master.epoch, encodeJsonBody({ epoch: master.epoch, fresh: false, activity: [] }))
  })

/** Why a master's Open of a copy is refused: counted by `reason`, answered with `code`. */
interface Refusal {
  readonly reason: string
  readonly epoch: number
  readonly code: ErrorCode
  readonly message: string
}

/** The hosted copy a master's Open may open, or why not. */
const admit = (session: ReplicaSession, frame: Frame, request: OpenRequest): Hosted | Refusal => {
  const nodeName = session.options.nodeName
  const entry = session.hosted.get(frame.volumeId)
  if (!entry || entry.volume !== request.volume || volumeIdOf(request.volume) !== frame.volumeId) {
    return { reason: "unknown-volume", epoch: 0, code: ErrorCode.UnknownVolume, message: `volume ${request.volume} is not hosted on ${nodeName}` }
  }
  if (request.epoch < entry.epoch) {
    return { reason: "stale-epoch", epoch: entry.epoch, code: ErrorCode.StaleEpoch, message: `epoch ${request.epoch} is older than ${entry.epoch} held by ${nodeName} for ${request.volume}` }
  }
  if (request.uid !== undefined && entry.identity.uid !== undefined && request.uid !== entry.identity.uid) {
    return { reason: "foreign-copy", epoch: entry.epoch, code: ErrorCode.UnknownVolume, message: `the copy of ${request.volume} on ${nodeName} belongs to volume id ${entry.identity.uid}, not ${request.uid}` }
  }
  // Never truncated: a master of a smaller size than this copy is refused (it grows first, then opens again).
  if (request.sizeBytes < entry.store.sizeBytes) {
    return { reason: "size-mismatch", epoch: entry.epoch, code: ErrorCode.BadFrame, message: `volume ${request.volume} is ${entry.store.sizeBytes} bytes here, more than the ${request.sizeBytes} bytes opened; a copy is never shrunk` }
  }
  return entry
}

/** A master's Open of a hosted copy: the copy grown if it missed a resize, its record moved to the new session, then the answer. */
const openAsMaster = (session: ReplicaSession, frame: Frame, request: OpenRequest) =>
  Effect.gen(function* () {
    const { connection, options } = session
    const entry = admit(session, frame, request)
    if ("reason" in entry) {
      session.count(entry.reason)
      replyError(connection, frame, entry.epoch, entry.code, entry.message)
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
        session.count(`store-grow-${grown.failure.reason}`)
        replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, `cannot grow the copy of ${request.volume} to ${request.sizeBytes} bytes: ${grown.failure.message}`)
        return
      }
    }
    if (next !== entry.identity || grows) {
      const persisted = yield* Effect.result(persistIdentity(entry, next))
      if (persisted._tag === "Failure") {
        session.count("store-meta")
        replyError(connection, frame, entry.epoch, ErrorCode.StoreFailed, persisted.failure.message)
        return
      }
    }
    entry.epoch = request.epoch
    entry.master = request.master
    session.opened.add(entry.id)
    reply(connection, frame, MessageType.OpenAck, entry.epoch, encodeJsonBody(answer))
    // Still "all" to every later Open until a Complete: an answer lost with its connection must
    // not let a restarted copy pass for one that kept its writes.
    entry.damagedSinceOpen = false
  })

/** An Open frame, from a client or a master (every write before it already applied: serve.ts). */
export const handleOpen = (session: ReplicaSession, frame: Frame) =>
  Effect.suspend(() => {
    const request = decodeOpenRequest(frame.body)
    if (typeof request === "string") {
      session.count("bad-open")
      replyError(session.connection, frame, 0, ErrorCode.BadFrame, request)
      return Effect.void
    }
    return request.role === "client" ? openAsClient(session, frame, request) : openAsMaster(session, frame, request)
  })
