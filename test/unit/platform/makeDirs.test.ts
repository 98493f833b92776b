/** makeDirs: `mkdir -p` that ends with an error where Node's recursive mkdir loops for ever (/proc). */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeDirs } from "../../../lib/platform/makeDirs.ts"

const test = suite("makeDirs")
const root = mkdtempSync(join(tmpdir(), "replivol-mkdirs-"))
test.after(() => rmSync(root, { recursive: true, force: true }))

test("creates every missing level, and is a no-op when the directory exists", async () => {
  const deep = join(root, "a", "b", "c")
  await makeDirs(deep)
  assert.ok(statSync(deep).isDirectory())
  await makeDirs(deep)
})

test("a file in the way is an error naming it", async () => {
  writeFileSync(join(root, "file"), "x")
  const error = await makeDirs(join(root, "file", "sub")).then(() => undefined, (e: Error) => e)
  assert.ok(error, "refused")
  assert.match(String(error?.message), /file/)
})

test("a file system that refuses mkdir (/proc) fails at once with the reason instead of spinning", async () => {
  const started = performance.now()
  const error = await makeDirs("/proc/replivol-cannot-exist/data").then(() => undefined, (e: Error) => e)
  assert.ok(error, "refused")
  assert.match(String(error?.message), /cannot create directory \/proc\/replivol-cannot-exist/)
  assert.ok(performance.now() - started < 5_000)
})

test.run()
