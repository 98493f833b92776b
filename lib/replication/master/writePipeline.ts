/**
 * The write pipeline of a master session (one network round trip per write).
 *
 * Under the order lock a chunk is queued on every replica link (sent at once) and its local store
 * write started in the same step, so every copy sees overlapping writes in one order and the
 * replicas apply it while the master writes its own. The lock is released before waiting; many
 * writes are in flight at once, bounded by `inflightWritesPerReplicaMax`. A write completes when
 * the master and every replica that was in sync when it was queued acknowledged it, or — when
 * such a replica failed meanwhile — once that failure is recorded (links.ts), and the failure
 * mode still allows IO. Encrypted writes take their own way to the same queue (encryptedWrite.ts).
 *
 * Buffer rule: the caller may reuse a write's buffer once the write settled. Until then in-sync
 * links send (and resend) the caller's bytes; if the caller stops waiting (interruption, or the
 * master's own write failed), each link still holding the frame takes its own copy first.
 */
import { Deferred, Effect, Fiber } from "effect"
import { inflightWritesPerReplicaMax, writeChunkBytesMax } from "../../core/limits.ts"
import { MessageType } from "../../wire/index.ts"
import { checkRange, type OutOfRange, type VolumeError } from "../errors.ts"
import { pendingFramesPerReplicaMax } from "../replicaLink.ts"
import { assert } from "../../core/assert.ts"
import { unitSpan } from "../../crypt/volumeCipher.ts"
import { checkUsable, storeFailed, withinDiskTimeout } from "./serving.ts"
import { storeFailure, type MasterState, type Wait } from "./state.ts"

/** Sync chunks in flight per replica during a resync. */
export const syncWindowChunks = 4

/**
 * Frames a syncing link may fall behind before writes wait for it too (enqueueOnLinks): half its
 * limit, so the most writes in flight (`inflightWritesPerReplicaMax`) and a sync window on top
 * never reach the limit that fails it as overloaded.
 */
export const syncingBacklogFrames = pendingFramesPerReplicaMax / 2
assert(syncingBacklogFrames + inflightWritesPerReplicaMax + syncWindowChunks < pendingFramesPerReplicaMax, "a syncing link slowed at its backlog never overflows")

/**
 * Queues a frame on every link; what the chunk waits for on each (see Wait). A chunk waits for
 * an in-sync link's ack, and for a syncing link's once that link is `syncingBacklogFrames`
 * behind: writers then go at the pace of the replica being synced instead of outrunning it
 * until it is failed as overloaded (and revived, and overloaded again: a resync under
 * sustained writes at queue depth 32 never ended; test/unit/replication/resyncUnderLoad.test.ts).
 */
const enqueueOnLinks = (state: MasterState, type: MessageType, offset: number, data: Uint8Array): Wait[] => {
  const waits: Wait[] = []
  for (const link of state.links) {
    const wasInSync = link.inSync()
    const done = link.enqueue(type, offset, data)
    if (done && (wasInSync || link.pendingCount() > syncingBacklogFrames)) waits.push({ link, done })
    const unrecorded = wasInSync ? undefined : state.failurePersisted.get(link)
    if (unrecorded && !Deferred.isDoneUnsafe(unrecorded)) waits.push({ link, unrecorded })
  }
  return waits
}

/** The caller stops waiting for these frames: each link still holding one takes its own copy of the bytes. */
export const adoptBodies = (waits: ReadonlyArray<Wait>) => {
  for (const wait of waits) if ("done" in wait) wait.link.adoptBody(wait.done)
}

/**
 * Writes one chunk locally and queues it on every link, atomically with respect to other
 * chunks. `prepare`, when given, makes the chunk's bytes under the order lock (an encrypted
 * write's read-modify-write of its edge units: no other write to them can come between).
 */
export const queueChunk = (state: MasterState, type: MessageType, offset: number, chunk: Uint8Array, prepare?: Effect.Effect<Uint8Array, VolumeError>) =>
  // Uninterruptible: a chunk queued on the links is written locally too (or its write fails the master).
  state.orderLock.withPermits(1)(Effect.uninterruptible(Effect.gen(function* () {
    yield* checkUsable(state)
    const data = prepare ? yield* prepare : chunk
    // The links first: the replicas receive and apply the chunk while the master writes its own copy.
    const waits = enqueueOnLinks(state, type, offset, data)
    if (type !== MessageType.Write) return waits
    state.writtenSinceEmpty?.mark(offset, data.length)
    // Started here, in order with every other chunk (the store orders overlapping writes by
    // their start); one that goes to the thread pool is waited for outside the order lock.
    const local = yield* Effect.forkChild(state.store.write(offset, data), { startImmediately: true })
    const exit = local.pollUnsafe()
    if (exit === undefined) return [...waits, { local }]
    return yield* Effect.suspend(() => exit).pipe(
      Effect.catch(storeFailed(state, "write")),
      // Failed: the caller may reuse its buffer at once, the links keep their own copies.
      Effect.tapError(() => Effect.sync(() => adoptBodies(waits))),
      Effect.as(waits),
    )
  })))

