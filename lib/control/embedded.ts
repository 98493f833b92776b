/**
 * The embedded control store: the default, in memory, in the same process.
 *
 * It wraps the pure KeySpace with Effect's Clock (so it runs under TestClock in the simulator),
 * watchers (a bounded queue each: a consumer more than `watchBufferEventsMax` events behind fails
 * with `watch-lagged` instead of growing memory) and optional persistence.
 *
 * Leases expire when Clock's monotonic time passes their deadline (`leaseTimeMs`: a wall-clock
 * step neither expires nor prolongs a lease): every operation checks first, and a background
 * fiber in the layer's scope sweeps every `sweepIntervalMs` of Clock time, so watchers see the
 * deletes even when nobody calls the store.
 *
 * Persistence (`layerPersisted`, and `layerFile` in embeddedFile.ts): after every change to a
 * non-leased key the whole key space is written through `SnapshotStorage` *before* the operation
 * returns, so an acknowledged change is durable and a crash loses only operations that had not
 * returned yet. Concurrent writers coalesce (one write covers every change made before it began).
 * Leased keys are never persisted: they belong to live processes, which re-create them after a
 * restart.
 *
 * Visible only once durable: with storage, every operation (reads included) runs under one gate,
 * and watchers are told of a change only after the write that covers it; so nobody acts on a
 * change a crash could still undo. If a write fails, the store fails loudly: the operation fails
 * with `unreachable` naming the file, and the store closes (every later operation and watcher
 * fails) rather than serve changes that are not on disk.
 */
import { Clock, Effect, Layer, Schedule, Semaphore, type Scope, type Stream } from "effect"
import {
  ControlError,
  ControlStore,
  type ControlStoreShape,
  type KeyValue,
  type LeaseId,
  type Txn,
  type TxnResult,
  type WatchEvent,
} from "./ControlStore.ts"
import { type Change, KeySpace } from "./keySpace.ts"
import { checkKey, checkPut, checkTtl, checkTxn, watchBufferEventsMax } from "./limits.ts"
import { decodeSnapshot, encodeSnapshot, type SnapshotStorage } from "./snapshot.ts"
import { makeWatchers } from "./watchers.ts"

export interface EmbeddedOptions {
  /** Where to persist non-leased keys; none = memory only. */
  readonly storage?: SnapshotStorage
  /** Clock time between background expiry sweeps (default 50 ms). */
  readonly sweepIntervalMs?: number
  /** Per-watcher buffer (default `watchBufferEventsMax`). */
  readonly watchBufferEvents?: number
}

export const sweepIntervalMsDefault = 50
/** Longest a write of the control store file may take before the store stops (Clock time). */
export const persistTimeoutMs = 10_000

/**
 * The time lease deadlines are kept in: the monotonic clock, never the wall clock. A wall clock
 * stepped forward past a TTL (NTP, a suspended laptop's catch-up, an operator's `date -s`) would
 * otherwise expire every node and master lease at once and fence healthy masters; stepped back,
 * it would keep a dead node's lease alive past its TTL. Leases are never persisted, so a deadline
 * never outlives the process whose clock it was measured on.
 */
const leaseTimeMs = (clock: Clock.Clock): number => Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000

const closedError = () =>
  new ControlError({ reason: "closed", message: "the embedded control store was shut down (its layer's scope closed)" })

const leaseGone = (lease: LeaseId, status: "expired" | "not-found") =>
  status === "expired"
    ? new ControlError({ reason: "lease-expired", message: `lease ${lease} expired: its TTL passed without a keepAlive` })
    : new ControlError({ reason: "lease-not-found", message: `lease ${lease} does not exist (never granted here, or revoked)` })

/** Loads the key space from storage, or starts empty. */
const loadKeySpace = (storage: SnapshotStorage | undefined) =>
  Effect.gen(function* () {
    if (storage === undefined) return new KeySpace()
    const text = yield* storage.read
    if (text === undefined) return new KeySpace()
    return KeySpace.restore(yield* decodeSnapshot(storage.name, text))
  })

/**
 * Counts durable changes and writes the snapshot when asked. Coalesced: a write covers every
 * change counted before it began, so callers that find their change already saved return at once.
 */
