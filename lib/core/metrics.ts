/**
 * A small metrics registry: counters, gauges and latency histograms keyed by name and labels,
 * rendered in the Prometheus text format (with `# HELP` and `# TYPE` from the family catalogue,
 * lib/core/metricFamilies.ts) for the admin API's `/metrics`.
 *
 * Two ways to record. `add`/`set` look the series up by name and labels (one key string per
 * call): fine for gauges and rare counters. On hot paths resolve a handle once — `counter(…)`,
 * `histogram(…)` — then each update is a few array or field increments with no allocation. A
 * histogram observes milliseconds from `nowMs` (a monotonic high-resolution clock, default
 * `performance.now`, injectable for tests) into fixed buckets; it is rendered in seconds.
 *
 * The number of series is bounded (`seriesMax`): past it, new series are dropped (their handles
 * record nothing) and counted in `replivol_metrics_dropped_series_total`. `onRender` collectors
 * run before each render (process gauges). Names follow Prometheus conventions; label values are
 * escaped when rendered.
 */
import { Effect } from "effect"
import { latencyBucketsSeconds, metricFamilies, metricNames } from "./metricFamilies.ts"

export const seriesMax = 10_000

export interface Counter {
  readonly inc: (value?: number) => void
}

export interface Histogram {
  /** One observation, in milliseconds. */
  readonly observe: (ms: number) => void
}

export interface HistogramSnapshot {
  readonly count: number
  readonly sumSeconds: number
  /** Cumulative counts per upper bound (seconds), the last one +Inf. */
  readonly buckets: ReadonlyArray<readonly [number, number]>
}

export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  readonly add: (name: string, labels: Readonly<Record<string, string>>, value?: number) => void
  /** Sets a gauge. */
  readonly set: (name: string, labels: Readonly<Record<string, string>>, value: number) => void
  /** A counter's handle: `inc` without a lookup. */
  readonly counter: (name: string, labels: Readonly<Record<string, string>>) => Counter
  /** A latency histogram's handle (buckets `latencyBucketsSeconds`). */
  readonly histogram: (name: string, labels: Readonly<Record<string, string>>) => Histogram
  /** Removes every series of `name` whose labels include `match` (e.g. a deleted volume). */
  readonly remove: (name: string, match: Readonly<Record<string, string>>) => void
  /** A counter's or gauge's value; a histogram's count. */
  readonly get: (name: string, labels: Readonly<Record<string, string>>) => number | undefined
  readonly histogramOf: (name: string, labels: Readonly<Record<string, string>>) => HistogramSnapshot | undefined
  /** Monotonic milliseconds for latencies (fractional). */
  readonly nowMs: () => number
  /** Runs `collect` before every render; returns its removal. */
  readonly onRender: (collect: () => void) => () => void
  readonly render: () => string
}

interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly kind: "counter" | "gauge" | "histogram"
  value: number
  /** Histograms: per-bucket (not cumulative) counts, then +Inf, then the sum (ms) and the count. */
  readonly counts?: Float64Array
}

const boundsMs = Float64Array.from(latencyBucketsSeconds, (s) => s * 1000)
const bucketCount = boundsMs.length
/** Slots of a histogram's array after its buckets and +Inf. */
const sumSlot = bucketCount + 1
const countSlot = bucketCount + 2

