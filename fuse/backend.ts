/**
 * The contract between the FUSE front-end and whatever stores the volumes.
 *
 * The replication library plugs in here: the mount only ever calls `list`, `read`, `write` and
 * `flush`, and turns a `FuseBackendError` into an errno in one place (fuse/errno.ts). Keeping the
 * contract this small lets the FUSE adapter be tested against an in-memory backend, and lets the
 * benchmark measure FUSE alone against a backend that does nothing (`nullBackend`).
 *
 * Buffer lifetime: the `data` given to `write` is borrowed from libfuse (an external buffer over
 * the request's memory). It is valid only until the returned Effect completes or is interrupted
 * (the mount interrupts it when `opTimeoutMs` passes); a backend that keeps the bytes longer (a
 * queued socket write, a cache) must copy them first.
 */
import { Data, Effect } from "effect"

/** One volume as the mount shows it: `<mount>/<namespace>/<name>`, a file of `sizeBytes`. */
export interface FuseVolume {
  readonly namespace: string
  readonly name: string
  readonly sizeBytes: number
}

export type FuseBackendErrorReason =
  | "unavailable"
  | "out-of-range"
  | "not-found"
  | "read-only"
  | "timeout"
  | "no-space"
  | "io"

/** Every expected failure of a backend; the mount matches on `reason`, never on `message`. */
export class FuseBackendError extends Data.TaggedError("FuseBackendError")<{
  readonly reason: FuseBackendErrorReason
  readonly message: string
}> {}

export interface FuseBackend {
  /** Every volume that should appear under the mount (the mount caches this briefly). */
  readonly list: Effect.Effect<ReadonlyArray<FuseVolume>, FuseBackendError>
  /** Up to `length` bytes at `offset`; fewer only at the end of the volume. The mount copies them out at once, so a view is fine. */
  readonly read: (namespace: string, name: string, offset: number, length: number) => Effect.Effect<Uint8Array, FuseBackendError>
  /** Resolves only when the write is durable per replication semantics (master and every in-sync replica). */
  readonly write: (namespace: string, name: string, offset: number, data: Uint8Array) => Effect.Effect<void, FuseBackendError>
  /** fsync: resolves when every earlier write has reached the disk of every in-sync copy. */
  readonly flush: (namespace: string, name: string) => Effect.Effect<void, FuseBackendError>
}

/** Test hooks of the in-memory backend. */
export interface MemoryBackend extends FuseBackend {
  /** While set, every read/write/flush of that volume fails with reason "unavailable". */
  readonly setUnavailable: (namespace: string, name: string, unavailable: boolean) => void
  /** While set, every read/write/flush of that volume never completes (to test the op timeout). */
  readonly setStalled: (namespace: string, name: string, stalled: boolean) => void
  /** The volume's bytes as stored (a live view, not a copy). */
  readonly contents: (namespace: string, name: string) => Uint8Array
  /** Adds a volume (zero-filled) after the mount was made. */
  readonly addVolume: (volume: FuseVolume) => void
  /** How many times `flush` succeeded for the volume. */
  readonly flushCount: (namespace: string, name: string) => number
}

const key = (namespace: string, name: string): string => `${namespace}/${name}`

const notFound = (namespace: string, name: string): FuseBackendError =>
  new FuseBackendError({ reason: "not-found", message: `no volume ${namespace}/${name}; list shows the volumes that exist` })

const outOfRange = (namespace: string, name: string, offset: number, length: number, sizeBytes: number): FuseBackendError =>
  new FuseBackendError({
    reason: "out-of-range",
    message: `${namespace}/${name}: bytes ${offset}..${offset + length} are outside the volume (0..${sizeBytes})`,
  })

interface MemoryVolume {
  readonly volume: FuseVolume
  readonly bytes: Uint8Array
  unavailable: boolean
  stalled: boolean
  flushes: number
}

