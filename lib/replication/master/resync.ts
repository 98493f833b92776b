/**
 * Resync: a replica link's dirty regions copied through the ordered stream, then the replica
 * marked in sync.
 *
 * A syncing replica receives live writes, and the copy of old data goes through the same ordered
 * stream — each chunk is read from the master's store and queued under the order lock, so it can
 * never overwrite a newer write. The copy walks the link's dirty bitmap (all regions for a full
 * sync; the regions written while it was away for a delta). It is throttled to a share of the time
 * while foreground IO is active. The replica becomes in sync only after the copy and every write
 * queued since it began are acknowledged (docs/design.md, invariant 3). Full sync or delta is
 * decided from the copy's own answer to Open (copyIdentity.ts), never from the master's memory alone.
 */
import { Deferred, Effect, Fiber } from "effect"
import { writeChunkBytesMax } from "../../core/limits.ts"
import type { DirtyRegion } from "../../store/dirtyBitmap.ts"
import { MessageType, encodeJsonBody } from "../../wire/index.ts"
import { decideSync, type Lineage, type SyncDecision } from "../copyIdentity.ts"
import { LinkFailure, type ReplicaLink } from "../replicaLink.ts"
import { emit, fence, type MasterState } from "./state.ts"
import { syncWindowChunks } from "./writePipeline.ts"

/** Longest pause the resync throttle takes between chunks while foreground IO is active. */
export const resyncPauseMaxMs = 50

