/**
 * A cluster client that is not a node: it reads the control store and does IO on volumes through
 * their masters (the client side of the port-5703 protocol), without hosting anything.
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
import { ClusterError, type VolumeRecord } from "./records.ts"
import { getVolume, listNodes, listVolumes, locateMaster } from "./store.ts"
import { makeVolumeClient, type VolumeClient } from "./volumeClient.ts"
import { inProcessMaster, volumeInfo, type VolumeInfo } from "./clusterNode.ts"

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
    const ackTimeoutMs = options.ackTimeoutMs ?? defaults.ackTimeoutMs
    const alive = Effect.map(listNodes, (rows) => new Set(rows.map((r) => r.value.name)))

    const inspectVolume = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        return volumeInfo(found.value, yield* alive)
      }).pipe(Effect.provide(context))

    const openVolume = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume).pipe(Effect.provide(context))
        if (!found) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
        const client = makeVolumeClient({
          volume, sizeBytes: found.value.sizeBytes, clientName: options.name,
          pauseMaxMs: options.pauseMaxMs ?? 60_000, requestTimeoutMs: ackTimeoutMs * 2 + 1000,
          locate: locateMaster(volume).pipe(Effect.provide(context)),
          local: (location) => inProcessMaster(location, volume),
          connect: (address) =>
            Effect.flatMap(transport.dial(address, { timeoutMs: defaults.handshakeTimeoutMs }), (link) =>
              clientHandshake(link, { secret, nodeName: options.name, timeoutMs: defaults.handshakeTimeoutMs })),
          ...(options.onRetry ? { onRetry: (why: string) => options.onRetry!(volume, why) } : {}),
        })
        yield* Effect.addFinalizer(() => client.close)
        return client
      })

    return {
      openVolume,
      inspectVolume,
      listVolumes: Effect.gen(function* () {
        const [volumes, nodes] = yield* Effect.all([listVolumes, alive])
        return volumes.map((v) => volumeInfo(v.value, nodes))
      }).pipe(Effect.provide(context)),
      record: (volume) => Effect.map(getVolume(volume), (v) => v?.value).pipe(Effect.provide(context)),
    } satisfies ClusterClient
  })
