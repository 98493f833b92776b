/**
 * Summary statistics for the replication benchmarks: median, quantiles and range of a list of
 * trials or samples. Benchmarks report medians with their range because the 2-vCPU VM is shared
 * and noisy (PLATFORM-NOTES §6); a single mean would hide that.
 */

/** The q-quantile (0 ≤ q ≤ 1) of `values` by the nearest-rank method; NaN for an empty list. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/** Rounds to `digits` decimals (for JSON output that stays readable). */
export const round = (value: number, digits = 1): number => {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly trials: ReadonlyArray<number>
}

/** Median, range and every trial value, rounded for printing. */
export const spread = (values: ReadonlyArray<number>, digits = 1): Spread => ({
  median: round(median(values), digits),
  min: round(Math.min(...values), digits),
  max: round(Math.max(...values), digits),
  trials: values.map((value) => round(value, digits)),
})

/** MB/s (10^6 bytes per second) of `bytes` moved in `ms` milliseconds. */
export const megabytesPerSecond = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000)
