/**
 * A running master session's replica set: a replica placed (synced in full in the background),
 * one dropped, one revived after its node came back (caught up by delta when it proves it
 * followed this session, else in full).
 */
import { Deferred, Effect, Fiber } from "effect"
import type { ReplicaTarget } from "../replicaLink.ts"
import { makeLink } from "./links.ts"
import { openAndSync } from "./resync.ts"
import { emit, type MasterState } from "./state.ts"

export const addReplica = (state: MasterState, target: ReplicaTarget) =>
  Effect.gen(function* () {
    if (state.links.some((l) => l.target.node === target.node)) return
    const link = yield* makeLink(state, target)
    link.dirty.markAll()
    state.links.push(link)
    emit(state, "replica-added", `replica placed on ${target.node}`, target.node)
    yield* openAndSync(state, link, undefined)
  })

export const removeReplica = (state: MasterState, node: string) =>
  Effect.gen(function* () {
    const index = state.links.findIndex((l) => l.target.node === node)
    if (index < 0) return
    const [link] = state.links.splice(index, 1)
    const fiber = state.syncFibers.get(link!)
    if (fiber) yield* Fiber.interrupt(fiber)
    yield* link!.close
    emit(state, "replica-removed", `replica on ${node} removed`, node)
  })

export const reviveReplica = (state: MasterState, node: string) =>
  Effect.gen(function* () {
    const link = state.links.find((l) => l.target.node === node)
    if (!link || link.state() !== "failed" || state.fenced) return
    // Writes done without it wait for its failure's record; a revive does not end that wait.
    const persisted = state.failurePersisted.get(link)
    if (persisted) yield* Deferred.await(persisted)
    state.failurePersisted.delete(link)
    // Same session: the dirty bitmap is enough if the copy proves it followed it; else a full sync.
    yield* openAndSync(state, link, state.lineage)
  })
