/** The quick-start example runs, unchanged, under Node and under Bun. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { repoRoot } from "../support/processes.ts"

const sh = promisify(execFile)
const test = suite("examples/quickstart.ts")

const expectOutput = (stdout: string) => {
  assert.match(stdout, /wrote and read back 1048560 bytes: identical/)
  assert.match(stdout, /volume default\/demo: healthy/)
  assert.match(stdout, /replica on n2: in-sync/)
  assert.match(stdout, /writing past the end fails with OutOfRange/)
}

test("under Node", async () => {
  const { stdout } = await sh(process.execPath, ["--import", "tsx", "examples/quickstart.ts"], { cwd: repoRoot, timeout: 60_000, env: { ...process.env, REPLIVOL_PORT: "15703" } })
  expectOutput(stdout)
})

test("under Bun", async () => {
  const { stdout } = await sh(`${repoRoot}node_modules/.bin/bun`, ["examples/quickstart.ts"], { cwd: repoRoot, timeout: 60_000, env: { ...process.env, REPLIVOL_PORT: "15704" } })
  expectOutput(stdout)
})

test("under Deno (npm package deno)", async () => {
  const { stdout } = await sh(`${repoRoot}node_modules/.bin/deno`, ["run", "-A", "examples/quickstart.ts"], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, REPLIVOL_PORT: "15705", NO_COLOR: "1" } })
  expectOutput(stdout)
})

test.run()
