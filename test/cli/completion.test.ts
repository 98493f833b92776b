/**
 * `replivol completion bash|zsh`: bash sources the printed script, registers it for `replivol`,
 * and the function — driven through COMP_WORDS/COMP_CWORD as bash does on Tab — completes every
 * command of the table, flags after global flags, fixed choices and directories.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { commands } from "../../lib/cli/spec.ts"
import { runCli } from "./support.ts"

const test = suite("replivol completion")
let dir = ""
let bashScript = ""

const sh = (shell: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(shell, ["-c", script], { cwd: dir, timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
  })

const hasShell = async (shell: string) => (await sh("bash", `command -v ${shell}`)).code === 0

/** What bash offers for the words typed so far (the last one is the word being completed). */
const complete = async (...words: string[]): Promise<string[]> => {
  const array = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ")
  const result = await sh("bash", `source ${bashScript} && COMP_WORDS=(${array}) && COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )) && _replivol && printf '%s\\n' "\${COMPREPLY[@]}"`)
  assert.is(result.code, 0, result.stderr)
  return result.stdout.split("\n").filter((l) => l !== "").sort()
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "replivol-completion-"))
  const printed = await runCli(["completion", "bash"])
  assert.is(printed.code, 0, printed.stderr)
  bashScript = join(dir, "replivol.bash")
  await writeFile(bashScript, printed.stdout)
  await sh("bash", "mkdir -p data-dir mnt-dir")
})

test.after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test("bash sources the script and registers _replivol for replivol", async () => {
  const registered = await sh("bash", `source ${bashScript} && complete -p replivol`)
  assert.is(registered.code, 0, registered.stderr)
  assert.is(registered.stdout.trim(), "complete -F _replivol replivol")
})

test("command words: groups, their commands, a prefix, and after global flags", async () => {
  assert.equal(await complete("replivol", ""), ["cert", "cluster", "completion", "node", "rule", "volume"])
  assert.equal(await complete("replivol", "vo"), ["volume"])
  assert.equal(await complete("replivol", "volume", ""), ["accept-loss", "create", "inspect", "ls", "move", "resize", "rm", "update", "verify"])
  assert.equal(await complete("replivol", "--api", "10.0.0.1:5705", "-j", "volume", "in"), ["inspect"])
  assert.equal(await complete("replivol", "cluster", "h"), ["health"])
  assert.equal(await complete("replivol", "rule", "i"), ["inspect"])
})

test("every command of the table can be reached by completion, word by word", async () => {
  for (const command of commands) {
    for (let depth = 0; depth < command.path.length; depth++) {
      const offered = await complete("replivol", ...command.path.slice(0, depth), command.path[depth]!.slice(0, 1))
      assert.ok(offered.includes(command.path[depth]!), `${command.path.join(" ")}: "${command.path[depth]}" offered after "${command.path.slice(0, depth).join(" ")}" (got ${offered.join(" ")})`)
    }
  }
})

test("flags of the command being typed, choices, directories; nothing after a flag that takes free text", async () => {
  const create = await complete("replivol", "volume", "create", "a/b", "--")
  for (const flag of ["--size", "--label", "--api", "--json", "--help"]) assert.ok(create.includes(flag), `${flag} in ${create.join(" ")}`)
  assert.not.ok(create.includes("--watch"), "another command's flag is not offered")
  assert.equal(await complete("replivol", "volume", "inspect", "a/b", "--w"), ["--watch"])
  assert.equal(await complete("replivol", "volume", "verify", "a/b", "--r"), ["--repair"])
  assert.equal(await complete("replivol", "rule", "create", "r", "--action", ""), ["add", "remove"])
  assert.equal(await complete("replivol", "completion", ""), ["bash", "zsh"])
  assert.equal(await complete("replivol", "cluster", "up", "--data", "data-"), ["data-dir"])
  assert.equal(await complete("replivol", "volume", "create", "a/b", "--size", ""), [])
})

test("zsh: the script loads under zsh and registers the completion (skipped without zsh)", async () => {
  if (!(await hasShell("zsh"))) {
    console.log("  skipped: zsh is not installed")
    return
  }
  const printed = await runCli(["completion", "zsh"])
  assert.is(printed.code, 0, printed.stderr)
  const script = join(dir, "replivol.zsh")
  await writeFile(script, printed.stdout)
  const loaded = await sh("zsh", `autoload -U compinit && compinit -u && source ${script} && print -r -- $_comps[replivol]`)
  assert.is(loaded.code, 0, loaded.stderr)
  assert.ok(loaded.stdout.trim() !== "", "zsh has a completer for replivol")
  // zsh's bash emulation calls the function with 0-based arrays (ksharrays) and filters by prefix itself.
  const offered = await sh("zsh", `autoload -U compinit && compinit -u && source ${script} && setopt ksharrays && COMP_WORDS=(replivol volume "") && COMP_CWORD=2 && _replivol_complete && print -l -- "\${COMPREPLY[@]}"`)
  assert.is(offered.code, 0, offered.stderr)
  assert.equal(offered.stdout.split("\n").filter((l) => l !== "").sort(), ["accept-loss", "create", "inspect", "ls", "move", "resize", "rm", "update", "verify"])
})

test.run()