const isAllZero = (bytes: Uint8Array): boolean => {
  const words = bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : undefined
  if (words) {
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false
    return true
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

/**
 * Throttle of background copies (resync, verify): while foreground IO is active, they take at
 * most `resyncShare` of the time. The pause is capped so a resync under constant foreground
 * load still progresses (at least one chunk per `resyncPauseMaxMs`) instead of leaving the
 * volume degraded.
 */
export const throttle = (state: MasterState) => (startedMs: number) => Effect.suspend(() => {
  const now = state.clock.currentTimeMillisUnsafe()
  if (state.resyncShare >= 1 || now - state.lastForegroundMs >= 1000) return Effect.void
  const spentMs = Math.max(1, now - startedMs)
  return Effect.sleep(Math.min(resyncPauseMaxMs, Math.ceil((spentMs * (1 - state.resyncShare)) / state.resyncShare)))
})

/** What one step of the walk queued: a chunk's ack to wait for (or none), the bytes it copied; or the bitmap changed shape. */
type Step = { readonly done: Deferred.Deferred<void, LinkFailure> | undefined; readonly copied: number } | "reshaped"

/**
 * Queues the run of consecutive dirty regions from `region` (at most `writeChunkBytesMax`) under
 * the order lock, clearing them from the bitmap. Uninterruptible: regions cleared are always queued.
 */
const copyRun = (state: MasterState, link: ReplicaLink, region: DirtyRegion, shape: number, skipZeroChunks: boolean): Effect.Effect<Step> =>
  state.orderLock.withPermits(1)(Effect.uninterruptible(Effect.gen(function* () {
    if (link.dirty.regionBytes !== shape) return "reshaped" as const
    if (!link.dirty.isDirty(region.index)) return { done: undefined, copied: 0 }
    let end = region.index
    let length = region.length
    while (end + 1 < link.dirty.regionCount && link.dirty.isDirty(end + 1)) {
      const next = link.dirty.region(end + 1)
      if (length + next.length > writeChunkBytesMax) break
      end++
      length += next.length
    }
    // A read error is an expected store fault, not a broken invariant: this sync fails (the
    // link fails; its regions stay dirty, a revive retries) and the master serves on — a
    // failed read changed no byte. It used to be a defect, which killed an opening master's
    // catch-up for good (found by the cluster simulator, seed 7); fencing the master instead
    // left a sole copy waiting for good once it recorded itself incomplete (seed 1243).
    const read = yield* Effect.result(state.store.read(region.offset, length))
    if (read._tag === "Failure") {
      link.fail(new LinkFailure("store", `the master could not read its copy to sync replica ${link.target.node}: ${read.failure.message}`))
      return { done: undefined, copied: 0 }
    }
    const bytes = read.success
    for (let index = region.index; index <= end; index++) link.dirty.clear(index)
    if (skipZeroChunks && isAllZero(bytes)) return { done: undefined, copied: length }
    return { done: link.enqueue(MessageType.SyncChunk, region.offset, bytes), copied: length }
  })))

/** A resync's walk: its progress (shown in status), the sync chunks in flight, when progress was last told. */
interface Walk {
  readonly progress: { done: number; total: number }
  readonly window: Array<Deferred.Deferred<void, LinkFailure>>
  lastEventMs: number
}

/**
 * One walk over the bitmap's regions as they were when it began: "reshaped" when a resize
 * coarsened the bitmap (bigger regions, other indexes; dirtyBitmap.ts `grow`) meanwhile — the
 * walk then starts again — "stopped" when the link failed or the master was fenced.
 */
const walkOnce = (state: MasterState, link: ReplicaLink, skipZeroChunks: boolean, walk: Walk) =>
  Effect.gen(function* () {
    const { progress, window } = walk
    const shape = link.dirty.regionBytes
    for (const region of [...link.dirty.regions()]) {
      if (link.state() === "failed" || state.fenced) return "stopped" as const
      if (link.dirty.regionBytes !== shape) return "reshaped" as const
      // By offset: this bitmap and the link's may have regions of different sizes (a link made after a resize).
      if (skipZeroChunks && state.writtenSinceEmpty && !state.writtenSinceEmpty.anyDirtyIn(region.offset, region.length)) {
        // Zeros on both copies; a write from now on reaches the replica through the live stream.
        link.dirty.clear(region.index)
        progress.done += region.length
        continue
      }
      const started = state.clock.currentTimeMillisUnsafe()
      const step = yield* copyRun(state, link, region, shape, skipZeroChunks)
      if (step === "reshaped") return "reshaped" as const
      progress.done += step.copied
      if (step.done) window.push(step.done)
      if (window.length >= syncWindowChunks) yield* link.awaitAck(window.shift()!)
      const now = state.clock.currentTimeMillisUnsafe()
      if (now - walk.lastEventMs >= 500) {
        walk.lastEventMs = now
        emit(state, "sync-progress", `replica ${link.target.node}: ${progress.done} of ${progress.total} bytes`, link.target.node)
      }
      yield* throttle(state)(started)
    }
    return "walked" as const
  })

/** Copies the link's dirty regions through the ordered stream, then marks it in sync. */
export const resync = (state: MasterState, link: ReplicaLink, skipZeroChunks: boolean) =>
  Effect.gen(function* () {
    const total = link.dirty.dirtyBytes
    const progress = { done: 0, total }
    state.syncProgress.set(link, progress)
    emit(state, "sync-started", `replica ${link.target.node}: copying ${total} bytes${skipZeroChunks ? " (fresh copy: zero regions skipped)" : ""}${total === 0 ? " (its recent writes already match)" : ""}`, link.target.node)
    const walk: Walk = { progress, window: [], lastEventMs: 0 }
    for (;;) {
      const walked = yield* walkOnce(state, link, skipZeroChunks, walk)
      if (walked === "stopped") return
      if (walked === "walked") break
    }
    for (const done of walk.window) yield* link.awaitAck(done)
    yield* completeSync(state, link)
  }).pipe(Effect.catch(() => Effect.void))

/**
 * The end of a resync, bounded under any load: at a cut-over under the order lock every later
 * write waits for the replica; the writes queued before it (their callers did not wait) are
 * then awaited once, the replica records itself complete for this session (after an
 * fdatasync), and only then is it recorded in sync — so a promotion never picks a copy that
 * misses an acknowledged write (docs/design.md, invariant 3).
 */
const completeSync = (state: MasterState, link: ReplicaLink) =>
  Effect.gen(function* () {
    const earlier = yield* state.orderLock.withPermits(1)(Effect.sync(() => {
      if (link.state() === "failed" || link.dirty.dirtyRegionCount > 0) return undefined
      link.markInSync()
      return link.pendingAcks()
    }))
    if (!earlier) return
    for (const done of earlier) yield* link.awaitAck(done)
    const complete = link.enqueue(MessageType.Complete, 0, encodeJsonBody(state.lineage))
    if (!complete) return
    yield* link.awaitAck(complete)
    if (!link.inSync()) return
    link.markCompleted()
    state.syncProgress.delete(link)
    emit(state, "sync-done", `replica ${link.target.node} is in sync`, link.target.node)
    const { onReplicaInSync } = state.options
    if (onReplicaInSync) yield* Effect.ignore(onReplicaInSync(link.target.node, () => link.inSync(), link.incarnation()))
  })

/** Full sync or delta for `link`, from its own answer to Open (copyIdentity.ts). */
export const decideFor = (state: MasterState, link: ReplicaLink, expected: Lineage | undefined): SyncDecision => {
  const answer = link.lastOpen()
  return answer === undefined ? { kind: "full", skipZeros: false, why: "the copy did not answer" } : decideSync(answer.identity, answer.activity, expected, expected === state.lineage)
}

/** Starts (or restarts) the link's resync in the background, in the session's scope. */
export const startResync = (state: MasterState, link: ReplicaLink, skipZeroChunks: boolean) =>
  Effect.gen(function* () {
    const running = state.syncFibers.get(link)
    if (running) yield* Fiber.interrupt(running)
    const fiber = yield* Effect.forkIn(resync(state, link, skipZeroChunks), state.scope)
    state.syncFibers.set(link, fiber)
  })

/** Opens a copy, decides from its answer, and starts its resync in the background. */
export const openAndSync = (state: MasterState, link: ReplicaLink, expected: Lineage | undefined) =>
  Effect.gen(function* () {
    yield* link.start(false)
    if (link.state() === "failed") return
    const decision = decideFor(state, link, expected)
    if (decision.kind === "full") link.dirty.markAll()
    yield* startResync(state, link, decision.kind === "full" && decision.skipZeros)
  })

/** Records a replica as syncing before IO is served without it; a master that cannot record this does not serve. */
export const recordSyncing = (state: MasterState, link: ReplicaLink) =>
  state.options.onReplicaSyncing!(link.target.node).pipe(
    Effect.retry({ times: 5 }),
    Effect.catch(() => Effect.sync(() => fence(state, "not-master", `volume ${state.volume}: could not record that replica ${link.target.node} is syncing; refusing IO rather than risk a promotion of an incomplete copy`))),
  )
