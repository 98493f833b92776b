/**
 * Test runner: uvu's suites, counted honestly.
 *
 * uvu alone never prints a failed count, exits 0 when a `before`/`after` hook throws, and has no
 * timeouts. This wrapper loads every `*.test.ts` file of the chosen groups with uvu in deferred
 * mode, wraps each suite so that tests which did not run count as failed, bounds every suite
 * with a timeout, and ends with the line `N passed, N failed, N skipped` (exit 1 if any failed).
 *
 * Usage: node --import tsx test/run.ts [--portable] [--group NAME]… [filter-substring]…
 *   --portable   only the groups that run on every runtime (unit, sim): used for Bun and Deno.
 *   --group X    only group X (a directory under test/): unit, sim, integration, etcd, cluster, fuse,
 *                cli, examples, package (npm pack, install, run the README app on every runtime).
 * Environment: SUITE_TIMEOUT_MS (default 1200000) bounds each suite.
 */
import { readdirSync, statSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"

const testRoot = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname)
const portableGroups = ["unit", "sim"]
const allGroups = ["unit", "sim", "integration", "etcd", "cluster", "fuse", "cli", "examples", "package"]

const args = process.argv.slice(2)
const groups: string[] = []
const filters: string[] = []
let portable = false
for (let index = 0; index < args.length; index++) {
  const arg = args[index]!
  if (arg === "--portable") portable = true
  else if (arg === "--group") groups.push(args[++index] ?? "")
  else filters.push(arg)
}
const chosenGroups = groups.length > 0 ? groups : portable ? portableGroups : allGroups
const suiteTimeoutMs = Number(process.env.SUITE_TIMEOUT_MS ?? 1_200_000)

const listTests = (dir: string): string[] => {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const out: string[] = []
  for (const name of names.sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...listTests(path))
    else if (name.endsWith(".test.ts")) out.push(path)
  }
  return out
}

const files = chosenGroups
  .flatMap((group) => listTests(join(testRoot, group)))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))

type SuiteResult = [errors: string | true, ran: number, skipped: number, total: number]
type Runner = () => Promise<SuiteResult>
const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: Array<Array<string | null | Runner>>; UVU_INDEX: number }
g.UVU_DEFER = 1
g.UVU_QUEUE = []

let passed = 0
let failed = 0
let skipped = 0
const timedOut: string[] = []
/** Seconds each test file's suites took (summed), printed slowest first: where the run's time goes. */
const secondsByFile = new Map<string, number>()

const wrap = (file: string, run: Runner): Runner => async () => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<SuiteResult>((resolveTimeout) => {
    timer = setTimeout(() => {
      timedOut.push(file)
      resolveTimeout([`suite in ${file} did not finish within ${suiteTimeoutMs} ms`, 0, 0, 1])
    }, suiteTimeoutMs)
  })
  const startedMs = performance.now()
  const result = await Promise.race([run(), timeout])
  clearTimeout(timer)
  const name = relative(testRoot, file)
  secondsByFile.set(name, (secondsByFile.get(name) ?? 0) + (performance.now() - startedMs) / 1000)
  const [errors, ran, skip, total] = result
  passed += ran
  skipped += skip
  // Tests that did not run (a throwing hook, a timeout) are failures, not silence.
  failed += Math.max(total - ran, errors === true ? 0 : 1)
  return result
}

const uvu = await import("uvu")
let loadFailures = 0
for (const [index, file] of files.entries()) {
  g.UVU_INDEX = index
  g.UVU_QUEUE.push([relative(testRoot, file)])
  try {
    await import(pathToFileURL(file).href)
  } catch (error) {
    loadFailures++
    console.error(`could not load ${file}:`, error)
  }
  const group = g.UVU_QUEUE[index]!
  for (let slot = 1; slot < group.length; slot++) group[slot] = wrap(file, group[slot] as Runner)
}

if (files.length === 0) {
  console.error(`no test files found for groups ${chosenGroups.join(", ")} ${filters.join(" ")}`)
  process.exit(1)
}

await uvu.exec(false)
failed += loadFailures
const slowest = [...secondsByFile].sort(([, a], [, b]) => b - a).slice(0, 12)
console.log(`\nslowest files: ${slowest.map(([name, seconds]) => `${name} ${seconds.toFixed(1)} s`).join(", ")}`)
const secondsByGroup = new Map<string, number>()
for (const [name, seconds] of secondsByFile) secondsByGroup.set(name.split("/")[0]!, (secondsByGroup.get(name.split("/")[0]!) ?? 0) + seconds)
console.log(`time by group: ${[...secondsByGroup].map(([group, seconds]) => `${group} ${seconds.toFixed(0)} s`).join(", ")}`)
if (timedOut.length > 0) console.error(`timed out: ${timedOut.join(", ")}`)
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
