/**
 * Prints the top self-time functions of a .cpuprofile (from BENCH_CPU_PROF): where a bench
 * child process spent its CPU, to find hot spots without a GUI.
 *
 * Usage: node --import tsx test/bench/support/profile-top.ts FILE.cpuprofile… [count]
 */
import { readFileSync } from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const args = process.argv.slice(2)
const countArg = args.find((arg) => /^\d+$/.test(arg))
const files = args.filter((arg) => arg !== countArg)
if (files.length === 0) throw new Error("usage: profile-top.ts FILE.cpuprofile… [count]")

const summarize = (file: string) => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<string, number>()
  let totalUs = 0
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id)!.callFrame
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|lib|test)\//, "$1/")}:${frame.lineNumber + 1}` : ""
    const key = `${frame.functionName || "(anonymous)"} ${where}`.trim()
    const delta = profile.timeDeltas[index] ?? 0
    totalUs += delta
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta)
  })
  const top = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(countArg ?? 15))
  console.log(`${file}: ${(totalUs / 1000).toFixed(0)} ms sampled`)
  for (const [key, us] of top) console.log(`${((us / totalUs) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`)
}
for (const file of files) summarize(file)
