/**
 * A link's connection: the first open (retried while the replica's node gets ready), the
 * supervisor that reconnects a dropped connection within the ack timeout and resends every
 * unacknowledged frame in order — re-applying a suffix of writes in order leaves the same bytes,
 * so a reset costs a pause, not a resync — unless the copy came back without this session's
 * writes; and the watchdog that fails a link whose oldest frame waited past the ack timeout.
 */
import { Deferred, Effect, Queue, Schedule } from "effect"
import type { Connection } from "../../net/connection.ts"
import { encodeJsonBody, ErrorCode, makeFrame, MessageType } from "../../wire/index.ts"
import { followed } from "../copyIdentity.ts"
import { decodeOpenReply, decodeText, type OpenReply } from "../protocol.ts"
import { LinkFailure } from "./options.ts"
import { enqueueFrame, failLink, onFrame } from "./frames.ts"
import { sharedBodies, type LinkState } from "./state.ts"

const describeAnswer = (answer: OpenReply | undefined) =>
  answer === undefined ? "no answer"
    : `it follows epoch ${answer.identity.epoch} session ${answer.identity.generation ?? "(none)"}, state ${answer.identity.state}${answer.activity === "all" ? ", recent writes unknown" : ""}`

/** Dial, authenticate, open; resolves with the connection once the replica accepted our epoch. */
const openOnce = (s: LinkState): Effect.Effect<Connection, LinkFailure> => Effect.gen(function* () {
  const { options } = s
  s.opened = undefined
  const conn = yield* options.connect.pipe(Effect.mapError((cause) =>
    (cause as { reason?: string }).reason === "refused"
      ? new LinkFailure("refused-connection", `replica ${options.target.node} refused the connection (nothing listens there): ${(cause as { message?: string }).message ?? String(cause)}`)
      : new LinkFailure("unreachable", `cannot reach replica ${options.target.node}: ${(cause as { message?: string }).message ?? String(cause)}`)))
  const reply = Deferred.makeUnsafe<void, LinkFailure>()
  conn.onFrame((frame) => {
    if (frame.type === MessageType.OpenAck) {
      const parsed = decodeOpenReply(frame.body)
      if (typeof parsed !== "string") s.opened = parsed
      Deferred.doneUnsafe(reply, typeof parsed === "string" ? Effect.fail(new LinkFailure("refused", parsed)) : Effect.void)
    } else if (frame.type === MessageType.Error) {
      // A replica that cannot store (a full disk) is not asked again and again: its reason is kept.
      const reason = frame.aux === ErrorCode.StaleEpoch ? "stale-epoch" : frame.aux === ErrorCode.StoreFailed ? "store" : "refused"
      Deferred.doneUnsafe(reply, Effect.fail(new LinkFailure(reason, `replica ${options.target.node} refused to open ${options.volume}: ${decodeText(frame.body)}`)))
    }
  })
  conn.link.onClose((why) => Deferred.doneUnsafe(reply, Effect.fail(new LinkFailure("closed", `connection to ${options.target.node} closed: ${why}`))))
  s.openedAtBytes = s.sizeBytes
  conn.send(makeFrame(MessageType.Open, { volumeId: options.volumeId, epoch: options.epoch, body: encodeJsonBody({ volume: options.volume, sizeBytes: s.sizeBytes, epoch: options.epoch, master: options.masterName, uid: options.uid, generation: options.generation }) }))
  yield* Deferred.await(reply).pipe(
    Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("ack-timeout", `replica ${options.target.node} did not answer the open within ${options.ackTimeoutMs} ms`)) }),
    Effect.onError(() => Effect.sync(() => conn.close("open failed"))),
  )
  return conn
})

/** Makes `conn` the link's connection and resends everything unacknowledged, in sequence order. */
const attach = (s: LinkState, conn: Connection) => {
  sharedBodies.forget()
  s.connection = conn
  s.attachedIncarnation = s.opened?.incarnation
  conn.onFrame(onFrame(s, conn))
  conn.link.onClose(() => {
    if (s.connection === conn) {
      s.connection = undefined
      if (s.state === "in-sync" || s.state === "syncing") s.state = "reconnecting"
      Queue.offerUnsafe(s.lost, conn)
    }
  })
  // Map keeps insertion order.
  const frames = [...s.pending.values()].map((p) => p.frame)
  for (const frame of frames) conn.send(frame, s.compress)
}

