/**
 * `npm run bench`: runs every benchmark file test/bench/*.ts (except this one; support/ is not
 * scanned) one after another, each as its own child process (`node --import tsx FILE`), so one
 * benchmark's heap, sockets and CPU state never leak into the next. Their stdout and stderr pass
 * straight through (each prints its JSON result line on stdout). A benchmark that exits non-zero,
 * dies of a signal or outruns BENCH_TIMEOUT_MS is reported, the rest still run, and this script
 * exits 1 at the end. Benchmarks are not part of the pass/fail test run.
 *
 * Usage: node --import tsx test/bench/all.ts [name-substring…]   (only matching files)
 * Env: BENCH_TIMEOUT_MS per benchmark (default 30 min); the benchmarks' own variables pass through.
 */
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { basename, join } from "node:path"
import { fileURLToPath } from "node:url"

const benchDir = fileURLToPath(new URL(".", import.meta.url))
const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
const self = basename(fileURLToPath(import.meta.url))
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? 30 * 60_000)
const killGraceMs = 10_000
const filters = process.argv.slice(2)

const files = readdirSync(benchDir, { withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") && entry.name !== self)
  .map((entry) => entry.name)
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort()

interface Outcome {
  readonly file: string
  readonly ok: boolean
  readonly seconds: number
  readonly why: string
}

let current: ReturnType<typeof spawn> | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    current?.kill("SIGTERM") // the benchmark ends its own children (they also exit when its pipes close)
    process.exit(130)
  })
}

const runOne = (file: string): Promise<Outcome> =>
  new Promise((resolve) => {
    const started = performance.now()
    process.stderr.write(`\n=== bench ${file} ===\n`)
    const child = spawn(process.execPath, ["--import", "tsx", join(benchDir, file)], { cwd: repoRoot, stdio: "inherit" })
    current = child
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGTERM")
      setTimeout(() => child.kill("SIGKILL"), killGraceMs).unref()
    }, timeoutMs)
    const finish = (ok: boolean, why: string) => {
      clearTimeout(timer)
      current = undefined
      resolve({ file, ok, seconds: Math.round((performance.now() - started) / 100) / 10, why })
    }
    child.on("error", (error) => finish(false, `could not start: ${error.message}`))
    child.on("exit", (code, signal) => {
      if (timedOut) finish(false, `timed out after ${timeoutMs} ms`)
      else if (code === 0) finish(true, "ok")
      else finish(false, signal ? `killed by ${signal}` : `exit code ${code}`)
    })
  })

if (files.length === 0) {
  process.stderr.write(`no benchmark in ${benchDir} matches ${filters.join(", ") || "*.ts"}\n`)
  process.exit(1)
}
const outcomes: Outcome[] = []
for (const file of files) outcomes.push(await runOne(file))
process.stderr.write(`\n=== bench summary ===\n`)
for (const outcome of outcomes) process.stderr.write(`${outcome.ok ? "ok    " : "FAILED"} ${outcome.file} (${outcome.seconds} s)${outcome.ok ? "" : `: ${outcome.why}`}\n`)
const failed = outcomes.filter((outcome) => !outcome.ok).length
process.stderr.write(`${outcomes.length - failed} passed, ${failed} failed\n`)
process.exit(failed > 0 ? 1 : 0)
