/**
 * A BlockStore that counts its operations: the backend layer of `/metrics`
 * (`replivol_backend_ops_total{volume,op,result}`, `replivol_backend_bytes_total{volume,op}`).
 */
import { Effect } from "effect"
import { noMetrics, type Metrics } from "../core/metrics.ts"
import type { BlockStore } from "./BlockStore.ts"

export const instrumentStore = (store: BlockStore, volume: string, metrics: Metrics): BlockStore => {
  if (metrics === noMetrics) return store
  const count = <A, E>(op: string, bytes: number, effect: Effect.Effect<A, E>) =>
    effect.pipe(Effect.onExit((exit) => Effect.sync(() => {
      metrics.add("replivol_backend_ops_total", { volume, op, result: exit._tag === "Success" ? "ok" : "error" })
      if (exit._tag === "Success" && bytes > 0) metrics.add("replivol_backend_bytes_total", { volume, op }, bytes)
    })))
  return {
    ...store,
    read: (offset, length) => count("read", length, store.read(offset, length)),
    write: (offset, data) => count("write", data.length, store.write(offset, data)),
    flush: count("flush", 0, store.flush),
  }
}