/** The opens of a link, built once: the first one and a reconnect, each retried with backoff within the ack timeout. */
export const makeOpeners = (s: LinkState) => {
  const { options } = s
  const once = openOnce(s)
  const backoff = Schedule.exponential(options.reconnectBaseMs).pipe(
    (schedule) => Schedule.min([schedule, Schedule.spaced(options.reconnectCeilingMs)]),
  )
  /**
   * Reconnects within the ack timeout. Not retried: a stale epoch (permanent), and a refused
   * connection — nothing listens there any more (the replica's process is gone), so writes
   * should not wait the whole ack timeout for it; it catches up by delta when it returns.
   */
  const reconnect = once.pipe(
    Effect.retry({ schedule: backoff, while: (e) => e.reason !== "stale-epoch" && e.reason !== "refused-connection" }),
    Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("unreachable", `replica ${options.target.node} could not be reached again within ${options.ackTimeoutMs} ms`)) }),
  )
  /** The first open retries while the replica's node is still getting ready (not hosting yet, not listening yet). */
  const first = once.pipe(
    Effect.retry({ schedule: backoff, while: (e) => e.reason === "refused" || e.reason === "refused-connection" || e.reason === "unreachable" || e.reason === "closed" }),
    Effect.timeoutOrElse({ duration: options.ackTimeoutMs, orElse: () => Effect.fail(new LinkFailure("unreachable", `replica ${options.target.node} could not be opened within ${options.ackTimeoutMs} ms`)) }),
  )
  return { reconnect, first }
}

/** This master session, as a copy's identity names the session it follows. */
const sessionOf = (s: LinkState) => ({ uid: s.options.uid, epoch: s.options.epoch, generation: s.options.generation })

/** The copy answered that it still follows this master session and knows its recent writes. */
const followsThisSession = (s: LinkState) =>
  s.opened !== undefined && s.opened.activity !== "all" && followed(s.opened.identity, sessionOf(s))

/** One reconnect that succeeded while the link still wants it: attached, or failed as a copy that lost its session. */
const reattach = (s: LinkState, conn: Connection) => {
  const { options } = s
  if (followsThisSession(s)) {
    s.state = s.synced ? "in-sync" : "syncing"
    s.reconnectCount++
    options.metrics?.add("replivol_replication_retries_total", { volume: options.volume })
    return attach(s, conn)
  }
  // The copy came back other than it left (restarted, wiped, replaced): resending the
  // unacknowledged frames is not enough. It is owed everything; the revive path decides.
  conn.close("the copy lost its session")
  // Another lineage (wiped, replaced, restored) owes everything; a restart within this session owes what failLink marks.
  const otherLineage = s.opened === undefined || !followed(s.opened.identity, sessionOf(s))
  if (otherLineage) s.dirty.markAll()
  const owed = otherLineage ? "it gets a full sync" : "it is revived and sent every region this master has not seen flushed on it"
  failLink(s, new LinkFailure("lost-copy", `replica ${options.target.node} came back without the writes of this session (${describeAnswer(s.opened)}); ${owed}`))
}

/** Reconnects every connection that drops while the link is in sync or syncing (runs for the link's life). */
export const supervise = (s: LinkState, reconnect: Effect.Effect<Connection, LinkFailure>) => Effect.gen(function* () {
  for (;;) {
    yield* Queue.take(s.lost)
    if (s.state !== "reconnecting") continue
    const result = yield* Effect.result(reconnect)
    if (s.state !== "reconnecting") {
      if (result._tag === "Success") result.success.close("link no longer wanted")
      continue
    }
    if (result._tag === "Failure") failLink(s, result.failure)
    else reattach(s, result.success)
  }
})

/**
 * One watchdog per link instead of a timer per write: frames are acknowledged in order, so
 * only the oldest pending frame's age matters.
 */
export const watchdog = (s: LinkState) => Effect.gen(function* () {
  const { ackTimeoutMs, target } = s.options
  for (;;) {
    yield* Effect.sleep(Math.max(1, Math.floor(ackTimeoutMs / 4)))
    if (s.state === "failed") continue
    const oldest = s.pending.values().next()
    if (!oldest.done && s.clock.currentTimeMillisUnsafe() - oldest.value.queuedAtMs > ackTimeoutMs) {
      failLink(s, new LinkFailure("ack-timeout", `replica ${target.node} did not acknowledge within ${ackTimeoutMs} ms`))
    }
  }
})

/** `ReplicaLink.start`: the first open; the link is then syncing (or in sync) and attached, or failed. */
export const startLink = (s: LinkState, first: Effect.Effect<Connection, LinkFailure>, startInSync: boolean) => Effect.gen(function* () {
  s.state = "connecting"
  s.failure = undefined
  s.completedSession = false
  const result = yield* Effect.result(first)
  if (result._tag === "Failure") {
    s.state = "connecting"
    failLink(s, result.failure)
    return
  }
  if (s.state !== "connecting") return result.success.close("link failed while opening")
  s.synced = startInSync
  s.state = s.synced ? "in-sync" : "syncing"
  attach(s, result.success)
  // The volume grew while this link was opening (no Resize was queued on it): tell the copy first.
  if (s.openedAtBytes < s.sizeBytes) enqueueFrame(s, MessageType.Resize, s.sizeBytes, new Uint8Array(0))
})
