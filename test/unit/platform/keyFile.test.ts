/**
 * The unwrapping key file (lib/platform/nodeCrypto.ts): `cluster up` makes one (mode 0600) and
 * reuses it; `node start --encryption-key-file` refuses a missing or malformed file with the
 * reason instead of starting without the key.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ensureKeyRing, keyRingWithoutKey, readKeyRing } from "../../../lib/platform/nodeCrypto.ts"
import { EncryptionError } from "../../../lib/crypt/primitives.ts"

const test = suite("platform: encryption key file")
const dir = mkdtempSync(join(tmpdir(), "replivol-keyfile-"))
test.after(() => rmSync(dir, { recursive: true, force: true }))

test("ensureKeyRing makes a 64-hex-digit key file with mode 0600 once, then reads the same key", async () => {
  const path = join(dir, "data", "encryption.key")
  const first = await Effect.runPromise(ensureKeyRing(path))
  assert.is(statSync(path).mode & 0o777, 0o600)
  assert.match(readFileSync(path, "utf8"), /^[0-9a-f]{64}\n$/)
  const again = await Effect.runPromise(ensureKeyRing(path))
  assert.equal(again.unwrappingKey, first.unwrappingKey)
  const read = await Effect.runPromise(readKeyRing(path))
  assert.equal(read.unwrappingKey, first.unwrappingKey)
})

test("readKeyRing: a missing file is no-key, a malformed one malformed-key, each naming the file", async () => {
  const missing = await Effect.runPromise(Effect.flip(readKeyRing(join(dir, "nope.key"))))
  assert.is(missing.reason, "no-key")
  assert.match(missing.message, /nope\.key/)
  const bad = join(dir, "bad.key")
  writeFileSync(bad, "not a key\n")
  const malformed = await Effect.runPromise(Effect.flip(readKeyRing(bad)))
  assert.is(malformed.reason, "malformed-key")
  assert.match(malformed.message, /bad\.key.*64 hex digits/)
  const none = keyRingWithoutKey()
  assert.not.instance(none, EncryptionError)
  assert.is((none as { unwrappingKey: unknown }).unwrappingKey, undefined)
})

test.run()
