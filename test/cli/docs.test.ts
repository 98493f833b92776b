/**
 * Doc drift fails CI. Every `replivol …` command in README.md and docs/*.md — fenced shell blocks
 * and the synopses in command tables — must parse with the CLI's own parser (lib/cli/spec.ts) to a
 * known command with valid flags and values; the check is shown to fail on a made-up command, flag
 * and value. The command table and the metric catalogue must each be fully documented in
 * docs/cli.md. And the shell examples of docs/cli.md run, in order, against a live `cluster up`,
 * each exiting 0 (the server commands `cluster up` and `node start` excepted: the first is what
 * runs them, the second needs etcd and is covered by test/etcd).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { rm } from "node:fs/promises"
import { parseArgs, UsageError } from "../../lib/cli/args.ts"
import { localCommands, serverCommands, spec } from "../../lib/cli/spec.ts"
import { metricFamilies } from "../../lib/core/metricFamilies.ts"
import { repoRoot } from "../support/processes.ts"
import { docCommands, type DocCommand } from "../support/docCommands.ts"
import { eventually, runCli, startUp, type UpCluster } from "./support.ts"

const test = suite("docs: every documented replivol command is real")
const docFiles = ["README.md", ...readdirSync(join(repoRoot, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
const documented = docFiles.flatMap((file) => docCommands(file, readFileSync(join(repoRoot, file), "utf8")))
let up: UpCluster | undefined

test.after(async () => {
  if (up) assert.is(await up.stop(), 0)
})

/** One line per documented command the parser refuses. */
const problemsOf = (commands: ReadonlyArray<DocCommand>): string[] =>
  commands.flatMap((c) => {
    const parsed = parseArgs(spec, c.argv)
    return parsed instanceof UsageError ? [`${c.file}:${c.line}: replivol ${c.argv.join(" ")}: ${parsed.message}`] : []
  })

test("every replivol command in README.md and docs/*.md parses to a known command with valid flags", () => {
  assert.ok(documented.filter((c) => c.file === "README.md").length >= 15, "the README's commands were found")
  assert.ok(documented.filter((c) => c.file === "docs/cli.md").length >= 20, "docs/cli.md's commands were found")
  assert.equal(problemsOf(documented), [])
})

test("the check fails on a made-up command, a made-up flag, a bad value and a table synopsis of a command that does not exist", () => {
  const markdown = [
    "```sh",
    "replivol volume frobnicate default/db",
    "npx replivol volume ls --frobnicate   # a comment",
    "x=$(replivol rule create r -n ns --weight abc)",
    "npm install replivol",
    "```",
    "| `replivol volume shrink NS/NAME --size 2GiB` | made up |",
  ].join("\n")
  const found = docCommands("made-up.md", markdown)
  assert.equal(found.map((c) => c.argv[1]), ["frobnicate", "ls", "create", "shrink"], "the package name after npm install is not a command")
  const problems = problemsOf(found)
  assert.is(problems.length, 4, problems.join("\n"))
  assert.match(problems[0]!, /made-up\.md:2: .*unknown command "volume frobnicate/)
  assert.match(problems[1]!, /unknown flag --frobnicate/)
  assert.match(problems[2]!, /--weight "abc" is not valid/)
  assert.match(problems[3]!, /made-up\.md:7: .*unknown command "volume shrink/)
})

test("docs/cli.md documents every command of the table and every metric family", () => {
  const reference = readFileSync(join(repoRoot, "docs/cli.md"), "utf8")
  const synopses = new Set(documented.filter((c) => c.file === "docs/cli.md").map((c) => {
    const parsed = parseArgs(spec, c.argv)
    return !(parsed instanceof UsageError) && parsed.kind === "run" ? parsed.command.path.join(" ") : ""
  }))
  for (const command of spec.commands) {
    const path = command.path.join(" ")
    assert.ok(reference.includes(`replivol ${path}`), `docs/cli.md shows the synopsis of ${path}`)
    assert.ok(synopses.has(path), `docs/cli.md has a runnable example of ${path}`)
    for (const flag of command.flags) assert.ok(reference.includes(`--${flag.name}`), `docs/cli.md mentions ${path} --${flag.name}`)
  }
  for (const name of Object.keys(metricFamilies)) assert.ok(reference.includes(`\`${name}\``), `docs/cli.md lists ${name}`)
})

test("the shell examples of docs/cli.md run in order against a live cluster up, each exiting 0", async () => {
  up = await startUp({ hostBase: "127.0.32.", port: 32703, apiPort: 32705, extra: ["--no-mount", "--lease-ttl-ms", "1500"] })
  const cluster = up
  const runnable = documented.filter((c) => c.file === "docs/cli.md" && c.source === "shell").filter((c) => {
    const parsed = parseArgs(spec, c.argv)
    return !(parsed instanceof UsageError) && (parsed.kind !== "run" || !serverCommands.has(parsed.command.path.join(" ")))
  })
  assert.ok(runnable.length >= 15)
  // The `cert` examples write to the directory they name and never overwrite: start it empty.
  const certDirs = runnable.filter((c) => c.argv[0] === "cert").map((c) => c.argv[c.argv.indexOf("--dir") + 1]!)
  for (const dir of certDirs) await rm(dir, { recursive: true, force: true })
  for (const command of runnable) {
    const local = localCommands.has(command.argv.slice(0, 1).join(" ")) || localCommands.has(command.argv.slice(0, 2).join(" ")) // completion, cert: no cluster, no --api
    const result = local ? await runCli(command.argv) : await cluster.cli(...command.argv)
    assert.is(result.code, 0, `docs/cli.md:${command.line}: replivol ${command.argv.join(" ")} exited ${result.code}: ${result.stderr}`)
    if (command.argv[0] === "node" && command.argv[1] === "revive") {
      await eventually("every node up again", 30_000, async () => {
        const nodes = JSON.parse((await cluster.cli("node", "ls", "--json")).stdout) as Array<{ state: string }>
        return nodes.every((n) => n.state === "up") ? true : undefined
      })
    }
  }
  for (const dir of certDirs) await rm(dir, { recursive: true, force: true })
})

test.run()
