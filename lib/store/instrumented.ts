/**
 * A BlockStore that counts and times its operations: the backend layer of `/metrics`
 * (`replivol_backend_ops_total{volume,op,result}`, `replivol_backend_bytes_total{volume,op}`,
 * `replivol_backend_latency_seconds{volume,op}`). The metric handles are resolved once, here, so
 * an operation costs a clock read and a few increments on top of the store call.
 */
import { countAndTime, noMetrics, opMetrics, type Metrics } from "../core/metrics.ts"
import { metricNames } from "../core/metricFamilies.ts"
import { wrapStore, type BlockStore } from "./BlockStore.ts"

const backend = { ops: metricNames.backendOps, bytes: metricNames.backendBytes, latency: metricNames.backendLatency }

export const instrumentStore = (store: BlockStore, volume: string, metrics: Metrics): BlockStore => {
  if (metrics === noMetrics) return store
  const read = opMetrics(metrics, backend, volume, "read")
  const write = opMetrics(metrics, backend, volume, "write")
  const flush = opMetrics(metrics, backend, volume, "flush")
  return wrapStore(store, {
    read: (offset, length) => countAndTime(metrics, read, length, store.read(offset, length)),
    write: (offset, data) => countAndTime(metrics, write, data.length, store.write(offset, data)),
    flush: countAndTime(metrics, flush, 0, store.flush),
  })
}
