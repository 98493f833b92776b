/**
 * What the latency metrics cost on the hot path. Three figures, interleaved trials, medians:
 * - one `histogram.observe` (ns), against a plain Float64Array increment (the baseline), and the
 *   garbage collections seen during 5 M observes (0 means no allocation per observe);
 * - a 4 KiB write to a memory store run through the Effect runtime, bare vs wrapped by
 *   `instrumentStore` (counters + latency histogram + two clock reads): ns per write and ratio.
 *
 * Run: node --import tsx test/bench/metrics-overhead.ts   Env: TRIALS (default 7).
 */
import { PerformanceObserver } from "node:perf_hooks"
import { Effect } from "effect"
import { makeMetrics } from "../../lib/core/metrics.ts"
import { instrumentStore } from "../../lib/store/instrumented.ts"
import { makeMemoryStore } from "../../lib/store/memory.ts"
import type { BlockStore } from "../../lib/store/BlockStore.ts"

const trialCount = Number(process.env.TRIALS ?? 7)
const observeCount = 5_000_000
const writeCount = 50_000

const median = (values: ReadonlyArray<number>): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const round = (n: number) => Math.round(n * 10) / 10

let gcCount = 0
new PerformanceObserver((list) => void (gcCount += list.getEntries().length)).observe({ entryTypes: ["gc"] })

const metrics = makeMetrics()
const histogram = metrics.histogram("replivol_backend_latency_seconds", { volume: "bench/v", op: "write" })
const plain = new Float64Array(18)
const samplesMs = Float64Array.from({ length: 1024 }, (_, i) => 0.01 + (i % 97) * 0.05)

const timeObserve = (): number => {
  const started = performance.now()
  for (let i = 0; i < observeCount; i++) histogram.observe(samplesMs[i & 1023]!)
  return ((performance.now() - started) * 1e6) / observeCount
}
const timePlain = (): number => {
  const started = performance.now()
  for (let i = 0; i < observeCount; i++) plain[i % 18] = plain[i % 18]! + samplesMs[i & 1023]!
  return ((performance.now() - started) * 1e6) / observeCount
}

const bare = makeMemoryStore(64 << 20)
const wrapped = instrumentStore(makeMemoryStore(64 << 20), "bench/v", metrics)
const block = new Uint8Array(4096).fill(1)
const timeWrites = (store: BlockStore): number => {
  const started = performance.now()
  for (let i = 0; i < writeCount; i++) Effect.runSync(store.write((i % 16384) * 4096, block))
  return ((performance.now() - started) * 1e6) / writeCount
}

// Phase 1, before any Effect runs (so no garbage of theirs is collected meanwhile): observe vs increment.
for (let warm = 0; warm < 2; warm++) {
  timeObserve()
  timePlain()
}
await new Promise((resolve) => setTimeout(resolve, 50)) // let the GC entries of the warm-up arrive
const observeNs: number[] = []
const plainNs: number[] = []
const gcsPerTrial: number[] = []
for (let trial = 0; trial < trialCount; trial++) {
  const before = gcCount
  observeNs.push(timeObserve())
  await new Promise((resolve) => setTimeout(resolve, 20))
  gcsPerTrial.push(gcCount - before)
  plainNs.push(timePlain())
}
// Phase 2: 4 KiB writes through the Effect runtime, bare and instrumented, interleaved.
for (let warm = 0; warm < 2; warm++) {
  timeWrites(bare)
  timeWrites(wrapped)
}
const bareNs: number[] = []
const wrappedNs: number[] = []
for (let trial = 0; trial < trialCount; trial++) {
  bareNs.push(timeWrites(bare))
  wrappedNs.push(timeWrites(wrapped))
}
console.log(JSON.stringify({
  name: "metrics-overhead",
  observeNs: round(median(observeNs)),
  baseline: "Float64Array increment",
  baselineNs: round(median(plainNs)),
  observeRatio: round(median(observeNs) / median(plainNs)),
  gcsDuring5MObserves: median(gcsPerTrial),
  write4KiBBareNs: round(median(bareNs)),
  write4KiBInstrumentedNs: round(median(wrappedNs)),
  writeOverheadNs: round(median(wrappedNs) - median(bareNs)),
  writeRatio: round(median(wrappedNs) / median(bareNs) * 100) / 100,
  trials: trialCount,
}))
