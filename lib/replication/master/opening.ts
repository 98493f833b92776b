/**
 * A master session's opening, before it serves: every replica connected; the copies that were in
 * sync with the previous master answer first, and their activity logs (the regions of the most
 * recent writes of every copy, DRBD style) are reconciled, so copies that received different
 * in-flight writes of a dead master converge; a copy that cannot prove its lineage owes a full
 * sync and is recorded syncing before any write is served without it. Then the master's own
 * identity record names this session.
 */
import { Deferred, Effect, type Fiber } from "effect"
import type { Lineage, SyncDecision } from "../copyIdentity.ts"
import type { ReplicaLink } from "../replicaLink.ts"
import { makeLink } from "./links.ts"
import { decideFor, openAndSync, recordSyncing, resync, startResync } from "./resync.ts"
import { writeOwnRecord } from "./serving.ts"
import { emit, fence, type MasterState } from "./state.ts"

type Activity = ReadonlyArray<readonly [number, number]> | "all"

/**
 * Every previously in-sync copy owes the union of the activity logs — also one unreachable now:
 * its dirty bitmap keeps the regions for its catch-up when it returns. A copy that cannot prove
 * its lineage owes everything.
 */
const markOwed = (previouslyInSync: ReadonlyArray<ReplicaLink>, decisions: ReadonlyMap<ReplicaLink, SyncDecision>, activity: ReadonlyArray<Activity>) => {
  for (const link of previouslyInSync) {
    if (link.state() === "failed" || decisions.get(link)!.kind === "full") link.dirty.markAll()
    for (const ranges of activity) {
      if (ranges === "all") link.dirty.markAll()
      else for (const [offset, length] of ranges) if (offset < link.dirty.sizeBytes) link.dirty.mark(offset, Math.min(length, link.dirty.sizeBytes - offset))
    }
  }
}

/** The copies that were in sync: answered, reconciled by delta, or recorded syncing and synced in full. */
const reconcilePreviouslyInSync = (state: MasterState, previouslyInSync: ReadonlyArray<ReplicaLink>, previousLineage: Lineage | undefined) =>
  Effect.gen(function* () {
    const { options } = state
    yield* Effect.forEach(previouslyInSync, (link) => link.start(false), { concurrency: "unbounded", discard: true })
    const decisions = new Map(previouslyInSync.map((link) => [link, decideFor(state, link, previousLineage)] as const))
    const deltas = previouslyInSync.filter((link) => link.state() !== "failed" && decisions.get(link)!.kind === "delta")
    const activity: Activity[] = options.previousSessionDrained === true ? [] : [options.ownActivity ?? []]
    if (options.previousSessionDrained !== true) for (const link of deltas) activity.push(link.lastOpen()?.activity ?? "all")
    markOwed(previouslyInSync, decisions, activity)
    yield* Effect.forEach(deltas, (link) => resync(state, link, false), { concurrency: "unbounded", discard: true })
    for (const link of previouslyInSync) {
      const persisted = state.failurePersisted.get(link)
      if (persisted) yield* Deferred.await(persisted)
    }
    // Copies recorded in sync that owe a full sync are recorded syncing before any write is served without them.
    for (const link of previouslyInSync) {
      const decision = decisions.get(link)!
      if (link.state() === "failed" || decision.kind !== "full") continue
      emit(state, "sync-started", `replica ${link.target.node}: full sync: ${decision.why}`, link.target.node)
      if (options.onReplicaSyncing) yield* recordSyncing(state, link)
      yield* startResync(state, link, decision.skipZeros)
    }
  })

/**
 * Opens the session: links made, the previously in-sync copies reconciled, the own record
 * written; the other copies open and sync in the background (their fibers are returned).
 */
export const openSession = (state: MasterState, previousLineage: Lineage | undefined) =>
  Effect.gen(function* () {
    const { options, store, volume } = state
    for (const plan of options.replicas) {
      const link = yield* makeLink(state, plan.target)
      // A copy that needs a sync owes every region, whether or not it can be reached right now.
      if (plan.recorded === "needs-sync") link.dirty.markAll()
      state.links.push(link)
    }
    const previouslyInSync = state.links.filter((_, index) => options.replicas[index]!.recorded === "in-sync")
    yield* reconcilePreviouslyInSync(state, previouslyInSync, previousLineage)
    // A master fenced while opening keeps its record as it was. One that cannot write its record
    // does not serve (nothing would prove this session), but its data is untouched: `not-master`,
    // not `store-failed`, so its node reopens it rather than holding the copy suspect — a sole
    // copy otherwise waited for good after one failed meta write (found by the cluster simulator).
    if (!state.fenced) yield* writeOwnRecord(store, volume, { ...state.lineage, state: "complete" }).pipe(
      Effect.catch((error) => Effect.sync(() => fence(state, "not-master", `volume ${volume}: cannot record the master's copy identity: ${error.message}; it does not serve until it can`))),
    )
    const startups: Array<Fiber.Fiber<void>> = []
    for (const [index, link] of state.links.entries()) {
      if (options.replicas[index]!.recorded === "in-sync") continue
      startups.push(yield* Effect.forkIn(openAndSync(state, link, undefined), state.scope))
    }
    return startups
  })
