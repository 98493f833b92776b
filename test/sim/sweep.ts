/**
 * Sweeps many simulation seeds and prints each failing seed with its replay command, a summary and
 * the wall time; exits 1 if any failed.
 *
 *   npm run sim:sweep -- [count] [first]                        replication simulator (default 2000 from 1)
 *   npm run sim:sweep -- --cluster [count] [first] [workers]    cluster simulator, in parallel worker processes
 *                                                               (default 10000 from 1, one worker per core)
 */
import { spawn } from "node:child_process"
import { availableParallelism } from "node:os"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { runReplicationSim } from "../../lib/testing/replicationSim.ts"
import type { ClusterSimResult } from "../../lib/testing/clusterSim.ts"

const args = process.argv.slice(2)
const cluster = args[0] === "--cluster"
const [countArg, firstArg, workersArg] = cluster ? args.slice(1) : args
const started = performance.now()
const seconds = () => ((performance.now() - started) / 1000).toFixed(0)

const sweepReplication = async (count: number, first: number) => {
  const modes = ["soft", "hard", "alwayson"] as const
  let failed = 0
  for (let seed = first; seed < first + count; seed++) {
    const result = await runReplicationSim({ seed, failureMode: modes[seed % 3]! })
    if (result.violations.length > 0) {
      failed++
      console.log(`seed ${seed} FAILED: ${result.violations.join("; ")}\n  replay: SEED=${seed} node --import tsx test/run.ts --group sim replication`)
    }
    if ((seed - first + 1) % 100 === 0) console.log(`${seed - first + 1} seeds, ${failed} failed, ${seconds()} s`)
  }
  return failed
}

/** Seeds a worker process runs before the next one takes over its lane. */
const seedsPerProcess = 500

/** Seeds first, first+workers, … in each worker process (test/sim/cluster-worker.ts), results as they come. */
const sweepCluster = async (count: number, first: number, workers: number) => {
  const root = fileURLToPath(new URL("../../", import.meta.url))
  let done = 0, failed = 0, wallMs = 0
  const faults: Record<string, number> = {}
  const onResult = (result: ClusterSimResult & { wallMs: number }) => {
    done++
    wallMs += result.wallMs
    for (const [kind, n] of Object.entries(result.faults)) faults[kind] = (faults[kind] ?? 0) + n
    if (result.violations.length > 0) {
      failed++
      console.log(`seed ${result.seed} FAILED: ${result.violations.slice(0, 3).join("; ")}\n  replay: SEED=${result.seed} node --import tsx test/run.ts --group sim cluster.test`)
    }
    if (done % 250 === 0) console.log(`${done} seeds, ${failed} failed, ${seconds()} s`)
  }
  // Each lane runs its seeds in worker processes of at most `seedsPerProcess` seeds: a worker's
  // memory grows ~3 MB a seed (4 000 seeds took 12 GB and the machine into swap).
  const runWorker = (start: number, seeds: number) => new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/sim/cluster-worker.ts", String(start), String(seeds), String(workers)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    createInterface({ input: child.stdout }).on("line", (line) => onResult(JSON.parse(line)))
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`worker for seeds from ${start} exited ${code}`))))
  })
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    const seeds = Math.ceil((count - w) / workers)
    for (let k = 0; k < seeds; k += seedsPerProcess) await runWorker(first + w + k * workers, Math.min(seedsPerProcess, seeds - k))
  }))
  console.log(`faults injected: ${Object.entries(faults).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k} ${n}`).join(", ")}`)
  console.log(`${done} seeds in ${seconds()} s with ${workers} workers (${(wallMs / Math.max(1, done)).toFixed(0)} ms per seed in a worker)`)
  return failed
}

const failed = cluster
  ? await sweepCluster(Number(countArg ?? 10_000), Number(firstArg ?? 1), Number(workersArg ?? availableParallelism()))
  : await sweepReplication(Number(countArg ?? 2000), Number(firstArg ?? 1))
console.log(`${failed === 0 ? "all passed" : `${failed} failed`} (${seconds()} s)`)
process.exit(failed > 0 ? 1 : 0)
