/** examples/kv-store.ts: records survive a full cluster restart and the index is rebuilt by scanning — under Bun and Node. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { repoRoot } from "../support/processes.ts"
import { runtime, testOn } from "../support/runtimes.ts"

const sh = promisify(execFile)
const test = suite("examples/kv-store.ts")
const bun = runtime("bun")

const expectOutput = (stdout: string) => {
  assert.match(stdout, /wrote 200 records \(150 keys, 14450 log bytes\)/)
  assert.match(stdout, /recovered index by scanning: 150 keys, 14450 log bytes/)
  assert.match(stdout, /values intact: 150\/150/)
  assert.match(stdout, /put after restart: after restart/)
}

testOn(test, bun, "examples/kv-store.ts under Bun")("under Bun", async () => {
  if (!bun.found) return
  const { stdout } = await sh(bun.path, ["examples/kv-store.ts"], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, REPLIVOL_PORT: "15723", REPLIVOL_HOST_BASE: "127.0.9." } })
  expectOutput(stdout)
})

test("under Node", async () => {
  const { stdout } = await sh(process.execPath, ["--import", "tsx", "examples/kv-store.ts"], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, REPLIVOL_PORT: "15724", REPLIVOL_HOST_BASE: "127.0.9." } })
  expectOutput(stdout)
})

test.run()
