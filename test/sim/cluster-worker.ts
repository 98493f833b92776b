/** Runs cluster-simulation seeds [first, first+count) and prints one JSON line per seed, with its wall time (used by cluster.test.ts and the sweep). */
import { runClusterSim } from "../../lib/testing/clusterSim.ts"

const first = Number(process.argv[2] ?? 1)
const count = Number(process.argv[3] ?? 1)
const stride = Number(process.argv[4] ?? 1)
for (let i = 0; i < count; i++) {
  const seed = first + i * stride
  const started = performance.now()
  const result = await runClusterSim({ seed })
  process.stdout.write(`${JSON.stringify({ ...result, wallMs: Math.round(performance.now() - started) })}\n`)
}
process.exit(0)
