/**
 * The cluster simulator with planned operations among its faults: volume moves to random nodes,
 * cordons and drains, interleaved with crashes, power losses, partitions and resets. The same
 * checkers as every seed: no acknowledged write lost, one master at a time, only complete copies
 * promoted, convergence to healthy and byte-identical copies. Some moves and drains must have
 * been done (not all refused), so the operations were exercised.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { runClusterSim } from "../../lib/testing/clusterSim.ts"
import { noFaults, type FaultWeights } from "../../lib/testing/clusterFaults.ts"

const test = suite("cluster simulation: moves, cordons and drains among the faults")
const none = noFaults
// OPS_SIM_SEEDS: how many (10; the library runs on Node 22 and Bun take 3: test/all.ts).
const seeds = process.env.SEED ? [Number(process.env.SEED)] : Array.from({ length: Number(process.env.OPS_SIM_SEEDS ?? 10) }, (_, i) => i + 1)
const mix: Partial<FaultWeights> = { move: 3, cordon: 0.5, drain: 1, crash: 1, "power-loss": 0.5, isolate: 0.4, reset: 0.4, pause: 0.3, "store-fault": 0.3 }

test(`${seeds.length} seeds with moves, cordons and drains: every checker passes`, async () => {
  const totals: Record<string, number> = {}
  for (const seed of seeds) {
    const result = await runClusterSim({ seed, faultWeights: { ...none, ...mix } })
    for (const [kind, n] of Object.entries(result.faults)) totals[kind] = (totals[kind] ?? 0) + n
    assert.equal(result.violations, [], `seed ${seed}: replay with SEED=${seed} node --import tsx test/run.ts --group sim cluster-moves`)
  }
  console.log(`    ${Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k} ${n}`).join(", ")}`)
  assert.ok((totals.move ?? 0) > 0, "some moves were done")
  assert.ok((totals.drain ?? 0) + (totals["drain-cut-short"] ?? 0) > 0, "some drains ran")
})

test.run()
