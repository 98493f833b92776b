/**
 * A volume handle for applications: IO goes to the volume's current master, wherever it runs.
 *
 * The handle finds the master in the control store, and calls it directly when it runs in this
 * process or over the client side of the port-5703 protocol otherwise (Open with role "client",
 * then Write / Read / Flush frames matched by sequence). When the master is lost or moves — the
 * connection drops, the node answers "not master", the master is fenced, no master is recorded
 * yet, the master is still opening or is closing (its store closed under a request) — the handle
 * waits with backoff and retries on the new master, so the application sees a pause, not an
 * error. Writes are idempotent (same bytes, same offset), so a retried write is safe.
 *
 * Errors the failure mode decides (hard below its count, soft beyond tolerance) reach the
 * application at once, typed — unless the volume's record shows the missing replicas still
 * syncing and the volume usable once they are in sync (`waitsForSync`: a new volume's first sync,
 * a replacement after a failover). That is the volume coming up, not failing, so IO waits for it.
 * A pause longer than `pauseMaxMs` becomes `VolumeUnavailable`: the last refusal if the wait was
 * for syncing replicas, else reason `no-master`.
 */
import { Clock, Data, Deferred, Effect, Schedule } from "effect"
import { writeChunkBytesMax } from "../core/limits.ts"
import { isInside } from "../core/range.ts"
import { encodeJsonBody, makeFrame, MessageType, type Frame } from "../wire/index.ts"
import type { Connection } from "../net/connection.ts"
import type { Address } from "../net/Transport.ts"
import { checkRange, OutOfRange, VolumeIoError, VolumeUnavailable, type VolumeError } from "../replication/errors.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"
import { decodeClientError, volumeIdOf, type ClientErrorBody } from "../replication/protocol.ts"

export interface MasterLocation {
  readonly node: string
  readonly address: Address
  readonly epoch: number
  /** The record shows a failure-mode refusal to be a wait for syncing replicas (health.ts `waitsForSync`). */
  readonly waitsForSync?: boolean
}

export interface VolumeClientOptions {
  readonly volume: string
  readonly sizeBytes: number
  readonly clientName: string
  /** Where the master is now (undefined: none yet), from the control store. */
  readonly locate: Effect.Effect<MasterLocation | undefined, unknown>
  /** The master volume when it runs in this process. */
  readonly local: (location: MasterLocation) => MasterVolume | undefined
  readonly connect: (address: Address) => Effect.Effect<Connection, unknown>
  readonly pauseMaxMs: number
  /** A request without an answer for this long is treated as a lost connection. */
  readonly requestTimeoutMs: number
  readonly onRetry?: (reason: string) => void
  /**
   * The volume's size as recorded now (after an online resize it is bigger than `sizeBytes`): read
   * when an IO falls outside the size the handle knows, before it is refused.
   */
  readonly currentSize?: Effect.Effect<number, unknown>
}

export interface VolumeClient {
  readonly name: string
  /** The size the handle knows (it grows when an IO past it finds the volume resized). */
  readonly sizeBytes: number
  readonly write: (offset: number, data: Uint8Array) => Effect.Effect<void, VolumeError>
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, VolumeError>
  readonly flush: Effect.Effect<void, VolumeError>
  /** Retries so far (each one a pause the application did not see as an error). */
  readonly retries: () => number
  readonly close: Effect.Effect<void>
}

/** Longest wait between two attempts during a pause (short: the new master should be found quickly). */
export const retryDelayMaxMs = 200

/** Why an attempt should be retried on the (possibly new) master; `refusal` when it waits for syncing replicas. */
class Retry extends Data.TaggedError("Retry")<{ readonly why: string; readonly refusal?: VolumeUnavailable }> {}

interface Session {
  readonly location: MasterLocation
  readonly connection: Connection | undefined
  readonly local: MasterVolume | undefined
  readonly pending: Map<number, Deferred.Deferred<Frame, Retry>>
  nextSequence: number
}

