/**
 * The replica side: a node's hosted replica copies, and the connections that apply a master's
 * frames to them. This module is the host's public face; its parts are under replica/:
 * - replica/hosted.ts — a hosted copy: its identity record, its activity log, damage.
 * - replica/serve.ts — one connection, its frames taken in arrival order by one fiber.
 * - replica/open.ts — a master's Open (epoch adopted durably, the previous owner closed) or a client's.
 * - replica/apply.ts — the data frames: writes started in order, the rest after them.
 * - replica/clientFrames.ts — client requests to a volume this node masters.
 *
 * Overlapping writes land in the master's order; a frame whose epoch is lower than the one the
 * copy holds is refused (StaleEpoch) and not applied: a deposed master cannot write.
 */
import { Effect } from "effect"
import type { BlockStore } from "../store/BlockStore.ts"
import type { Connection } from "../net/connection.ts"
import { volumeIdOf } from "./protocol.ts"
import { identityOf } from "./copyIdentity.ts"
import { ReplicationError } from "./errors.ts"
import { activityRanges, persistIdentity, type Hosted } from "./replica/hosted.ts"
import { serveConnection } from "./replica/serve.ts"
import type { ReplicaHostOptions } from "./replica/options.ts"

export type { ReplicaHostOptions } from "./replica/options.ts"

export { activityRangesMax, activityWritesMax } from "./replica/hosted.ts"
export { clientRequestsInflightMax, replicaApplyWritesMax, replicaQueueFramesMax } from "./replica/serve.ts"

export interface HostedReplicaStatus {
  readonly volume: string
  readonly sizeBytes: number
  readonly epoch: number
  readonly master: string | undefined
  readonly connected: boolean
  readonly writesApplied: number
  readonly bytesApplied: number
}

export interface ReplicaHost {
  /**
   * Hosts a copy; with `uid`, a copy recorded for another volume id is refused (`foreign-copy`).
   * `handedOver`: the copy was this process's master until a planned hand-over that drained every
   * write onto the in-sync replica now taking over, so it holds nothing that replica lacks and lost
   * nothing (same process, same page cache): its activity log starts known and empty, and the new
   * master catches it up by delta instead of copying it in full.
   */
  readonly host: (volume: string, store: BlockStore, uid?: string, handedOver?: boolean) => Effect.Effect<void, ReplicationError>
  readonly unhost: (volume: string) => Effect.Effect<void>
  readonly isHosted: (volume: string) => boolean
  /** Serves one authenticated connection until it closes. */
  readonly serve: (connection: Connection) => Effect.Effect<void>
  readonly status: () => ReadonlyArray<HostedReplicaStatus>
  /** The activity log of a hosted copy ("all" when not hosted here: nothing is known). */
  readonly activity: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
  readonly detach: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
  /** A write or fdatasync of this hosted copy failed since a master's sync last recorded it complete. */
  readonly damaged: (volume: string) => boolean
  /** Rejections seen (typed reasons), for tests and metrics. */
  readonly rejections: () => Readonly<Record<string, number>>
}

export const makeReplicaHost = (options: ReplicaHostOptions): ReplicaHost => {
  const hosted = new Map<bigint, Hosted>()
  const rejected: Record<string, number> = {}
  const count = (reason: string) => void (rejected[reason] = (rejected[reason] ?? 0) + 1)

  const host = (volume: string, store: BlockStore, uid?: string, handedOver = false) =>
    Effect.gen(function* () {
      const id = volumeIdOf(volume)
      const existing = hosted.get(id)
      if (existing) {
        return yield* new ReplicationError({ reason: "already-hosted", volume, message: existing.volume === volume ? `volume ${volume} is already hosted on ${options.nodeName}` : `volume ${volume} has the same id as hosted volume ${existing.volume}; rename one` })
      }
      const meta = yield* store.readMeta.pipe(Effect.mapError((cause) => new ReplicationError({ reason: "store", volume, message: `cannot read the replica's meta record: ${cause.message}`, cause })))
      // A record of a smaller size is a copy that grew and crashed before its record was rewritten.
      if (meta && (meta.volume !== volume || meta.sizeBytes > store.sizeBytes)) {
        return yield* new ReplicationError({ reason: "bad-request", volume, message: `the store holds ${meta.volume} (${meta.sizeBytes} bytes), not ${volume} (${store.sizeBytes} bytes)` })
      }
      if (uid !== undefined && meta?.uid !== undefined && meta.uid !== uid) {
        return yield* new ReplicationError({ reason: "foreign-copy", volume, message: `the copy of ${volume} on ${options.nodeName} belongs to volume id ${meta.uid}, not ${uid} (the volume was deleted and created again); remove the copy first` })
      }
      const entry: Hosted = {
        identity: identityOf(meta, store.createdEmpty === true), activityUnknown: store.createdEmpty !== true && !handedOver, damagedSinceOpen: false, damagedSinceComplete: false,
        activity: [], activityNext: 0, volume, id, store, epoch: meta?.epoch ?? 0, owner: undefined, master: undefined, writesApplied: 0, bytesApplied: 0,
      }
      // A copy created here is provably all zeros: say so durably, so a restart still knows it.
      if (meta === undefined && entry.identity.state === "empty") yield* persistIdentity(entry, { ...entry.identity, uid })
      hosted.set(id, entry)
    })

  const unhost = (volume: string) =>
    Effect.sync(() => {
      const entry = hosted.get(volumeIdOf(volume))
      if (!entry || entry.volume !== volume) return
      hosted.delete(entry.id)
      entry.owner?.close(`volume ${volume} is no longer hosted on ${options.nodeName}`)
    })

  const serve = (connection: Connection) => serveConnection(connection, hosted, options, count)

  const status = () =>
    [...hosted.values()].map((h) => ({
      volume: h.volume, sizeBytes: h.store.sizeBytes, epoch: h.epoch, master: h.master,
      connected: h.owner !== undefined && h.owner.link.isOpen(), writesApplied: h.writesApplied, bytesApplied: h.bytesApplied,
    }))

  const activity = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    return entry && entry.volume === volume ? activityRanges(entry) : "all"
  }

  /** Stops hosting at once (no frame is applied after this) and returns the copy's activity log. */
  const detach = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    if (!entry || entry.volume !== volume) return "all" as const
    hosted.delete(entry.id)
    entry.owner?.close(`volume ${volume} is no longer hosted as a replica on ${options.nodeName}`)
    return activityRanges(entry)
  }

  const damaged = (volume: string) => {
    const entry = hosted.get(volumeIdOf(volume))
    return entry?.volume === volume && entry.damagedSinceComplete
  }
  return { activity, detach, damaged, host, unhost, isHosted: (volume) => hosted.get(volumeIdOf(volume))?.volume === volume, serve, status, rejections: () => ({ ...rejected }) }
}
