/**
 * Every metric family replivol exports on `/metrics`: its name, type, `# HELP` text and the exact
 * label names its samples carry. The registry (metrics.ts) takes HELP and TYPE from here, and a
 * test checks that every family rendered is listed with both and that its samples carry exactly
 * these labels.
 *
 * The rule for labels (Prometheus's own): summing a family over any label must give a meaningful
 * total. So one quantity is never split across label values that must not be added — sync
 * progress is two families (`…_sync_done_bytes`, `…_sync_total_bytes`), not `kind="done|total"`;
 * event-loop percentiles are one gauge each. `op`, `result`, `direction` and `replica` pass: all
 * ops, all outcomes, traffic both ways and the replicas' sum are each a real total.
 *
 * Layers: frontend = the client-facing call on the volume's master (its own write plus every
 * in-sync replica's ack), network = one replica round trip (frame handed to the connection →
 * its ack), backend = the local store call (on master and replica copies alike).
 */

export type MetricType = "counter" | "gauge" | "histogram"

export interface MetricFamily {
  readonly type: MetricType
  readonly help: string
  readonly labels: ReadonlyArray<string>
}

export const metricNames = {
  frontendOps: "replivol_frontend_ops_total",
  frontendBytes: "replivol_frontend_bytes_total",
  frontendLatency: "replivol_frontend_latency_seconds",
  networkFrames: "replivol_network_frames_total",
  networkBytes: "replivol_network_bytes_total",
  networkLatency: "replivol_network_latency_seconds",
  backendOps: "replivol_backend_ops_total",
  backendBytes: "replivol_backend_bytes_total",
  backendLatency: "replivol_backend_latency_seconds",
  replicationRetries: "replivol_replication_retries_total",
  volumeHealth: "replivol_volume_health",
  volumeSyncDone: "replivol_volume_sync_done_bytes",
  volumeSyncTotal: "replivol_volume_sync_total_bytes",
  volumeVerifyDiffering: "replivol_volume_verify_differing_regions",
  volumeVerifyLastSuccess: "replivol_volume_verify_last_success_timestamp_seconds",
  droppedSeries: "replivol_metrics_dropped_series_total",
  eventLoopDelayP50: "replivol_process_event_loop_delay_p50_seconds",
  eventLoopDelayP99: "replivol_process_event_loop_delay_p99_seconds",
  eventLoopDelayMax: "replivol_process_event_loop_delay_max_seconds",
  eventLoopDelayMean: "replivol_process_event_loop_delay_mean_seconds",
  heapUsed: "replivol_process_heap_used_bytes",
  heapTotal: "replivol_process_heap_total_bytes",
  residentMemory: "replivol_process_resident_memory_bytes",
} as const

export type MetricName = (typeof metricNames)[keyof typeof metricNames]

const loopWindow = "over the last 10 s window (perf_hooks.monitorEventLoopDelay)"

export const metricFamilies: Readonly<Record<MetricName, MetricFamily>> = {
  replivol_frontend_ops_total: { type: "counter", labels: ["volume", "op", "result"], help: "Reads, writes and flushes by volume handles and the FUSE mount, by result (ok, or the error's tag:reason); a failover pause is one op." },
  replivol_frontend_bytes_total: { type: "counter", labels: ["volume", "op"], help: "Bytes read and written by volume handles and the FUSE mount (successful ops)." },
  replivol_frontend_latency_seconds: { type: "histogram", labels: ["volume", "op"], help: "Latency of reads, writes and flushes as the volume's master serves them (its own store plus every in-sync replica's ack)." },
  replivol_network_frames_total: { type: "counter", labels: ["volume", "direction"], help: "Replication frames: out = queued by a master for a replica, in = received by a replica." },
  replivol_network_bytes_total: { type: "counter", labels: ["volume", "direction"], help: "Payload bytes of replication frames (before compression): out = sent by masters, in = received by replicas." },
  replivol_network_latency_seconds: { type: "histogram", labels: ["volume", "op"], help: "Replica round trip seen by the master: a write, flush or sync chunk handed to the connection until the replica's ack arrives." },
  replivol_backend_ops_total: { type: "counter", labels: ["volume", "op", "result"], help: "Reads, writes and flushes (fdatasync) of the local copies' stores, master and replica copies alike, by result." },
  replivol_backend_bytes_total: { type: "counter", labels: ["volume", "op"], help: "Bytes read and written by the local copies' stores." },
  replivol_backend_latency_seconds: { type: "histogram", labels: ["volume", "op"], help: "Latency of the local copies' store reads, writes and flushes (fdatasync)." },
  replivol_replication_retries_total: { type: "counter", labels: ["volume"], help: "Reconnections of a master to a replica after a dropped connection (its unacknowledged frames were resent)." },
  replivol_volume_health: { type: "gauge", labels: ["volume"], help: "Volume health: 0 healthy, 1 degraded, 2 unavailable." },
  replivol_volume_sync_done_bytes: { type: "gauge", labels: ["volume", "replica"], help: "Bytes a syncing replica has received of its current sync." },
  replivol_volume_sync_total_bytes: { type: "gauge", labels: ["volume", "replica"], help: "Bytes a syncing replica's current sync must send in all." },
  replivol_volume_verify_differing_regions: { type: "gauge", labels: ["volume"], help: "Regions in which an in-sync replica differed from the master at the end of the volume's last verify (after repair, if asked)." },
  replivol_volume_verify_last_success_timestamp_seconds: { type: "gauge", labels: ["volume"], help: "Unix time at which the last verify that found every in-sync copy equal to the master (none skipped) finished." },
  replivol_metrics_dropped_series_total: { type: "counter", labels: [], help: "Series not recorded because the registry held its maximum number of series." },
  replivol_process_event_loop_delay_p50_seconds: { type: "gauge", labels: [], help: `Median event-loop delay ${loopWindow}.` },
  replivol_process_event_loop_delay_p99_seconds: { type: "gauge", labels: [], help: `99th percentile event-loop delay ${loopWindow}.` },
  replivol_process_event_loop_delay_max_seconds: { type: "gauge", labels: [], help: `Longest event-loop delay ${loopWindow}.` },
  replivol_process_event_loop_delay_mean_seconds: { type: "gauge", labels: [], help: `Mean event-loop delay ${loopWindow}.` },
  replivol_process_heap_used_bytes: { type: "gauge", labels: [], help: "V8 heap in use (process.memoryUsage().heapUsed)." },
  replivol_process_heap_total_bytes: { type: "gauge", labels: [], help: "V8 heap reserved (process.memoryUsage().heapTotal)." },
  replivol_process_resident_memory_bytes: { type: "gauge", labels: [], help: "Resident set size of the process (process.memoryUsage().rss)." },
}

/** Upper bounds of the latency histograms, in seconds: 50 µs (a local 4 KiB write) to 10 s (a failover pause). */
export const latencyBucketsSeconds: ReadonlyArray<number> = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

/** Label names that split one quantity into parts that must not be summed; no family may use one. */
export const quantitySplittingLabels: ReadonlyArray<string> = ["kind", "quantity", "stat", "field", "measure", "type", "quantile"]