const makePersister = (space: KeySpace, storage: SnapshotStorage | undefined) =>
  Effect.map(Semaphore.make(1), (writeLock) => {
    let changeCount = 0
    let savedCount = 0
    const count = () => void changeCount++
    const flush: Effect.Effect<void, ControlError> = storage === undefined
      ? Effect.void
      : writeLock.withPermits(1)(Effect.suspend(() => {
        const target = changeCount
        if (savedCount >= target) return Effect.void
        return Effect.tap(storage.write(encodeSnapshot(space.snapshot())), () =>
          Effect.sync(() => {
            savedCount = Math.max(savedCount, target)
          }))
      }))
    return { count, flush }
  })

/** The store's core: the key space, its watchers, its clock discipline and persistence. */
const makeCore = (space: KeySpace, options: EmbeddedOptions) =>
  Effect.gen(function* () {
    const watchers = makeWatchers(options.watchBufferEvents ?? watchBufferEventsMax)
    const persister = yield* makePersister(space, options.storage)
    // With storage, one operation at a time: what it changed is published only once durable.
    const gate = options.storage === undefined ? undefined : yield* Semaphore.make(1)
    let closed: ControlError | undefined
    let unpublished: Array<Change["events"]> = []
    const record = (change: Change) => {
      if (gate === undefined) watchers.publish(change.events)
      else unpublished.push(change.events)
      if (change.durable) persister.count()
    }
    /** Makes every recorded change durable, then tells the watchers; a failed write closes the store. */
    const settle: Effect.Effect<void, ControlError> = Effect.suspend(() =>
      persister.flush.pipe(
        // A write that hangs (a dead disk) stops the store, so masters fence instead of waiting forever.
        Effect.timeoutOrElse({ duration: persistTimeoutMs, orElse: () => Effect.fail(new ControlError({ reason: "unreachable", message: `writing the control store file took more than ${persistTimeoutMs} ms` })) }),
        Effect.tapError((error) => Effect.sync(() => close(new ControlError({ reason: "unreachable", message: `the embedded control store stopped: ${error.message}; nothing after the last durable change was kept`, cause: error })))),
        Effect.andThen(Effect.sync(() => {
          const events = unpublished
          unpublished = []
          for (const batch of events) watchers.publish(batch)
        })),
      ))
    let settling = false
    const runAt = <A>(body: (nowMs: number) => Effect.Effect<A, ControlError>) =>
      Clock.clockWith((clock) => {
        if (closed) return Effect.fail(closed)
        const nowMs = leaseTimeMs(clock)
        record(space.expire(nowMs))
        return body(nowMs)
      })
    /** Runs `body` at the current lease time (`leaseTimeMs`), after expiring due leases; fails if the store is closed. */
    const atNow = <A>(body: (nowMs: number) => Effect.Effect<A, ControlError>): Effect.Effect<A, ControlError> =>
      // Uninterruptible: an operation whose change is applied must reach its settle (write, then
      // publish) even if its caller goes away, or a change could be seen before it is durable.
      gate === undefined ? runAt(body) : gate.withPermits(1)(Effect.uninterruptible(Effect.suspend(() => {
        settling = true
        return Effect.ensuring(Effect.tap(runAt(body), () => settle), Effect.sync(() => void (settling = false)))
      })))
    /**
     * For lease operations, which change nothing durable: not queued behind a write of the file
     * (an fsync can take seconds on a busy disk, and a keepAlive must not wait for it). What they
     * change is published at once unless a gated operation is settling (it publishes in order).
     */
    const leaseAtNow = <A>(body: (nowMs: number) => Effect.Effect<A, ControlError>): Effect.Effect<A, ControlError> =>
      gate === undefined ? runAt(body) : Effect.tap(runAt(body), () => Effect.sync(() => {
        if (settling) return
        const events = unpublished
        unpublished = []
        for (const batch of events) watchers.publish(batch)
      }))
    /** Like `atNow`, and returns only once the change is durable. */
    const mutate = <A>(body: (nowMs: number) => Effect.Effect<A, ControlError>) =>
      gate === undefined ? Effect.flatMap(atNow(body), (result) => Effect.as(persister.flush, result)) : atNow(body)
    function close(why: ControlError = closedError()) {
      if (closed) return
      closed = why
      watchers.close(why)
    }
    const checkLeases = (leases: ReadonlyArray<LeaseId | undefined>): Effect.Effect<void, ControlError> => {
      for (const lease of leases) {
        const status = lease === undefined ? "alive" : space.leaseStatus(lease)
        if (status !== "alive") return Effect.fail(leaseGone(lease!, status))
      }
      return Effect.void
    }
    return { record, atNow, leaseAtNow, mutate, close, checkLeases, watch: (prefix: string) => watchers.watch(prefix, closedError) }
  })