/** An in-memory backend for tests: every volume a zero-filled Uint8Array. */
export const memoryBackend = (volumes: ReadonlyArray<FuseVolume>): MemoryBackend => {
  const table = new Map<string, MemoryVolume>()
  const addVolume = (volume: FuseVolume): void => {
    table.set(key(volume.namespace, volume.name), {
      volume,
      bytes: new Uint8Array(volume.sizeBytes),
      unavailable: false,
      stalled: false,
      flushes: 0,
    })
  }
  for (const volume of volumes) addVolume(volume)
  const lookup = (namespace: string, name: string): MemoryVolume => {
    const entry = table.get(key(namespace, name))
    if (entry === undefined) throw new Error(`memoryBackend: no volume ${namespace}/${name}`)
    return entry
  }
  // Resolves the volume for an IO, applying the test hooks (unavailable, stalled).
  const usable = (namespace: string, name: string): Effect.Effect<MemoryVolume, FuseBackendError> =>
    Effect.suspend(() => {
      const entry = table.get(key(namespace, name))
      if (entry === undefined) return Effect.fail(notFound(namespace, name))
      if (entry.stalled) return Effect.never
      if (entry.unavailable) {
        return Effect.fail(new FuseBackendError({ reason: "unavailable", message: `${namespace}/${name} is unavailable (test hook)` }))
      }
      return Effect.succeed(entry)
    })
  return {
    list: Effect.sync(() => [...table.values()].map((entry) => entry.volume)),
    read: (namespace, name, offset, length) =>
      Effect.flatMap(usable(namespace, name), (entry) => {
        const sizeBytes = entry.bytes.length
        if (offset < 0 || length < 0 || offset > sizeBytes) return Effect.fail(outOfRange(namespace, name, offset, length, sizeBytes))
        return Effect.succeed(entry.bytes.subarray(offset, Math.min(sizeBytes, offset + length)))
      }),
    write: (namespace, name, offset, data) =>
      Effect.flatMap(usable(namespace, name), (entry) => {
        const sizeBytes = entry.bytes.length
        if (offset < 0 || offset + data.length > sizeBytes) return Effect.fail(outOfRange(namespace, name, offset, data.length, sizeBytes))
        entry.bytes.set(data, offset)
        return Effect.void
      }),
    flush: (namespace, name) =>
      Effect.map(usable(namespace, name), (entry) => {
        entry.flushes++
      }),
    setUnavailable: (namespace, name, unavailable) => {
      lookup(namespace, name).unavailable = unavailable
    },
    setStalled: (namespace, name, stalled) => {
      lookup(namespace, name).stalled = stalled
    },
    contents: (namespace, name) => lookup(namespace, name).bytes,
    addVolume,
    flushCount: (namespace, name) => lookup(namespace, name).flushes,
  }
}

/** Largest read the null backend answers in one call (FUSE requests are at most 128 KiB). */
export const nullReadBytesMax = 1024 * 1024

/**
 * A backend that stores nothing: writes succeed at once, reads return zeros. The benchmark's
 * baseline — what FUSE and the adapter cost with no storage behind them.
 */
export const nullBackend = (volumes: ReadonlyArray<FuseVolume>): FuseBackend => {
  const zeros = new Uint8Array(nullReadBytesMax)
  const sizes = new Map(volumes.map((volume) => [key(volume.namespace, volume.name), volume.sizeBytes]))
  const sizeOf = (namespace: string, name: string): Effect.Effect<number, FuseBackendError> => {
    const sizeBytes = sizes.get(key(namespace, name))
    return sizeBytes === undefined ? Effect.fail(notFound(namespace, name)) : Effect.succeed(sizeBytes)
  }
  return {
    list: Effect.succeed(volumes),
    read: (namespace, name, offset, length) =>
      Effect.flatMap(sizeOf(namespace, name), (sizeBytes) => {
        if (offset < 0 || length < 0 || offset > sizeBytes || length > nullReadBytesMax) {
          return Effect.fail(outOfRange(namespace, name, offset, length, sizeBytes))
        }
        return Effect.succeed(zeros.subarray(0, Math.min(length, sizeBytes - offset)))
      }),
    write: (namespace, name, offset, data) =>
      Effect.flatMap(sizeOf(namespace, name), (sizeBytes) =>
        offset < 0 || offset + data.length > sizeBytes ? Effect.fail(outOfRange(namespace, name, offset, data.length, sizeBytes)) : Effect.void),
    flush: (namespace, name) => Effect.asVoid(sizeOf(namespace, name)),
  }
}
