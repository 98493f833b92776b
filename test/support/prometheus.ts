/**
 * A parser of the Prometheus text format as `/metrics` renders it, and the checks a scraper's
 * owner would make of a whole output: every family has `# HELP` and `# TYPE`; every sample of a
 * family carries the same label names (histograms: plus `le` on `_bucket`), those the catalogue
 * lists; no family splits one quantity across label values (`kind="done|total"`); histogram
 * buckets are cumulative and end at +Inf = _count. Returns the problems found (empty: all good).
 */
import { metricFamilies, quantitySplittingLabels } from "../../lib/core/metricFamilies.ts"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  help: string | undefined
  type: string | undefined
  readonly samples: Sample[]
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

const familyOf = (sample: string, families: ReadonlyMap<string, Family>): string => {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = sample.slice(0, -suffix.length)
    if (sample.endsWith(suffix) && families.get(base)?.type === "histogram") return base
  }
  return sample
}

export const parsePrometheus = (text: string): { readonly families: ReadonlyMap<string, Family>; readonly problems: string[] } => {
  const families = new Map<string, Family>()
  const problems: string[] = []
  const family = (name: string) => families.get(name) ?? families.set(name, { name, help: undefined, type: undefined, samples: [] }).get(name)!
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (meta) {
      const f = family(meta[2]!)
      if (meta[1] === "HELP") f.help = meta[3]
      else f.type = meta[3]
      continue
    }
    if (line.startsWith("#")) continue
    const match = sampleLine.exec(line)
    if (!match) {
      problems.push(`unparsable line: ${line}`)
      continue
    }
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? "").matchAll(labelPair)) labels[pair[1]!] = pair[2]!
    const value = match[3] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[3])
    if (Number.isNaN(value)) problems.push(`not a number: ${line}`)
    family(familyOf(match[1]!, families)).samples.push({ name: match[1]!, labels, value })
  }
  return { families, problems }
}

const labelNames = (sample: Sample) => Object.keys(sample.labels).filter((k) => !(k === "le" && sample.name.endsWith("_bucket"))).sort().join(",")

const checkHistogram = (f: Family, problems: string[]) => {
  const groups = new Map<string, Sample[]>()
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name.endsWith("_bucket"))
    const count = samples.find((s) => s.name.endsWith("_count"))?.value
    if (buckets.length === 0 || count === undefined || !samples.some((s) => s.name.endsWith("_sum"))) problems.push(`${f.name} ${key}: a histogram needs _bucket, _sum and _count`)
    for (let i = 1; i < buckets.length; i++) if (buckets[i]!.value < buckets[i - 1]!.value) problems.push(`${f.name} ${key}: buckets are not cumulative`)
    if (buckets.at(-1)?.labels.le !== "+Inf" || buckets.at(-1)?.value !== count) problems.push(`${f.name} ${key}: the last bucket must be le="+Inf" and equal _count`)
  }
}

/** Every problem of a whole `/metrics` output. */
export const checkExposition = (text: string): string[] => {
  const { families, problems } = parsePrometheus(text)
  const catalogue = metricFamilies as Readonly<Record<string, { readonly type: string; readonly labels: ReadonlyArray<string> }>>
  for (const f of families.values()) {
    if (!f.help) problems.push(`${f.name} has no # HELP`)
    if (!f.type) problems.push(`${f.name} has no # TYPE`)
    const listed = catalogue[f.name]
    if (!listed) problems.push(`${f.name} is not in the family catalogue (lib/core/metricFamilies.ts)`)
    else if (listed.type !== f.type) problems.push(`${f.name} is rendered as ${f.type} but the catalogue says ${listed.type}`)
    const sets = new Set(f.samples.map(labelNames))
    if (sets.size > 1) problems.push(`${f.name} mixes label sets: ${[...sets].map((s) => `{${s}}`).join(" ")}`)
    if (listed && sets.size === 1 && [...sets][0] !== [...listed.labels].sort().join(",")) problems.push(`${f.name} carries labels {${[...sets][0]}}, the catalogue lists {${listed.labels.join(",")}}`)
    for (const s of f.samples) {
      const splitting = Object.keys(s.labels).filter((k) => quantitySplittingLabels.includes(k))
      if (splitting.length > 0) problems.push(`${f.name} splits one quantity across ${splitting.join(",")}=${splitting.map((k) => s.labels[k]).join(",")}: use one family per quantity`)
    }
    if (f.type === "histogram") checkHistogram(f, problems)
  }
  return [...new Set(problems)]
}
