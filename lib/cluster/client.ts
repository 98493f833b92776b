/**
 * A cluster client that is not a node: it reads the control store and does IO on volumes through
 * their masters (the client side of the port-5703 protocol), without hosting anything. It uses the
 * cluster API's reads (clusterApi.ts) as a node does.
 *
 * For applications and tools on machines that run no replivol node (a workload process, the
 * CLI talking straight to etcd). It authenticates with the cluster secret like a node does.
 */
import { Effect, Scope } from "effect"
import type { ControlError } from "../control/ControlStore.ts"
import { ControlStore } from "../control/ControlStore.ts"
import { defaults } from "../core/limits.ts"
import { clientHandshake } from "../net/connection.ts"
import { Transport } from "../net/Transport.ts"
import { inspectVolume, listVolumeInfos, openVolumeClient } from "./clusterApi.ts"
import { inProcessMaster } from "./processMasters.ts"
import type { ClusterError, VolumeRecord } from "./records.ts"
import { getVolume } from "./store.ts"
import type { VolumeInfo } from "./types.ts"
import type { VolumeClient } from "./volumeClient.ts"

export interface ClusterClientOptions {
  /** How this client introduces itself in handshakes (a DNS label). */
  readonly name: string
  readonly secret: Uint8Array | string
  readonly ackTimeoutMs?: number
  readonly pauseMaxMs?: number
  readonly onRetry?: (volume: string, why: string) => void
}

export interface ClusterClient {
  readonly openVolume: (volume: string) => Effect.Effect<VolumeClient, ClusterError | ControlError, Scope.Scope>
  readonly inspectVolume: (volume: string) => Effect.Effect<VolumeInfo, ClusterError | ControlError>
  readonly listVolumes: Effect.Effect<ReadonlyArray<VolumeInfo>, ControlError>
  readonly record: (volume: string) => Effect.Effect<VolumeRecord | undefined, ClusterError | ControlError>
}

const encoder = new TextEncoder()

export const makeClusterClient = (options: ClusterClientOptions): Effect.Effect<ClusterClient, never, ControlStore | Transport> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<ControlStore | Transport>()
    const transport = yield* Transport
    const secret = typeof options.secret === "string" ? encoder.encode(options.secret) : options.secret
    const onRetry = options.onRetry
    const openVolume = (volume: string) =>
      openVolumeClient(volume, {
        clientName: options.name, pauseMaxMs: options.pauseMaxMs ?? 60_000, ackTimeoutMs: options.ackTimeoutMs ?? defaults.ackTimeoutMs,
        local: (location) => inProcessMaster(location, volume),
        connect: (address) =>
          Effect.flatMap(transport.dial(address, { timeoutMs: defaults.handshakeTimeoutMs }), (link) =>
            clientHandshake(link, { secret, nodeName: options.name, timeoutMs: defaults.handshakeTimeoutMs })),
        ...(onRetry ? { onRetry: (why: string) => onRetry(volume, why) } : {}),
      }).pipe(Effect.provide(context))
    return {
      openVolume,
      inspectVolume: (volume) => inspectVolume(volume).pipe(Effect.provide(context)),
      listVolumes: listVolumeInfos.pipe(Effect.provide(context)),
      record: (volume) => Effect.map(getVolume(volume), (v) => v?.value).pipe(Effect.provide(context)),
    } satisfies ClusterClient
  })
