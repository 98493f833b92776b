/**
 * A master session's replica links: made with the session's identity, and a failed link's
 * failure recorded durably before any write is acknowledged without that replica.
 */
import { Deferred, Effect, Scope } from "effect"
import { defaults } from "../../core/limits.ts"
import type { VolumeSpec } from "../../volume/labels.ts"
import { makeReplicaLink, type LinkFailure, type ReplicaLink, type ReplicaTarget } from "../replicaLink.ts"
import { emit, fence, type MasterState } from "./state.ts"

/** Whether the links compress frames: not when asked not to, and never ciphertext (it does not compress; lz4 would only cost CPU). */
export const compresses = (spec: VolumeSpec): boolean => !spec.nocompress && spec.encryption !== true

/**
 * Records a replica's failure before any write is acknowledged without it. Not once the
 * master's own write or fdatasync failed (`damaged`): it is fenced and acknowledges nothing more
 * (`checkUsable` after every wait), and its copy, not the replica's, is the one that may lack
 * acknowledged writes; a replica it called failed was then neither promoted nor stepped down
 * for. The cluster simulator found it (sweep seed 7309: the master's fdatasync failed and
 * dropped its page cache, its replica crashed a moment later and was recorded failed, and the
 * master served after the grace period, syncing its copy over the one holding every write).
 * A master fenced for a hand-over still records (handover.ts trusts its record of the drain).
 */
const persistFailure = (state: MasterState, link: ReplicaLink, failure: LinkFailure) => {
  const persisted = Deferred.makeUnsafe<void>()
  state.failurePersisted.set(link, persisted)
  const { onReplicaFailed } = state.options
  const record = state.damaged ? Effect.void : onReplicaFailed
    ? onReplicaFailed(link.target.node, failure).pipe(
        Effect.retry({ times: 5 }),
        Effect.catch(() => Effect.sync(() => fence(state, "not-master", `volume ${state.volume}: could not record that replica ${link.target.node} failed; refusing IO rather than risk losing a write`))),
      )
    : Effect.void
  Effect.runForkWith(state.fiberContext)(Effect.ensuring(record, Deferred.succeed(persisted, undefined)))
}

/** A link to `target` in the session's scope; its failures fence (a newer epoch) or are recorded. */
export const makeLink = (state: MasterState, target: ReplicaTarget) => {
  const { options, store, lineage } = state
  return makeReplicaLink({
    target, volume: state.volume, volumeId: state.volumeId, sizeBytes: store.sizeBytes, epoch: state.epoch, uid: state.uid, generation: lineage.generation,
    masterName: options.nodeName, compress: compresses(state.spec), ackTimeoutMs: state.ackTimeoutMs,
    reconnectBaseMs: options.reconnectBaseMs ?? defaults.reconnectBaseMs,
    reconnectCeilingMs: options.reconnectCeilingMs ?? defaults.reconnectCeilingMs,
    dirtyRegionBytes: options.dirtyRegionBytes ?? defaults.dirtyRegionBytes,
    connect: options.connect(target),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    onFailed: (failure: LinkFailure) => {
      const link = state.links.find((l) => l.target.node === target.node)
      if (failure.reason === "stale-epoch") fence(state, "superseded", `volume ${state.volume}: a newer master exists (${failure.message}); this master stops serving IO`)
      if (link && failure.reason !== "closed") persistFailure(state, link, failure)
      emit(state, "replica-failed", failure.message, target.node)
    },
  }).pipe(Scope.provide(state.scope))
}
