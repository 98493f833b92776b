/**
 * A copy this open created is empty only until its first write (BlockStore.ts `emptyUntilWritten`):
 * a replica host or a step-down decision that reads the flag later must not take a written copy
 * for one that holds only zeros.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { emptyUntilWritten, wrapStore } from "../../../lib/store/BlockStore.ts"
import { makeMemoryStore } from "../../../lib/store/memory.ts"

const test = suite("store: empty until written")

test("a created copy stops saying createdEmpty at its first write; one opened with history never says it", async () => {
  const created = emptyUntilWritten(wrapStore(makeMemoryStore(1 << 16), { createdEmpty: true }))
  assert.is(created.createdEmpty, true)
  await Effect.runPromise(created.read(0, 4096))
  assert.is(created.createdEmpty, true, "a read writes nothing")
  await Effect.runPromise(created.write(4096, new Uint8Array(4096).fill(7)))
  assert.is(created.createdEmpty, false)
  assert.equal(Array.from(await Effect.runPromise(created.read(4096, 4))), [7, 7, 7, 7], "the write went through")
  assert.is(wrapStore(created, {}).createdEmpty, false, "a wrapper made after the write copies the current value")
  const reopened = emptyUntilWritten(wrapStore(makeMemoryStore(1 << 16), { createdEmpty: false }))
  assert.is(reopened.createdEmpty, false)
})

test.run()
