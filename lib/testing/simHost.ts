/**
 * One simulated machine of the cluster simulator: what its process sees of time, the control
 * store, its disks and the network, and the faults that act on them.
 *
 * Why a harness per host: faults act on a machine, not on the whole process the simulator runs
 * in. A host has its own wall clock (stepped forward or back by a fault, while sleeps and the
 * monotonic clock run on — the TestClock itself cannot step only wall time, and a real cluster's
 * nodes each have their own wall clock), can be paused (a stopped process: its sleeps do not end,
 * its control-store calls and network traffic wait, until it resumes), and reaches the control
 * store with a latency drawn from the seed. Each start of the node is an incarnation: when it
 * crashes, everything it still holds — a forgotten fiber, a finalizer — loses its disks, its
 * control store and its dialer at once, as a dead process does.
 */
import { Clock, Deferred, Duration, Effect, Layer } from "effect"
import { ControlError, ControlStore, type ControlStoreShape } from "../control/ControlStore.ts"
import { NetError, Transport } from "../net/Transport.ts"
import { closedError, wrapStore, type BlockStore, type StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import type { CopyMarkers } from "../store/continuity.ts"
import type { SeededRandom } from "../core/seeded.ts"

/** The control-store round trip of one host: a base delay, and occasional spikes. */
export interface ControlLatency {
  /** Every call waits uniformly in [0, baseMaxMs] each way. */
  readonly baseMaxMs: number
  /** Probability that a call waits `spikeMs` instead. */
  readonly spikeProbability: number
  readonly spikeMs: number
}

export const noControlLatency: ControlLatency = { baseMaxMs: 0, spikeProbability: 0, spikeMs: 0 }

/** One start of the node's process: dead once it crashed, for everything it left behind. */
export interface Incarnation {
  alive: boolean
}

export interface SimHost {
  readonly index: number
  readonly name: string
  readonly address: string
  /** Added to the wall clock this host reads (a clock step moves it). */
  wallOffsetMs: number
  latency: ControlLatency
  /** Cut off from the control store (a partition): calls fail at once as unreachable. */
  cutFromStore: boolean
  readonly isPaused: () => boolean
  readonly pause: () => void
  readonly resume: () => void
  /** Waits while the host is paused (returns at once when it runs). */
  readonly awaitRunning: Effect.Effect<void>
}

export const makeSimHost = (index: number, name: string, address: string, latency: ControlLatency, wallOffsetMs = 0): SimHost => {
  let resumed: Deferred.Deferred<void> | undefined
  const awaitRunning: Effect.Effect<void> = Effect.suspend(() => (resumed === undefined ? Effect.void : Effect.andThen(Deferred.await(resumed), awaitRunning)))
  return {
    index, name, address, wallOffsetMs, latency, cutFromStore: false,
    isPaused: () => resumed !== undefined,
    pause: () => {
      if (resumed === undefined) resumed = Deferred.makeUnsafe<void>()
    },
    resume: () => {
      const waiting = resumed
      resumed = undefined
      if (waiting) Deferred.doneUnsafe(waiting, Effect.void)
    },
    awaitRunning,
  }
}

/** The clock the host's process reads: its own wall time; sleeps that end while it is paused end when it resumes. */
export const hostClock = (base: Clock.Clock, host: SimHost): Clock.Clock => wallSteppedClock(base, () => host.wallOffsetMs, host.awaitRunning)

/**
 * `base` with its wall clock moved by `offsetMs()` (a clock step, forward or back, at any time):
 * monotonic time and sleeps stay `base`'s, and each sleep ends with `afterSleep`.
 */
export const wallSteppedClock = (base: Clock.Clock, offsetMs: () => number, afterSleep: Effect.Effect<void> = Effect.void): Clock.Clock => {
  const wallMs = () => base.currentTimeMillisUnsafe() + offsetMs()
  const wallNanos = () => base.currentTimeNanosUnsafe() + BigInt(offsetMs()) * 1_000_000n
  return {
    currentTimeMillisUnsafe: wallMs,
    currentTimeMillis: Effect.sync(wallMs),
    currentTimeNanosUnsafe: wallNanos,
    currentTimeNanos: Effect.sync(wallNanos),
    monotonicTimeNanosUnsafe: () => base.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: Effect.sync(() => base.monotonicTimeNanosUnsafe()),
    sleep: (duration) => Effect.andThen(base.sleep(duration), afterSleep),
  }
}

/** One way of a control-store round trip, drawn from the seed. */
const latencyMs = (latency: ControlLatency, random: SeededRandom) =>
  random.next() < latency.spikeProbability ? latency.spikeMs : Math.floor(random.next() * (latency.baseMaxMs + 1))

/**
 * The control store as one incarnation of the host reaches it: unreachable while cut off or once
 * the incarnation is dead, delayed by the host's latency each way, held while the host is paused,
 * and run on the store's own clock (`base`), never the host's stepped wall clock.
 */
export const hostControlStore = (inner: ControlStoreShape, host: SimHost, incarnation: Incarnation, base: Clock.Clock, random: SeededRandom): ControlStoreShape => {
  const unreachable = (why: string) => new ControlError({ reason: "unreachable", message: `control store unreachable from ${host.name} (${why})` })
  const travel = Effect.suspend(() => {
    const delayMs = latencyMs(host.latency, random)
    return delayMs > 0 ? base.sleep(Duration.millis(delayMs)) : Effect.void
  })
  const call = <A>(effect: Effect.Effect<A, ControlError>): Effect.Effect<A, ControlError> =>
    Effect.gen(function* () {
      yield* host.awaitRunning
      if (!incarnation.alive) return yield* unreachable("its process is dead")
      if (host.cutFromStore) return yield* unreachable("simulated partition")
      yield* travel
      const result = yield* Effect.result(Effect.provideService(effect, Clock.Clock, base))
      yield* travel
      yield* host.awaitRunning
      if (!incarnation.alive) return yield* unreachable("its process is dead")
      if (result._tag === "Failure") return yield* Effect.fail(result.failure)
      return result.success
    })
  return {
    get: (key) => call(inner.get(key)),
    list: (prefix) => call(inner.list(prefix)),
    put: (key, value, options) => call(inner.put(key, value, options)),
    delete: (key) => call(inner.delete(key)),
    transaction: (txn) => call(inner.transaction(txn)),
    grantLease: (ttlMs) => call(inner.grantLease(ttlMs)),
    keepAlive: (lease) => call(inner.keepAlive(lease)),
    revokeLease: (lease) => call(inner.revokeLease(lease)),
    watch: (prefix) => inner.watch(prefix),
  }
}

/** A disk as one incarnation uses it: after the crash, nothing it left behind reads, writes or closes it. */
const incarnationStore = (store: BlockStore, incarnation: Incarnation, path: string): BlockStore => {
  const dead = () => closedError(path, `an operation of a crashed process`)
  const gate = <A>(effect: Effect.Effect<A, StoreError>) => Effect.suspend(() => (incarnation.alive ? effect : Effect.fail(dead())))
  return wrapStore(store, {
    read: (offset, length) => gate(store.read(offset, length)),
    write: (offset, data) => gate(store.write(offset, data)),
    flush: gate(store.flush),
    close: Effect.suspend(() => (incarnation.alive ? store.close : Effect.void)),
    readMeta: gate(store.readMeta),
    writeMeta: (meta) => gate(store.writeMeta(meta)),
    grow: (sizeBytes) => gate(store.grow(sizeBytes)),
  })
}

const gatedMarkers = (markers: CopyMarkers, incarnation: Incarnation): CopyMarkers => ({
  read: (path) => Effect.suspend(() => (incarnation.alive ? markers.read(path) : Effect.succeed(undefined))),
  write: (path, text) => Effect.suspend(() => (incarnation.alive ? markers.write(path, text) : Effect.void)),
  remove: (path) => Effect.suspend(() => (incarnation.alive ? markers.remove(path) : Effect.void)),
})

/** The services one incarnation of a host runs with: its control-store view, its disks, its dialer. */
export const incarnationLayer = (
  host: SimHost,
  incarnation: Incarnation,
  services: { readonly control: ControlStoreShape; readonly stores: Stores["Service"]; readonly transport: Transport["Service"]; readonly base: Clock.Clock; readonly random: SeededRandom },
) => {
  const { stores, transport } = services
  const storesView = Stores.of({
    open: (path, sizeBytes) => Effect.map(stores.open(path, sizeBytes), (store) => incarnationStore(store, incarnation, path)),
    remove: (path) => Effect.suspend(() => (incarnation.alive ? stores.remove(path) : Effect.fail(closedError(path, "remove by a crashed process")))),
    ...(stores.list ? { list: stores.list } : {}),
    // Markers like the disks: a crashed process leaves none behind and removes none.
    ...(stores.markers ? { markers: gatedMarkers(stores.markers, incarnation) } : {}),
  })
  const transportView = Transport.of({
    listen: transport.listen,
    dial: (address, options) =>
      Effect.suspend(() => incarnation.alive ? transport.dial(address, options) : Effect.fail(new NetError({ reason: "closed", address: `${address.host}:${address.port}`, message: `${host.name}'s process is dead` }))),
  })
  return Layer.mergeAll(
    Layer.succeed(ControlStore, ControlStore.of(hostControlStore(services.control, host, incarnation, services.base, services.random))),
    Layer.succeed(Stores, storesView),
    Layer.succeed(Transport, transportView),
  )
}
