/**
 * The cluster simulator with every operator's operation among its faults: volume updates (replica
 * count up and down, failure mode and tolerance, nocompress, hint.master), online resizes, moves,
 * cordons, drains and verifies under way, interleaved with crashes, power losses, partitions,
 * resets, pauses and store errors. The same checkers as every seed (no acknowledged write lost,
 * one master at a time, only complete copies promoted, no lost update, convergence to healthy
 * with the requested replica count, byte-identical copies, a clean verify), and each operation
 * must have been done (not only refused) somewhere. CLUSTER_OPS_SEEDS=n runs n seeds (default 8);
 * SEED=n replays one.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { runClusterSim } from "../../lib/testing/clusterSim.ts"
import { operationsMix } from "../../lib/testing/clusterFaults.ts"

const test = suite("cluster simulation: updates, resizes, moves, cordons, drains and verifies among the faults")
const seedCount = Number(process.env.CLUSTER_OPS_SEEDS ?? 8)
const seeds = process.env.SEED ? [Number(process.env.SEED)] : Array.from({ length: seedCount }, (_, i) => 101 + i)

test(`${seeds.length} seeds with every operation among the faults: every checker passes`, async () => {
  const totals: Record<string, number> = {}
  const failures: string[] = []
  for (const seed of seeds) {
    const result = await runClusterSim({ seed, faultWeights: operationsMix })
    for (const [kind, n] of Object.entries(result.faults)) totals[kind] = (totals[kind] ?? 0) + n
    if (result.violations.length > 0) failures.push(`seed ${seed}: ${result.violations.slice(0, 3).join("; ")}\n    replay: SEED=${seed} node --import tsx test/run.ts --group sim cluster-ops`)
  }
  console.log(`    ${Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k} ${n}`).join(", ")}`)
  assert.equal(failures, [], failures.join("\n"))
  if (seeds.length < seedCount) return
  for (const operation of ["update", "update-replicas-up", "update-replicas-down", "resize", "move", "cordon", "verify"]) {
    assert.ok((totals[operation] ?? 0) > 0, `some ${operation} was done`)
  }
  assert.ok((totals.drain ?? 0) + (totals["drain-cut-short"] ?? 0) > 0, "some drains ran")
})

test("the verify checker fails when an in-sync replica is changed behind the cluster's back", async () => {
  // Seed 8 keeps replicas in sync at the end; only the verify (run after every other check) sees the change.
  const result = await runClusterSim({ seed: 8, sabotage: "corrupt-before-verify" })
  assert.ok(result.violationKinds.includes("verify-difference"), `expected a verify-difference violation, got: ${result.violations.join("; ") || "none"}`)
  assert.not.ok(result.violationKinds.includes("diverged-copy"), "the change came after the copy checker")
})

test.run()