/** A master that stopped serving or has not started (fenced, closing, superseded, lease in doubt): wait for the (new) master. */
const masterChangeReasons: ReadonlySet<string> = new Set(["superseded", "closed", "no-master", "not-master", "store-failed"])
/** The failure mode's refusals: a wait only while the record shows the missing replicas syncing. */
const failureModeReasons: ReadonlySet<string> = new Set(["replicas-below-requested", "tolerance-exceeded"])

/** The master is changing: fenced, closing (its store closed under the request), or not serving yet. */
const isMasterChange = (error: VolumeError): boolean =>
  (error._tag === "VolumeUnavailable" && masterChangeReasons.has(error.reason)) || (error._tag === "VolumeIoError" && error.reason === "closed")

/** A remote master's error reply as the typed error the master raised (NotMaster: undefined). */
const typedError = (volume: string, sizeBytes: number, offset: number, length: number, error: ClientErrorBody): VolumeError | undefined => {
  if (error.tag === "NotMaster") return undefined
  if (error.tag === "OutOfRange") return new OutOfRange({ volume, offset, length, sizeBytes, message: error.message })
  if (error.tag === "VolumeIoError") return new VolumeIoError({ volume, reason: error.reason === "no-space" || error.reason === "closed" ? error.reason : "io", message: error.message })
  return new VolumeUnavailable({ volume, reason: error.reason as VolumeUnavailable["reason"], health: "unavailable", message: error.message })
}

