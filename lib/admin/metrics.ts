/**
 * The metrics this layer owns, on the shared registry (lib/core/metrics.ts; every family's
 * HELP, type and labels are in lib/core/metricFamilies.ts):
 *
 *   replivol_frontend_ops_total{volume,op,result}   reads/writes/flushes of handles and the FUSE mount
 *   replivol_frontend_bytes_total{volume,op}        bytes read/written there
 *   replivol_volume_health{volume}                  0 healthy, 1 degraded, 2 unavailable
 *   replivol_volume_sync_done_bytes{volume,replica} bytes a syncing replica has received
 *   replivol_volume_sync_total_bytes{volume,replica} bytes its sync sends in all
 *
 * The verify gauges (`replivol_volume_verify_*`) are set by the master when a verify ends
 * (lib/replication/masterVolume.ts); this layer removes them with the volume.
 *
 * The latency histograms, network, backend and replication-retry series are recorded by the
 * nodes themselves (the `metrics` node option; lib/node/instrumented.ts, lib/store/instrumented.ts).
 * Pure: no clock, no IO.
 */
import { Effect } from "effect"
import type { VolumeInfo } from "../cluster/clusterNode.ts"
import type { VolumeClient } from "../cluster/volumeClient.ts"
import type { Metrics } from "../core/metrics.ts"
import { metricFamilies, metricNames } from "../core/metricFamilies.ts"

export { metricNames }

export type FrontendOp = "read" | "write" | "flush"

/** One front-end operation: counted by result ("ok" or the error's tag/reason), bytes when it succeeded. */
export const recordFrontend = (metrics: Metrics, volume: string, op: FrontendOp, result: string, bytes: number): void => {
  metrics.add(metricNames.frontendOps, { volume, op, result })
  if (result === "ok" && bytes > 0) metrics.add(metricNames.frontendBytes, { volume, op }, bytes)
}

const resultOf = (error: { readonly _tag: string; readonly reason?: string }): string => (error.reason ? `${error._tag}:${error.reason}` : error._tag)

/** Counts an Effect's outcome as one front-end op. */
export const countOp = <A, E extends { readonly _tag: string; readonly reason?: string }>(
  metrics: Metrics, volume: string, op: FrontendOp, bytes: number, effect: Effect.Effect<A, E>,
): Effect.Effect<A, E> =>
  effect.pipe(
    Effect.tap(() => Effect.sync(() => recordFrontend(metrics, volume, op, "ok", bytes))),
    Effect.tapError((error) => Effect.sync(() => recordFrontend(metrics, volume, op, resultOf(error), 0))),
  )

/** The same handle, with every read/write/flush counted as a front-end op. */
export const instrumentClient = (client: VolumeClient, metrics: Metrics): VolumeClient => {
  const instrumented: Omit<VolumeClient, "sizeBytes"> = {
    ...client,
    write: (offset, data) => countOp(metrics, client.name, "write", data.length, client.write(offset, data)),
    read: (offset, length) => countOp(metrics, client.name, "read", length, client.read(offset, length)),
    flush: countOp(metrics, client.name, "flush", 0, client.flush),
  }
  // Read through: the handle's size grows after a resize.
  return Object.defineProperty(instrumented, "sizeBytes", { get: () => client.sizeBytes, enumerable: true }) as VolumeClient
}

export const healthValue = (health: string): number => (health === "healthy" ? 0 : health === "degraded" ? 1 : 2)

/** Every family with a `volume` label: a deleted volume's series go (the registry's series are bounded). */
const perVolumeFamilies = Object.entries(metricFamilies).filter(([, f]) => f.labels.includes("volume")).map(([name]) => name)

/**
 * Sets the health and sync gauges from a volume listing, and removes the gauges of replicas no
 * longer syncing and every series (counters and histograms too) of volumes no longer listed.
 * Returns the volume names seen, to pass as `previous` next time.
 */
export const refreshVolumeGauges = (metrics: Metrics, volumes: ReadonlyArray<VolumeInfo>, previous: ReadonlySet<string>): Set<string> => {
  const seen = new Set<string>()
  for (const v of volumes) {
    seen.add(v.volume)
    metrics.set(metricNames.volumeHealth, { volume: v.volume }, healthValue(v.health))
    metrics.remove(metricNames.volumeSyncDone, { volume: v.volume })
    metrics.remove(metricNames.volumeSyncTotal, { volume: v.volume })
    for (const r of v.replicas) {
      if (r.state !== "syncing" || r.bytesTotal === undefined) continue
      metrics.set(metricNames.volumeSyncDone, { volume: v.volume, replica: r.node }, r.bytesDone ?? 0)
      metrics.set(metricNames.volumeSyncTotal, { volume: v.volume, replica: r.node }, r.bytesTotal)
    }
  }
  for (const name of previous) {
    if (seen.has(name)) continue
    for (const family of perVolumeFamilies) metrics.remove(family, { volume: name })
  }
  return seen
}