type Core = Effect.Success<ReturnType<typeof makeCore>>

const keyOperations = (space: KeySpace, core: Core) => ({
  get: (key: string) => Effect.flatMap(checkKey(key), () => core.atNow(() => Effect.succeed(space.get(key)))),
  list: (prefix: string): Effect.Effect<ReadonlyArray<KeyValue>, ControlError> =>
    core.atNow(() => Effect.succeed(space.list(prefix))),
  put: (key: string, value: string, options?: { readonly lease?: LeaseId }) =>
    Effect.flatMap(checkPut(key, value), () =>
      core.mutate(() =>
        Effect.map(core.checkLeases([options?.lease]), () => {
          const lease = options?.lease
          core.record(space.apply([lease === undefined ? { key, value } : { key, value, lease }], []))
          return space.revision
        }))),
  delete: (key: string) =>
    Effect.flatMap(checkKey(key), () => core.mutate(() => Effect.sync(() => core.record(space.apply([], [key]))))),
  transaction: (txn: Txn): Effect.Effect<TxnResult, ControlError> =>
    Effect.flatMap(checkTxn(txn), () =>
      core.mutate((): Effect.Effect<TxnResult, ControlError> => {
        if (!space.compareHolds(txn.compare)) return Effect.succeed({ succeeded: false, revision: space.revision })
        return Effect.map(core.checkLeases((txn.put ?? []).map((op) => op.lease)), () => {
          core.record(space.apply(txn.put ?? [], txn.delete ?? []))
          return { succeeded: true, revision: space.revision }
        })
      })),
})

const leaseOperations = (space: KeySpace, core: Core) => ({
  grantLease: (ttlMs: number) =>
    Effect.suspend(() => {
      checkTtl(ttlMs)
      return core.leaseAtNow((nowMs) => Effect.succeed(space.grant(ttlMs, nowMs)))
    }),
  keepAlive: (lease: LeaseId) =>
    core.leaseAtNow((nowMs) => {
      const status = space.keepAlive(lease, nowMs)
      return status === "alive" ? Effect.void : Effect.fail(leaseGone(lease, status))
    }),
  revokeLease: (lease: LeaseId) => core.leaseAtNow(() => Effect.sync(() => core.record(space.revoke(lease)))),
})

/** Builds the store in the current scope: the sweeper is forked into it and closing it closes the store. */
export const make = (options: EmbeddedOptions = {}): Effect.Effect<ControlStoreShape, ControlError, Scope.Scope> =>
  Effect.gen(function* () {
    const space = yield* loadKeySpace(options.storage)
    const core = yield* makeCore(space, options)
    const sweep = core.leaseAtNow(() => Effect.void).pipe(Effect.catch(() => Effect.void))
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(options.sweepIntervalMs ?? sweepIntervalMsDefault)))
    yield* Effect.addFinalizer(() => Effect.sync(() => core.close()))
    const watch = (prefix: string): Stream.Stream<WatchEvent, ControlError> => core.watch(prefix)
    return ControlStore.of({ ...keyOperations(space, core), ...leaseOperations(space, core), watch })
  })

/** In memory only: nothing survives the layer. */
export const layerMemory: Layer.Layer<ControlStore> = Layer.effect(ControlStore, Effect.orDie(make()))

/** In memory, persisted through `storage` after every change to a non-leased key (see the module doc). */
export const layerPersisted = (storage: SnapshotStorage, options: Omit<EmbeddedOptions, "storage"> = {}) =>
  Layer.effect(ControlStore, make({ ...options, storage }))