const needsEscape = /[\\\n"]/
const escape = (value: string) => (needsEscape.test(value) ? value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : value)
/** `{a="1",b="2"}`, keys sorted: the series key (label values escaped only when they need it). */
const labelText = (labels: Readonly<Record<string, string>>, extra = "") => {
  const keys = Object.keys(labels)
  if (keys.length > 1) keys.sort()
  let text = ""
  for (const k of keys) text += `${text === "" ? "" : ","}${k}="${escape(labels[k]!)}"`
  if (extra !== "") text += `${text === "" ? "" : ","}${extra}`
  return text === "" ? "" : `{${text}}`
}
const keyOf = (name: string, labels: Readonly<Record<string, string>>) => `${name}${labelText(labels)}`

const noCounter: Counter = { inc: () => undefined }
const noHistogram: Histogram = { observe: () => undefined }

const histogramOfSeries = (entry: Series): HistogramSnapshot => {
  let cumulative = 0
  const buckets: Array<readonly [number, number]> = []
  for (let i = 0; i <= bucketCount; i++) {
    cumulative += entry.counts![i]!
    buckets.push([i < bucketCount ? latencyBucketsSeconds[i]! : Number.POSITIVE_INFINITY, cumulative])
  }
  return { count: entry.counts![countSlot]!, sumSeconds: entry.counts![sumSlot]! / 1000, buckets }
}

const renderSeries = (lines: string[], entry: Series) => {
  if (entry.kind !== "histogram") return void lines.push(`${keyOf(entry.name, entry.labels)} ${entry.value}`)
  for (const [le, count] of histogramOfSeries(entry).buckets) {
    lines.push(`${entry.name}_bucket${labelText(entry.labels, `le="${le === Number.POSITIVE_INFINITY ? "+Inf" : le}"`)} ${count}`)
  }
  const { count, sumSeconds } = histogramOfSeries(entry)
  lines.push(`${entry.name}_sum${labelText(entry.labels)} ${sumSeconds}`, `${entry.name}_count${labelText(entry.labels)} ${count}`)
}

const header = (lines: string[], name: string, kind: string) => {
  const family = (metricFamilies as Readonly<Record<string, { readonly help: string; readonly type: string }>>)[name]
  if (family) lines.push(`# HELP ${name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`)
  lines.push(`# TYPE ${name} ${family?.type ?? kind}`)
}

export const makeMetrics = (options: { readonly nowMs?: () => number } = {}): Metrics => {
  const series = new Map<string, Series>()
  const collectors = new Set<() => void>()
  let dropped = 0
  const upsert = (name: string, labels: Readonly<Record<string, string>>, kind: Series["kind"]) => {
    const key = keyOf(name, labels)
    let entry = series.get(key)
    if (!entry) {
      if (series.size >= seriesMax) {
        dropped++
        return undefined
      }
      entry = { name, labels: { ...labels }, kind, value: 0, ...(kind === "histogram" ? { counts: new Float64Array(countSlot + 1) } : {}) }
      series.set(key, entry)
    }
    return entry
  }
  // All of a histogram's state is in its Float64Array (buckets, +Inf, sum, count): an observe
  // writes three array slots and allocates nothing (a double in an object field may be boxed).
  const observeInto = (counts: Float64Array) => (ms: number) => {
    let i = 0
    while (i < bucketCount && ms > boundsMs[i]!) i++
    counts[i] = counts[i]! + 1
    counts[sumSlot] = counts[sumSlot]! + ms
    counts[countSlot] = counts[countSlot]! + 1
  }
  return {
    add: (name, labels, value = 1) => {
      const entry = upsert(name, labels, "counter")
      if (entry) entry.value += value
    },
    set: (name, labels, value) => {
      const entry = upsert(name, labels, "gauge")
      if (entry) entry.value = value
    },
    counter: (name, labels) => {
      const entry = upsert(name, labels, "counter")
      return entry ? { inc: (value = 1) => void (entry.value += value) } : noCounter
    },
    histogram: (name, labels) => {
      const entry = upsert(name, labels, "histogram")
      return entry?.counts ? { observe: observeInto(entry.counts) } : noHistogram
    },
    remove: (name, match) => {
      for (const [key, entry] of series) {
        if (entry.name === name && Object.entries(match).every(([k, v]) => entry.labels[k] === v)) series.delete(key)
      }
    },
    get: (name, labels) => {
      const entry = series.get(keyOf(name, labels))
      return entry?.counts ? entry.counts[countSlot] : entry?.value
    },
    histogramOf: (name, labels) => {
      const entry = series.get(keyOf(name, labels))
      return entry?.counts ? histogramOfSeries(entry) : undefined
    },
    nowMs: options.nowMs ?? (() => performance.now()),
    onRender: (collect) => {
      collectors.add(collect)
      return () => void collectors.delete(collect)
    },
    render: () => {
      for (const collect of collectors) collect()
      const byName = new Map<string, Series[]>()
      for (const entry of series.values()) byName.set(entry.name, [...(byName.get(entry.name) ?? []), entry])
      const lines: string[] = []
      for (const [name, entries] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
        header(lines, name, entries[0]!.kind)
        for (const entry of entries) renderSeries(lines, entry)
      }
      header(lines, metricNames.droppedSeries, "counter")
      lines.push(`${metricNames.droppedSeries} ${dropped}`)
      return `${lines.join("\n")}\n`
    },
  }
}

/** A registry that records nothing (the default when no one asked for metrics). */
export const noMetrics: Metrics = {
  add: () => undefined, set: () => undefined, counter: () => noCounter, histogram: () => noHistogram, remove: () => undefined,
  get: () => undefined, histogramOf: () => undefined, nowMs: () => 0, onRender: () => () => undefined, render: () => "",
}

/** The handles of one operation of one volume at one layer (resolved once, when the store or volume is wrapped). */
export interface OpMetrics {
  readonly ok: Counter
  readonly error: Counter
  readonly bytes: Counter
  readonly latency: Histogram
}

export const opMetrics = (metrics: Metrics, names: { readonly ops: string; readonly bytes: string; readonly latency: string }, volume: string, op: string): OpMetrics => ({
  ok: metrics.counter(names.ops, { volume, op, result: "ok" }),
  error: metrics.counter(names.ops, { volume, op, result: "error" }),
  bytes: metrics.counter(names.bytes, { volume, op }),
  latency: metrics.histogram(names.latency, { volume, op }),
})

/** Runs `effect`, observing its latency (success or failure) into `latency`. */
export const timeInto = <A, E, R>(metrics: Metrics, latency: Histogram, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const startedMs = metrics.nowMs()
    return Effect.onExit(effect, () => {
      latency.observe(metrics.nowMs() - startedMs)
      return Effect.void
    })
  })

/** Runs `effect`, counting it by result, its bytes when it succeeded, and its latency. */
export const countAndTime = <A, E, R>(metrics: Metrics, op: OpMetrics, bytes: number, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const startedMs = metrics.nowMs()
    return Effect.onExit(effect, (exit) => {
      op.latency.observe(metrics.nowMs() - startedMs)
      if (exit._tag === "Success") {
        op.ok.inc()
        if (bytes > 0) op.bytes.inc(bytes)
      } else op.error.inc()
      return Effect.void
    })
  })