export const makeVolumeClient = (options: VolumeClientOptions): VolumeClient => {
  const volumeId = volumeIdOf(options.volume)
  let session: Session | undefined
  let retries = 0
  let closed = false
  let sizeBytes = options.sizeBytes

  /** Fails unless the range is inside the volume; one outside the known size first reads the current size. */
  const inRange = (offset: number, length: number): Effect.Effect<void, OutOfRange> =>
    Effect.suspend(() => {
      const bad = checkRange(options.volume, sizeBytes, offset, length)
      if (bad === undefined) return Effect.void
      if (options.currentSize === undefined) return Effect.fail(bad)
      return options.currentSize.pipe(
        Effect.orElseSucceed(() => sizeBytes),
        Effect.flatMap((current) => {
          if (current > sizeBytes) sizeBytes = current
          const still = checkRange(options.volume, sizeBytes, offset, length)
          return still === undefined ? Effect.void : Effect.fail(still)
        }),
      )
    })

  const drop = (why: string) => {
    const old = session
    session = undefined
    if (!old) return
    old.connection?.close(why)
    for (const done of old.pending.values()) Deferred.doneUnsafe(done, Effect.fail(new Retry({ why: why })))
    old.pending.clear()
  }

  const openSession: Effect.Effect<Session, Retry> = Effect.gen(function* () {
    if (session) return session
    const location = yield* options.locate.pipe(Effect.mapError(() => new Retry({ why: "the control store cannot be read" })))
    if (!location) return yield* new Retry({ why: `no master is recorded for ${options.volume}` })
    const local = options.local(location)
    if (local) {
      session = { location, connection: undefined, local, pending: new Map(), nextSequence: 1 }
      return session
    }
    const connection = yield* options.connect(location.address).pipe(Effect.mapError(() => new Retry({ why: `cannot reach master ${location.node}` })))
    const fresh: Session = { location, connection, local: undefined, pending: new Map(), nextSequence: 2 }
    const opened = Deferred.makeUnsafe<Frame, Retry>()
    fresh.pending.set(1, opened)
    connection.onFrame((frame) => {
      const done = fresh.pending.get(frame.sequence)
      if (!done) return
      fresh.pending.delete(frame.sequence)
      Deferred.doneUnsafe(done, Effect.succeed(frame))
    })
    connection.link.onClose((why) => {
      if (session === fresh) session = undefined
      for (const done of fresh.pending.values()) Deferred.doneUnsafe(done, Effect.fail(new Retry({ why: `connection to ${location.node} closed: ${why}` })))
      fresh.pending.clear()
    })
    connection.send(makeFrame(MessageType.Open, { volumeId, epoch: location.epoch, sequence: 1, body: encodeJsonBody({ role: "client", volume: options.volume, sizeBytes: options.sizeBytes, epoch: location.epoch, master: options.clientName }) }))
    const reply = yield* Deferred.await(opened).pipe(Effect.timeoutOrElse({ duration: options.requestTimeoutMs, orElse: () => Effect.fail(new Retry({ why: `master ${location.node} did not answer` })) }))
    if (reply.type !== MessageType.OpenAck) {
      connection.close("not master")
      return yield* new Retry({ why: `${location.node} is not serving ${options.volume}: ${decodeClientError(reply.body).message}` })
    }
    session = fresh
    return fresh
  })

  /** One request on the current session: the reply frame, or a typed error, or Retry. */
  const request = (s: Session, type: MessageType, offset: number, length: number, body: Uint8Array) =>
    Effect.gen(function* () {
      const sequence = s.nextSequence++
      const done = Deferred.makeUnsafe<Frame, Retry>()
      s.pending.set(sequence, done)
      s.connection!.send(makeFrame(type, { volumeId, epoch: s.location.epoch, sequence, offset, length, body }))
      const reply = yield* Deferred.await(done).pipe(Effect.timeoutOrElse({
        duration: options.requestTimeoutMs,
        orElse: () => Effect.sync(() => drop(`master ${s.location.node} did not answer within ${options.requestTimeoutMs} ms`)).pipe(Effect.andThen(Effect.fail(new Retry({ why: "request timed out" })))),
      }))
      if (reply.type !== MessageType.Error) return reply
      const failure = decodeClientError(reply.body)
      const error = typedError(options.volume, sizeBytes, offset, length, failure)
      if (error) return yield* settle(error)
      drop(failure.message)
      return yield* new Retry({ why: failure.message })
    })

  /** A typed error from the master: a Retry when it means "wait" (module comment), else the error itself. */
  const settle = (error: VolumeError): Effect.Effect<never, VolumeError | Retry> => {
    // The record says the volume grew, the master does not serve the new bytes: it has not applied
    // the resize yet (it commits the size, then applies it), or it is an old master (a session
    // kept from before a failover answers its old size first): located again, a moment's wait.
    if (error._tag === "OutOfRange" && options.currentSize !== undefined) {
      return options.currentSize.pipe(
        Effect.orElseSucceed(() => 0),
        Effect.flatMap((current): Effect.Effect<never, VolumeError | Retry> => {
          if (!isInside(current, error.offset, error.length)) return Effect.fail(error)
          drop(`the master answered ${error.message}, but the volume is ${current} bytes now`)
          return Effect.fail(new Retry({ why: `the master of ${options.volume} applies its resize to ${current} bytes` }))
        }),
      )
    }
    if (isMasterChange(error)) {
      drop(error.message)
      return Effect.fail(new Retry({ why: error.message }))
    }
    if (error._tag !== "VolumeUnavailable" || !failureModeReasons.has(error.reason)) return Effect.fail(error)
    return options.locate.pipe(
      Effect.orElseSucceed(() => undefined),
      Effect.flatMap((location) => Effect.fail(location?.waitsForSync === true ? new Retry({ why: `${error.message}; waiting for the replicas to sync`, refusal: error }) : error)),
    )
  }

  const attempt = <A>(onLocal: (volume: MasterVolume) => Effect.Effect<A, VolumeError>, onRemote: (s: Session) => Effect.Effect<A, VolumeError | Retry>) =>
    Effect.gen(function* () {
      const s = yield* openSession
      if (s.local) return yield* onLocal(s.local).pipe(Effect.catch(settle))
      return yield* onRemote(s)
    })

  /** The pause: retries on the (new) master with backoff until it answers or `pauseMaxMs` passed. */
  const retryLoop = <A>(operation: Effect.Effect<A, VolumeError | Retry>, first: Retry): Effect.Effect<A, VolumeError> =>
    Effect.gen(function* () {
      const startedMs = yield* Clock.currentTimeMillis
      let last = first
      const note = (retry: Retry) => {
        retries++
        last = retry
        options.onRetry?.(retry.why)
      }
      note(first)
      const schedule = Schedule.exponential(20).pipe((s) => Schedule.min([s, Schedule.spaced(retryDelayMaxMs)]))
      return yield* Effect.sleep(10).pipe(
        Effect.andThen(operation),
        Effect.tapError((e) => Effect.sync(() => e instanceof Retry && note(e))),
        Effect.retry({ schedule, while: (e) => e instanceof Retry && !closed }),
        Effect.timeoutOrElse({ duration: options.pauseMaxMs, orElse: () => Effect.fail(last) }),
        Effect.catch((e): Effect.Effect<never, VolumeError> =>
          e instanceof Retry ? Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(pauseEnded(e, now - startedMs))) : Effect.fail(e)),
      )
    })

  /** The error a pause ends with: the failure mode's refusal it waited out, or no master. */
  const pauseEnded = (last: Retry, waitedMs: number): VolumeUnavailable =>
    last.refusal
      ? new VolumeUnavailable({
          volume: options.volume, reason: last.refusal.reason, health: last.refusal.health,
          message: `${last.refusal.message} (the replicas did not sync within ${waitedMs} ms)`,
        })
      : new VolumeUnavailable({
          volume: options.volume, reason: "no-master", health: "unavailable",
          message: `volume ${options.volume}: no master answered for ${waitedMs} ms (last: ${last.why})`,
        })

  /** The first attempt runs bare (the fast path); only a retryable failure enters the pause. */
  const withRetry = <A>(operation: Effect.Effect<A, VolumeError | Retry>): Effect.Effect<A, VolumeError> =>
    operation.pipe(Effect.catch((e): Effect.Effect<A, VolumeError> => (e instanceof Retry ? retryLoop(operation, e) : Effect.fail(e))))

  const writeChunk = (offset: number, data: Uint8Array) =>
    withRetry(attempt((v) => v.write(offset, data), (s) => Effect.asVoid(request(s, MessageType.Write, offset, data.length, data))))

  const readChunk = (offset: number, length: number) =>
    withRetry(attempt((v) => v.read(offset, length), (s) => Effect.map(request(s, MessageType.Read, offset, length, new Uint8Array(0)), (f) => f.body)))

  const write = (offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> =>
    Effect.andThen(inRange(offset, data.length), Effect.suspend((): Effect.Effect<void, VolumeError> => {
      // One chunk (every FUSE request, most writes) runs in the caller's fiber: no fiber per part.
      if (data.length <= writeChunkBytesMax) return writeChunk(offset, data)
      const parts: Array<[number, Uint8Array]> = []
      for (let at = 0; at < data.length; at += writeChunkBytesMax) parts.push([offset + at, data.subarray(at, at + writeChunkBytesMax)])
      return Effect.forEach(parts, ([o, d]) => writeChunk(o, d), { concurrency: 8, discard: true })
    }))

  const read = (offset: number, length: number): Effect.Effect<Uint8Array, VolumeError> =>
    Effect.andThen(inRange(offset, length), Effect.suspend((): Effect.Effect<Uint8Array, VolumeError> => {
      if (length <= writeChunkBytesMax) return readChunk(offset, length)
      const out = new Uint8Array(length)
      const parts: number[] = []
      for (let at = 0; at < length; at += writeChunkBytesMax) parts.push(at)
      return Effect.as(Effect.forEach(parts, (at) => Effect.map(readChunk(offset + at, Math.min(writeChunkBytesMax, length - at)), (bytes) => out.set(bytes, at)), { concurrency: 8, discard: true }), out)
    }))

  const flush = withRetry(attempt((v) => v.flush, (s) => Effect.asVoid(request(s, MessageType.Flush, 0, 0, new Uint8Array(0)))))

  const client = {
    name: options.volume,
    write, read, flush,
    retries: () => retries,
    close: Effect.sync(() => {
      closed = true
      drop("client closed")
    }),
  }
  return Object.defineProperty(client, "sizeBytes", { get: () => sizeBytes, enumerable: true }) as typeof client & { readonly sizeBytes: number } satisfies VolumeClient
}
