/**
 * Whether a master session may serve: fenced or not, its lease, the failure mode over its links'
 * states; and what a failed local disk operation does to it (the copy no longer proves what it
 * holds: recorded incomplete, fenced).
 */
import { Clock, Effect, Fiber } from "effect"
import { StoreError, type BlockStore } from "../../store/BlockStore.ts"
import { assessVolume, usableVolume, type Assessment, type ReplicaCounts } from "../../volume/health.ts"
import type { VolumeSpec } from "../../volume/labels.ts"
import type { Lineage } from "../copyIdentity.ts"
import { VolumeUnavailable } from "../errors.ts"
import { fence, storeFailure, type MasterState } from "./state.ts"

/**
 * The spec the failure mode counts and the replica counts from the links: the counted slots take
 * in-sync links first, then failures (a missing link is one), then syncing ones.
 */
const countLinks = (state: MasterState): { readonly counted: VolumeSpec; readonly counts: ReplicaCounts } => {
  const { spec, links } = state
  let inSync = 0
  let failed = 0
  for (const link of links) {
    if (link.inSync()) inSync++
    else if (link.state() === "failed") failed++
  }
  // A count raised at run time is counted once the added replicas are in sync: IO goes on while they sync.
  if (state.countedReplicas < spec.replicas && inSync >= spec.replicas) state.countedReplicas = spec.replicas
  const counted = state.countedReplicas === spec.replicas ? spec : { ...spec, replicas: state.countedReplicas, failureTolerance: Math.min(spec.failureTolerance, state.countedReplicas) }
  const missing = Math.max(0, spec.replicas - links.length)
  const inSyncCounted = Math.min(inSync, counted.replicas)
  const failedCounted = Math.min(failed + missing, counted.replicas - inSyncCounted)
  return { counted, counts: { inSync: inSyncCounted, syncing: counted.replicas - inSyncCounted - failedCounted, failed: failedCounted } }
}

/** The volume's health from its links (health.ts `assessVolume`). */
export const assess = (state: MasterState): Assessment => {
  const { counted, counts } = countLinks(state)
  return assessVolume(counted, counts)
}

const unavailable = (state: MasterState, assessment: Assessment) =>
  new VolumeUnavailable({
    volume: state.volume, health: assessment.health,
    reason: state.spec.failureMode === "hard" ? "replicas-below-requested" : "tolerance-exceeded",
    message: `volume ${state.volume} is unavailable: ${assessment.reason}`,
  })

/** This master may act for the volume: not fenced, its lease confirmed (the failure mode aside). */
export const checkServing = (state: MasterState): Effect.Effect<void, VolumeUnavailable> => Effect.suspend(() => {
  if (state.fenced) return Effect.fail(state.fenced)
  const { leaseValid, nodeName } = state.options
  if (leaseValid && !leaseValid()) {
    return Effect.fail(new VolumeUnavailable({ volume: state.volume, reason: "not-master", health: "unavailable", message: `volume ${state.volume}: the master ${nodeName} cannot confirm its lease; IO waits for the lease or a new master` }))
  }
  return Effect.void
})

/** Serving, and the failure mode allows IO with the links as they are. */
export const checkUsable = (state: MasterState): Effect.Effect<void, VolumeUnavailable> => Effect.suspend(() => {
  if (state.fenced) return Effect.fail(state.fenced)
  if (state.options.leaseValid && !state.options.leaseValid()) return checkServing(state)
  // Usable is asked on every IO: the sentence of the assessment is built only for a refusal.
  const { counted, counts } = countLinks(state)
  return usableVolume(counted, counts) ? Effect.void : Effect.fail(unavailable(state, assessVolume(counted, counts)))
})

/** Writes the master's own identity record (durable, atomic). */
export const writeOwnRecord = (store: BlockStore, volume: string, record: Lineage & { readonly state: "complete" | "incomplete" }) =>
  Effect.flatMap(Clock.currentTimeMillis, (updatedAtMs) =>
    store.writeMeta({ volume, sizeBytes: store.sizeBytes, epoch: record.epoch, role: "master", state: record.state, updatedAtMs, uid: record.uid, generation: record.generation }))

/**
 * Bounds a local disk operation by the disk timeout. A hung disk must not hang the master for
 * good: past the timeout the operation counts as failed (the fiber running it is left to
 * finish or hang on its own — an fdatasync in the kernel cannot be called back).
 */
export const withinDiskTimeout = <A>(state: MasterState, what: string, operation: Effect.Effect<A, StoreError>) =>
  Effect.flatMap(Effect.forkDetach(operation), (fiber) =>
    Fiber.join(fiber).pipe(Effect.timeoutOrElse({
      duration: state.diskTimeoutMs,
      orElse: () => Effect.fail(new StoreError({ reason: "io", path: undefined, message: `${what} did not finish within ${state.diskTimeoutMs} ms (a hung disk?)` })),
    })))

/**
 * A failed local write may have changed part of its range, a failed fdatasync may have lost
 * what the page cache held: this copy no longer matches its replicas. The master records its
 * copy incomplete (best effort) and fences itself; the node steps down or reopens it, syncing
 * the replicas from a copy that can prove what it holds.
 */
export const storeFailed = (state: MasterState, what: string) => (error: StoreError) =>
  Effect.gen(function* () {
    state.damaged = true
    fence(state, "store-failed", `volume ${state.volume}: the master's ${what} failed (${error.message}); this master stops serving IO`)
    yield* Effect.ignore(withinDiskTimeout(state, "recording the copy incomplete", writeOwnRecord(state.store, state.volume, { ...state.lineage, state: "incomplete" })))
    return yield* Effect.fail(storeFailure(state.volume)(error))
  })
