/**
 * What a replica link is made with and what it says of itself: its options, states and failures,
 * and the limit on its unacknowledged frames. Shared by replicaLink.ts and the parts under link/.
 */
import type { Effect } from "effect"
import { inflightWritesPerReplicaMax } from "../../core/limits.ts"
import type { Metrics } from "../../core/metrics.ts"
import type { Connection } from "../../net/connection.ts"
import type { Address } from "../../net/Transport.ts"

/** Frames one replica may have unacknowledged; in-sync replicas stay far below (the volume bounds writes in flight). */
export const pendingFramesPerReplicaMax = inflightWritesPerReplicaMax * 4

/**
 * `connecting`: dialling / opening; `syncing`: receiving live writes while its copy catches up;
 * `in-sync`: a full copy, waited for by every write; `reconnecting`: an in-sync replica whose
 * connection dropped, still waited for until the ack timeout; `failed`: not waited for, dirty
 * regions tracked.
 */
export type ReplicaState = "connecting" | "syncing" | "in-sync" | "reconnecting" | "failed"

export interface ReplicaTarget {
  readonly node: string
  readonly address: Address
}

export class LinkFailure {
  readonly _tag = "LinkFailure"
  constructor(
    readonly reason: "ack-timeout" | "unreachable" | "refused-connection" | "stale-epoch" | "refused" | "store" | "closed" | "overloaded" | "lost-copy" | "overruled",
    readonly message: string,
  ) {}
}

export interface ReplicaLinkOptions {
  readonly target: ReplicaTarget
  readonly volume: string
  readonly volumeId: bigint
  readonly sizeBytes: number
  readonly epoch: number
  /** The volume's unique id and this master session: sent in Open, checked on every reconnect. */
  readonly uid: string
  readonly generation: string
  readonly masterName: string
  readonly compress: boolean
  readonly ackTimeoutMs: number
  readonly reconnectBaseMs: number
  readonly reconnectCeilingMs: number
  readonly dirtyRegionBytes: number
  readonly connect: Effect.Effect<Connection, unknown>
  readonly metrics?: Metrics
  /** Called once when the link fails (state already `failed`). */
  readonly onFailed: (failure: LinkFailure) => void
}
