/**
 * Continuity of a copy across a process restart: telling a process crash (the page cache kept
 * every write the copy acknowledged) from a power loss (unflushed writes gone) or a replaced disk.
 *
 * Beside each copy the node keeps a small marker, scoped to the machine's boot (file stores: the
 * Linux `boot_id` is in it; the simulator clears it at a power loss), holding the copy's meta
 * record exactly as this process last wrote it and the chain of process incarnations that held
 * the copy since the machine booted. A process that opens the copy and finds the marker of this
 * boot with a meta record equal to the one on disk knows the copy holds every write those
 * processes made: the machine did not lose power (the page cache survived), and the disk was not
 * wiped or restored from an image of another session in between (its record would differ).
 *
 * The marker only ever errs towards "no continuity" (today's rule: a restarted copy cannot vouch
 * for its recent writes): it is written after the meta record it mirrors (a crash in between
 * leaves a mismatch), and removed before any failed write, fdatasync or grow is reported (the
 * kernel may have dropped the page cache; what this process acknowledged may be gone), after
 * which this open never writes one again. A backup of the same session restored while the
 * machine stayed up is not detected (as for the meta record: docs/design.md).
 */
import { Effect } from "effect"
import { isCount } from "../core/guards.ts"
import { wrapStore, type BlockStore, type Continuity, type StoreError } from "./BlockStore.ts"
import { encodeMeta } from "./meta.ts"

/** Where markers live: boot-scoped, best effort (a marker that cannot be read or written is simply absent). */
export interface CopyMarkers {
  /** The marker of `path` written in this boot, or undefined (none, another boot's, unreadable). */
  readonly read: (path: string) => Effect.Effect<string | undefined>
  readonly write: (path: string, text: string) => Effect.Effect<void>
  readonly remove: (path: string) => Effect.Effect<void>
}

/** Largest marker read (a marker is a few hundred bytes; anything bigger is not one). */
export const markerBytesMax = 8192

/** Incarnations kept in a marker's chain (older ones cannot be named by a record that matters any more). */
export const chainLengthMax = 8

interface Marker {
  readonly incarnations: ReadonlyArray<number>
  readonly meta: string
  /** The epoch a process of the chain served the copy at as master. */
  readonly served?: number
}

const parseMarker = (text: string | undefined): Marker | undefined => {
  if (text === undefined || text.length > markerBytesMax) return undefined
  try {
    const value = JSON.parse(text) as Partial<Marker>
    if (!Array.isArray(value.incarnations) || !value.incarnations.every(isCount) || typeof value.meta !== "string") return undefined
    if (value.served !== undefined && !isCount(value.served)) return undefined
    return { incarnations: value.incarnations, meta: value.meta, ...(value.served === undefined ? {} : { served: value.served }) }
  } catch {
    return undefined
  }
}

/**
 * Opens continuity on `store` for the process `incarnation`: the returned store's `continuity`
 * tells what it proves about the node's earlier processes, and it keeps the marker in step with
 * its meta record.
 */
export const continueCopy = (store: BlockStore, markers: CopyMarkers, path: string, incarnation: number): Effect.Effect<BlockStore> =>
  Effect.gen(function* () {
    const meta = yield* Effect.orElseSucceed(store.readMeta, () => undefined)
    const found = parseMarker(yield* markers.read(path))
    const marker = meta !== undefined && found !== undefined && found.meta === encodeMeta(meta) ? found : undefined
    const continuedFrom = marker?.incarnations.filter((i) => i !== incarnation) ?? []
    const chain = [...continuedFrom, incarnation].slice(-chainLengthMax)
    let served = marker?.served
    let metaText = meta === undefined ? undefined : encodeMeta(meta)
    let poisoned = false
    const mirror = Effect.suspend(() =>
      poisoned || metaText === undefined ? Effect.void : markers.write(path, JSON.stringify({ incarnations: chain, meta: metaText, ...(served === undefined ? {} : { served }) })))
    if (meta === undefined) yield* markers.remove(path)
    else yield* mirror
    const poisonOnFailure = <A>(effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
      Effect.tapError(effect, () => Effect.suspend(() => {
        poisoned = true
        return markers.remove(path)
      }))
    const continuity: Continuity = {
      continuedFrom: () => (poisoned ? [] : continuedFrom),
      holdsWritesOf: (earlier) => !poisoned && (earlier === incarnation || continuedFrom.includes(earlier)),
      servedEpoch: () => (poisoned ? undefined : served),
      noteServed: (epoch) => Effect.suspend(() => {
        served = epoch
        return mirror
      }),
    }
    return wrapStore(store, {
      continuity,
      write: (offset, data) => poisonOnFailure(store.write(offset, data)),
      flush: poisonOnFailure(store.flush),
      grow: (sizeBytes) => poisonOnFailure(store.grow(sizeBytes)),
      writeMeta: (next) => Effect.andThen(poisonOnFailure(store.writeMeta(next)), Effect.suspend(() => {
        metaText = encodeMeta(next)
        return mirror
      })),
    })
  })
