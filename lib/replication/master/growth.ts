/**
 * Online growth of a master session's volume: this copy first (durably), then every in-sync and
 * syncing replica through the ordered stream (a Resize frame); a failed or unreachable replica is
 * told at its next Open. Once every replica that was in sync acknowledged (or its failure is
 * recorded), `commit` runs (a cluster records the new size there) and only then does IO reach the
 * new bytes: a failure before that leaves the volume at its old size, the copies grown past it
 * holding zeros there.
 */
import { Effect, type Semaphore } from "effect"
import { sectorBytes } from "../../core/limits.ts"
import { MessageType } from "../../wire/index.ts"
import type { ReplicationError, VolumeError } from "../errors.ts"
import { checkResize } from "../resize.ts"
import { checkServing, withinDiskTimeout } from "./serving.ts"
import { emit, storeFailure, type MasterState, type Wait } from "./state.ts"
import { awaitReplicas } from "./writePipeline.ts"

/** Grows this copy and every link's bitmaps, and queues a Resize on every link in the stream; the in-sync ones are returned to wait for. */
const growCopies = (state: MasterState, next: number) =>
  Effect.gen(function* () {
    const { store } = state
    // The own record is not rewritten here: one of the old size reads as well (the growth added
    // only zeros), and a rewrite racing a store failure's `incomplete` could undo it. The next
    // master open writes the new size.
    if (store.sizeBytes < next) yield* withinDiskTimeout(state, "growing the master's copy", store.grow(next)).pipe(Effect.mapError(storeFailure(state.volume)))
    return yield* state.orderLock.withPermits(1)(Effect.uninterruptible(Effect.suspend(() => {
      state.writtenSinceEmpty?.grow(next)
      const waits: Wait[] = []
      for (const link of state.links) {
        link.grow(next)
        const wasInSync = link.inSync()
        const done = link.enqueue(MessageType.Resize, next, new Uint8Array(0))
        if (done && wasInSync) waits.push({ link, done })
      }
      return Effect.succeed(waits)
    })))
  })

/** `MasterVolume.resize`, one at a time under `resizeLock`; idempotent (a second call re-sends the Resize frames). */
export const resize = <E = never, R = never>(state: MasterState, resizeLock: Semaphore.Semaphore, next: number, commit?: Effect.Effect<void, E, R>): Effect.Effect<void, VolumeError | ReplicationError | E, R> =>
  resizeLock.withPermits(1)(Effect.gen(function* () {
    // An encrypted volume grows in whole cipher units (resize.ts).
    const bad = checkResize(state.volume, state.visibleBytes, next, undefined, state.cipher ? state.cipher.unitBytes : sectorBytes)
    if (bad) return yield* bad
    if (next === state.visibleBytes) return
    // Not the failure mode's IO check: a resize changes no byte, and a hard volume waiting for a
    // replica grows too (the missing copy is grown at its next Open).
    yield* checkServing(state)
    const waits = yield* growCopies(state, next)
    yield* awaitReplicas(state, waits).pipe(Effect.catchTag("VolumeUnavailable", (error) => (state.fenced ? Effect.fail(error) : checkServing(state))))
    if (commit) yield* commit
    const before = state.visibleBytes
    state.visibleBytes = next
    emit(state, "resized", `volume ${state.volume} grew from ${before} to ${next} bytes on the master and ${waits.length} in-sync replica${waits.length === 1 ? "" : "s"}`)
  }))
