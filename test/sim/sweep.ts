/**
 * Sweeps many simulation seeds: `npm run sim:sweep -- [count] [first]` (default 2000 from 1).
 * Prints each failing seed with its replay command and a summary; exits 1 if any failed.
 */
import { runReplicationSim } from "../../lib/testing/replicationSim.ts"

const count = Number(process.argv[2] ?? 2000)
const first = Number(process.argv[3] ?? 1)
const modes = ["soft", "hard", "alwayson"] as const
let failed = 0
const started = performance.now()
for (let seed = first; seed < first + count; seed++) {
  const result = await runReplicationSim({ seed, failureMode: modes[seed % 3]! })
  if (result.violations.length > 0) {
    failed++
    console.log(`seed ${seed} FAILED: ${result.violations.join("; ")}\n  replay: SEED=${seed} node --import tsx test/run.ts --group sim replication`)
  }
  if ((seed - first + 1) % 100 === 0) console.log(`${seed - first + 1} seeds, ${failed} failed, ${((performance.now() - started) / 1000).toFixed(0)} s`)
}
console.log(`${count - failed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
