/**
 * A small metrics registry: counters and gauges keyed by name and labels, rendered in the
 * Prometheus text format for the admin API's `/metrics`.
 *
 * Pure and synchronous so it can sit on hot paths (one map lookup per update). Names follow
 * Prometheus conventions (`replivol_<layer>_<what>_total` for counters); label values are
 * escaped when rendered. The number of series is bounded (`seriesMax`): past it, new series are
 * dropped and counted in `replivol_metrics_dropped_series_total`.
 */
export const seriesMax = 10_000

export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  readonly add: (name: string, labels: Readonly<Record<string, string>>, value?: number) => void
  /** Sets a gauge. */
  readonly set: (name: string, labels: Readonly<Record<string, string>>, value: number) => void
  /** Removes every series of `name` whose labels include `match` (e.g. a deleted volume). */
  readonly remove: (name: string, match: Readonly<Record<string, string>>) => void
  readonly get: (name: string, labels: Readonly<Record<string, string>>) => number | undefined
  readonly render: () => string
}

interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly kind: "counter" | "gauge"
  value: number
}

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const keyOf = (name: string, labels: Readonly<Record<string, string>>) =>
  `${name}{${Object.keys(labels).sort().map((k) => `${k}="${escape(labels[k]!)}"`).join(",")}}`

export const makeMetrics = (): Metrics => {
  const series = new Map<string, Series>()
  let dropped = 0
  const upsert = (name: string, labels: Readonly<Record<string, string>>, kind: Series["kind"]) => {
    const key = keyOf(name, labels)
    let entry = series.get(key)
    if (!entry) {
      if (series.size >= seriesMax) {
        dropped++
        return undefined
      }
      entry = { name, labels: { ...labels }, kind, value: 0 }
      series.set(key, entry)
    }
    return entry
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
    remove: (name, match) => {
      for (const [key, entry] of series) {
        if (entry.name === name && Object.entries(match).every(([k, v]) => entry.labels[k] === v)) series.delete(key)
      }
    },
    get: (name, labels) => series.get(keyOf(name, labels))?.value,
    render: () => {
      const byName = new Map<string, Series[]>()
      for (const entry of series.values()) byName.set(entry.name, [...(byName.get(entry.name) ?? []), entry])
      const lines: string[] = []
      for (const [name, entries] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
        lines.push(`# TYPE ${name} ${entries[0]!.kind}`)
        for (const entry of entries) lines.push(`${keyOf(name, entry.labels).replace(/\{\}$/, "")} ${entry.value}`)
      }
      lines.push("# TYPE replivol_metrics_dropped_series_total counter", `replivol_metrics_dropped_series_total ${dropped}`)
      return `${lines.join("\n")}\n`
    },
  }
}

/** A registry that records nothing (the default when no one asked for metrics). */
export const noMetrics: Metrics = { add: () => undefined, set: () => undefined, remove: () => undefined, get: () => undefined, render: () => "" }
