/**
 * Deterministic simulation of the whole cluster (lib/testing/clusterSim.ts): 5 nodes, 3 volumes,
 * crashes and restarts, partitions (from peers and from the control store), slow links, resets,
 * bit flips. CLUSTER_SIM_SEEDS=n (default 500) seeds run in two worker processes (the machine's two
 * cores); SEED=n replays exactly one seed in this process. Failing seeds print their replay command.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { runClusterSim, type ClusterSimResult } from "../../lib/testing/clusterSim.ts"

const test = suite("cluster simulation")
const root = fileURLToPath(new URL("../../", import.meta.url))
const only = process.env.SEED === undefined ? undefined : Number(process.env.SEED)
const seedCount = Number(process.env.CLUSTER_SIM_SEEDS ?? 500)
const workers = Math.max(1, Number(process.env.SIM_WORKERS ?? 2))
const isBun = typeof (process.versions as Record<string, string | undefined>).bun === "string"

const runWorker = (first: number, count: number, stride: number) =>
  new Promise<ClusterSimResult[]>((resolve, reject) => {
    const args = isBun ? ["test/sim/cluster-worker.ts"] : ["--import", "tsx", "test/sim/cluster-worker.ts"]
    const child = spawn(process.execPath, [...args, String(first), String(count), String(stride)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    const results: ClusterSimResult[] = []
    createInterface({ input: child.stdout }).on("line", (line) => results.push(JSON.parse(line)))
    child.on("exit", (code) => (code === 0 ? resolve(results) : reject(new Error(`worker for seeds ${first}+${stride}k exited ${code} after ${results.length} seeds`))))
  })

const describe = (r: ClusterSimResult) => `seed ${r.seed}: ${r.violations.slice(0, 3).join("; ")}\n    replay: SEED=${r.seed} node --import tsx test/run.ts --group sim cluster`

test(only === undefined ? `${seedCount} seeds: no acknowledged write lost, one master at a time, only complete copies promoted, convergence` : `seed ${only}`, async () => {
  const results = only !== undefined
    ? [await runClusterSim({ seed: only })]
    : (await Promise.all(Array.from({ length: workers }, (_, w) => runWorker(1 + w, Math.ceil((seedCount - w) / workers), workers)))).flat()
  const failing = results.filter((r) => r.violations.length > 0)
  const sum = (f: (r: ClusterSimResult) => number) => results.reduce((n, r) => n + f(r), 0)
  console.log(`\n    ${results.length} seeds: ${sum((r) => r.acknowledged)} writes acknowledged, ${sum((r) => r.refused)} refused, ${sum((r) => r.crashes)} crashes, ${sum((r) => r.partitions)} partitions, ${sum((r) => r.promotions)} promotions`)
  assert.is(results.length, only === undefined ? seedCount : 1, "every seed ran")
  assert.ok(sum((r) => r.promotions) > 0 || only !== undefined, "failovers happened")
  assert.is(failing.length, 0, failing.map(describe).join("\n"))
})

test("the same seed replays exactly", async () => {
  const seed = only ?? 11
  const [a, b] = [await runClusterSim({ seed }), await runClusterSim({ seed })]
  assert.is(b.trace, a.trace)
})

test.run()
