/**
 * What `makeReplicaHost` is given: types only, shared by replicaHost.ts and the parts under replica/.
 */
import type { Effect } from "effect"
import type { Metrics } from "../../core/metrics.ts"
import type { MasterVolume } from "../masterVolume.ts"

export interface ReplicaHostOptions {
  readonly nodeName: string
  readonly metrics?: Metrics
  /** The master volumes this node serves to remote clients (the cluster's agent keeps them). */
  readonly lookupMaster?: (volume: string) => MasterVolume | undefined
  /**
   * The master of `volume` at `epoch` once it serves, waiting a bounded time while it may still
   * open here (node.ts); undefined at once when this node cannot be it (a newer or closed epoch).
   */
  readonly awaitMaster?: (volume: string, epoch: number) => Effect.Effect<MasterVolume | undefined>
  /** The process incarnation told in every OpenAck (the master records a copy in sync with the process that holds it). */
  readonly incarnation?: number
}