/** One replica's ack; a replica that failed under this write: the write completes only once that is recorded. */
const awaitReplica = (state: MasterState, wait: Wait): Effect.Effect<void, VolumeError> => {
  if ("local" in wait) return Fiber.join(wait.local).pipe(Effect.catch(storeFailed(state, "write")))
  if ("unrecorded" in wait) return Deferred.await(wait.unrecorded)
  const { link, done } = wait
  return link.awaitAck(done).pipe(
    Effect.catch(() => Effect.suspend(() => {
      const persisted = state.failurePersisted.get(link)
      return persisted ? Deferred.await(persisted) : Effect.void
    })),
  )
}

/** Every wait of a chunk, then the failure mode's check (a replica may have failed meanwhile). */
export const awaitReplicas = (state: MasterState, waits: ReadonlyArray<Wait>) => {
  // One replica (the common case) is awaited in this fiber; several at once, each in its own.
  const acks = waits.length === 0 ? Effect.void
    : waits.length === 1 ? awaitReplica(state, waits[0]!)
    : Effect.forEach(waits, (wait) => awaitReplica(state, wait), { concurrency: "unbounded", discard: true })
  return Effect.andThen(acks, checkUsable(state))
}

/**
 * One chunk of a write, from its in-flight permit to its acknowledgement. `queue` puts it in the
 * stream, called once the permit is held (default: queueChunk with the chunk as it is);
 * `acknowledged` is the range told to `onWriteAcknowledged`.
 */
export const writeChunk = (
  state: MasterState, offset: number, data: Uint8Array,
  queue: () => Effect.Effect<Wait[], VolumeError> = () => queueChunk(state, MessageType.Write, offset, data),
  acknowledged: readonly [number, number] = [offset, data.length],
) =>
  state.inflight.withPermits(1)(Effect.gen(function* () {
    state.lastForegroundMs = state.clock.currentTimeMillisUnsafe()
    const waits = yield* queue()
    // Interrupted, or the master's own write failed: the caller may reuse its buffer, the links keep copies.
    yield* awaitReplicas(state, waits).pipe(Effect.onError(() => Effect.sync(() => adoptBodies(waits))))
    state.options.onWriteAcknowledged?.(acknowledged[0], acknowledged[1])
  }))

/** Chunks settle each on its own (no fail-fast: none is still in flight on the caller's buffer); the first failure is the write's. */
export const settleAll = (chunks: ReadonlyArray<Effect.Effect<void, VolumeError>>) =>
  Effect.forEach(chunks, (chunk) => Effect.result(chunk), { concurrency: 8 }).pipe(
    Effect.flatMap((results) => {
      const failed = results.find((result) => result._tag === "Failure")
      return failed === undefined ? Effect.void : Effect.fail(failed.failure)
    }),
  )

/** A plain write: in chunks of at most `writeChunkBytesMax`, all in flight at once. */
export const writePlain = (state: MasterState, offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> => {
  if (data.length <= writeChunkBytesMax) return writeChunk(state, offset, data)
  const chunks: Array<Effect.Effect<void, VolumeError>> = []
  for (let at = 0; at < data.length; at += writeChunkBytesMax) chunks.push(writeChunk(state, offset + at, data.subarray(at, at + writeChunkBytesMax)))
  return settleAll(chunks)
}

/** A read of the master's own copy (decrypted for an encrypted volume: whole units read, the range returned). */
export const read = (state: MasterState, offset: number, length: number): Effect.Effect<Uint8Array, VolumeError> =>
  Effect.suspend((): Effect.Effect<Uint8Array, VolumeError> => {
    const { volume, store, cipher } = state
    const rangeError: OutOfRange | undefined = checkRange(volume, state.visibleBytes, offset, length)
    if (rangeError) return Effect.fail(rangeError)
    if (!cipher) return Effect.andThen(checkUsable(state), store.read(offset, length).pipe(Effect.mapError(storeFailure(volume))))
    const span = unitSpan(offset, length, state.visibleBytes, cipher.unitBytes)
    return Effect.andThen(checkUsable(state), store.read(span.start, span.end - span.start).pipe(
      Effect.mapError(storeFailure(volume)),
      Effect.flatMap((stored) => cipher.decryptBackground(span.start, stored)),
      Effect.map((plain) => plain.subarray(offset - span.start, offset - span.start + length)),
    ))
  })

/** A flush: ordered after every write queued before it, the master's fdatasync, and every in-sync replica's. */
export const flush = (state: MasterState): Effect.Effect<void, VolumeError> =>
  state.inflight.withPermits(1)(Effect.gen(function* () {
    const waits = yield* queueChunk(state, MessageType.Flush, 0, new Uint8Array(0))
    yield* withinDiskTimeout(state, "fdatasync", state.store.flush).pipe(Effect.catch(storeFailed(state, "fdatasync")))
    yield* awaitReplicas(state, waits)
  }))

/** Every in-flight permit taken at once: no write or flush is between its start and its settlement. */
export const drain = (state: MasterState, timeoutMs: number) =>
  state.inflight.withPermits(inflightWritesPerReplicaMax)(Effect.succeed(true)).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.succeed(false) }))
