/** copyBytes really copies, also a Node Buffer (whose own `slice` is a view of the same memory). */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { concatBytes, copyBytes } from "../../../lib/core/bytes.ts"

const test = suite("bytes")

test("a copy of a Buffer keeps its bytes when the Buffer is reused; Buffer#slice would not", () => {
  const lent = Buffer.from([1, 2, 3, 4])
  const copy = copyBytes(lent.subarray(1, 3))
  const view = lent.slice(1, 3)
  lent.fill(9)
  assert.equal(Array.from(copy), [2, 3])
  assert.equal(Array.from(view), [9, 9], "Buffer#slice is a view: the trap copyBytes avoids")
})

test("concatBytes puts the parts one after another in new memory", () => {
  const a = new Uint8Array([1, 2])
  const joined = concatBytes([a, new Uint8Array(0), new Uint8Array([3])])
  a.fill(0)
  assert.equal(Array.from(joined), [1, 2, 3])
})

test.run()
