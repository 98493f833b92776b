/** examples/failover-drill.ts: the writer sees a pause, not an error, when the master's node is killed; every block survives. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { repoRoot } from "../support/processes.ts"

const sh = promisify(execFile)
const test = suite("examples/failover-drill.ts")

test("under Node: no write fails, a new master at a higher epoch, 160/160 blocks intact, the pause printed", async () => {
  const { stdout } = await sh(process.execPath, ["--import", "tsx", "examples/failover-drill.ts"], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, REPLIVOL_PORT: "15713", REPLIVOL_HOST_BASE: "127.0.8." } })
  const before = /master (n\d), replica (n\d), epoch (\d+)/.exec(stdout)
  const after = /new master: (n\d) at epoch (\d+)/.exec(stdout)
  assert.ok(before && after, stdout)
  assert.is.not(after![1], before![1], "the master moved")
  assert.ok(Number(after![2]) > Number(before![3]), "the epoch rose")
  assert.match(stdout, /errors: 0/)
  assert.match(stdout, /read back: 160\/160 blocks intact/)
  const pause = Number(/longest pause: (\d+) ms/.exec(stdout)?.[1])
  assert.ok(pause > 0 && pause < 60_000, `pause ${pause} ms`)
  console.log(`\n    failover pause seen by the writer: ${pause} ms`)
})

test.run()
