/** The quick-start example runs, unchanged, under Node and under Bun. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { repoRoot } from "../support/processes.ts"
import { runtime, testOn } from "../support/runtimes.ts"

const sh = promisify(execFile)
const test = suite("examples/quickstart.ts")
const bun = runtime("bun")
const deno = runtime("deno")

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

testOn(test, bun, "examples/quickstart.ts under Bun")("under Bun", async () => {
  if (!bun.found) return
  const { stdout } = await sh(bun.path, ["examples/quickstart.ts"], { cwd: repoRoot, timeout: 60_000, env: { ...process.env, REPLIVOL_PORT: "15704" } })
  expectOutput(stdout)
})

testOn(test, deno, "examples/quickstart.ts under Deno")("under Deno (npm package deno)", async () => {
  if (!deno.found) return
  const { stdout } = await sh(deno.path, ["run", "-A", "examples/quickstart.ts"], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, REPLIVOL_PORT: "15705", NO_COLOR: "1" } })
  expectOutput(stdout)
})

test.run()
