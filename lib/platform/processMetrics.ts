/**
 * Process metrics for `/metrics`: event-loop delay (perf_hooks.monitorEventLoopDelay: p50, p99,
 * max and mean, one gauge each, over the last complete `eventLoopWindowMs`), V8 heap used and
 * reserved, and RSS (process.memoryUsage). The event loop matters here: a stall longer than the
 * lease window makes a healthy master lose its lease (docs/design.md). Started by the admin
 * server for its scope; where perf_hooks has no monitor (some Bun/Deno versions) only the memory
 * gauges are kept.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks"
import { Effect, Schedule } from "effect"
import { metricNames } from "../core/metricFamilies.ts"
import type { Metrics } from "../core/metrics.ts"

/** Length of one event-loop delay window. */
export const eventLoopWindowMs = 10_000
/** Sampling resolution of the event-loop monitor. */
export const eventLoopResolutionMs = 10

interface LoopFigures {
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

const secondsOf = (nanos: number) => (Number.isFinite(nanos) ? nanos / 1e9 : 0)
const figuresOf = (h: IntervalHistogram): LoopFigures => ({ p50: secondsOf(h.percentile(50)), p99: secondsOf(h.percentile(99)), max: secondsOf(h.max), mean: secondsOf(h.mean) })

const openMonitor = (): IntervalHistogram | undefined => {
  try {
    const monitor = monitorEventLoopDelay({ resolution: eventLoopResolutionMs })
    monitor.enable()
    return monitor
  } catch {
    return undefined
  }
}

/** Keeps the process gauges of `metrics` current until the scope closes. */
export const startProcessMetrics = (metrics: Metrics) =>
  Effect.gen(function* () {
    const monitor = openMonitor()
    let last: LoopFigures | undefined
    const collect = () => {
      const memory = process.memoryUsage()
      metrics.set(metricNames.heapUsed, {}, memory.heapUsed)
      metrics.set(metricNames.heapTotal, {}, memory.heapTotal)
      metrics.set(metricNames.residentMemory, {}, memory.rss)
      if (!monitor) return
      const figures = last ?? figuresOf(monitor)
      metrics.set(metricNames.eventLoopDelayP50, {}, figures.p50)
      metrics.set(metricNames.eventLoopDelayP99, {}, figures.p99)
      metrics.set(metricNames.eventLoopDelayMax, {}, figures.max)
      metrics.set(metricNames.eventLoopDelayMean, {}, figures.mean)
    }
    const remove = yield* Effect.acquireRelease(Effect.sync(() => metrics.onRender(collect)), (removeCollector) => Effect.sync(() => {
      removeCollector()
      monitor?.disable()
    }))
    if (monitor) {
      const roll = Effect.sync(() => {
        last = figuresOf(monitor)
        monitor.reset()
      })
      yield* Effect.forkScoped(Effect.repeat(roll, Schedule.spaced(eventLoopWindowMs)).pipe(Effect.delay(eventLoopWindowMs)))
    }
    return remove
  })
