/**
 * Startup of `replivol --help` against the baseline `node -e 0`, measured in the same run,
 * interleaved (help, baseline, help, baseline, …) so that a neighbour's load hits both alike.
 * Target: ≤ 250 ms (issue 9). Prints one JSON line: the medians, the ratio and whether the target
 * was met.
 *
 * The entry is the package's own `bin` (package.json), whatever it points at: the in-repo
 * launcher (lib/cli/replivol.mjs, tsx at run time) or a compiled build under dist/. Override with
 * REPLIVOL_BIN=path/to/entry.{mjs,js}.
 *
 * Run: node --import tsx test/bench/cli-startup.ts   Env: RUNS (default 11), REPLIVOL_BIN.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
const runCount = Number(process.env.RUNS ?? 11)
const targetMs = 250

const binOf = (): string => {
  if (process.env.REPLIVOL_BIN) return process.env.REPLIVOL_BIN
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { bin?: string | Record<string, string> }
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin?.replivol
  if (!bin) throw new Error("package.json has no bin for replivol (set REPLIVOL_BIN)")
  return join(repoRoot, bin)
}

const timeMs = (args: ReadonlyArray<string>): number => {
  const started = performance.now()
  const result = spawnSync(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] })
  const elapsed = performance.now() - started
  if (result.status !== 0) throw new Error(`node ${args.join(" ")} exited ${result.status}: ${String(result.stderr).slice(0, 500)}`)
  return elapsed
}

const median = (values: ReadonlyArray<number>): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const round = (ms: number) => Math.round(ms * 10) / 10

const entry = binOf()
const help = [entry, "--help"]
const output = String(spawnSync(process.execPath, help, { cwd: repoRoot }).stdout)
if (!output.includes("Usage: replivol")) throw new Error(`${entry} --help did not print the usage:\n${output.slice(0, 500)}`)
timeMs(help) // warm the file cache (and tsx's transform cache) once
timeMs(["-e", "0"])
const helpMs: number[] = []
const nodeMs: number[] = []
for (let run = 0; run < runCount; run++) {
  helpMs.push(timeMs(help))
  nodeMs.push(timeMs(["-e", "0"]))
}
const helpMedianMs = median(helpMs)
const nodeMedianMs = median(nodeMs)
console.log(JSON.stringify({
  name: "cli-startup",
  what: "replivol --help, wall time of a fresh process",
  entry: entry.replace(repoRoot, ""),
  node: process.version,
  runs: runCount,
  helpMedianMs: round(helpMedianMs),
  helpMinMs: round(Math.min(...helpMs)),
  baseline: "node -e 0",
  baselineMedianMs: round(nodeMedianMs),
  ratio: round(helpMedianMs / nodeMedianMs),
  overBaselineMs: round(helpMedianMs - nodeMedianMs),
  targetMs,
  met: helpMedianMs <= targetMs,
}))
