/**
 * CRC-32C: known answers, continuation, and agreement between the native implementation
 * (@node-rs/crc32, when it loads here) and the portable one on seeded random inputs of every
 * size class, including sizes around the native/portable cut-over and unaligned views.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { crc32c, crc32cImplementation, crc32cPortable, nativeCrc32cBytesMin } from "../../../lib/core/checksum.ts"
import { nativeCrc32c } from "../../../lib/platform/nativeCrc32c.ts"
import { mulberry32, randomBytes, randomInt } from "../wire/support.ts"

const Checksum = suite("crc32c")
const ascii = (text: string) => new TextEncoder().encode(text)

Checksum("known answers (RFC 3720 check value, iSCSI test vectors, empty input)", () => {
  for (const crc of [crc32c, crc32cPortable]) {
    assert.is(crc(ascii("123456789")), 0xe3069283)
    assert.is(crc(new Uint8Array(0)), 0)
    assert.is(crc(new Uint8Array(32)), 0x8a9136aa)
    assert.is(crc(new Uint8Array(32).fill(0xff)), 0x62a8ab43)
    assert.is(crc(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e)
  }
})

Checksum("the native implementation loads on this platform (Node/Bun on linux-x64)", () => {
  assert.is(crc32cImplementation, "native", "@node-rs/crc32's prebuilt binary should load here")
  assert.ok(nativeCrc32c !== undefined)
})

Checksum("native and portable agree on random inputs, offsets and continuations", () => {
  const random = mulberry32(0xc3c32c01)
  const sizes = [1, 7, 8, 52, nativeCrc32cBytesMin - 1, nativeCrc32cBytesMin, nativeCrc32cBytesMin + 1, 4096, 65_537, 1 << 20]
  for (let round = 0; round < 60; round++) sizes.push(randomInt(random, 200_000))
  for (const size of sizes) {
    const backing = randomBytes(random, size + 16)
    const start = randomInt(random, 16)
    const bytes = backing.subarray(start, start + size)
    const previous = randomInt(random, 2 ** 32)
    const expected = crc32cPortable(bytes, previous)
    assert.is(crc32c(bytes, previous), expected, `crc32c of ${size} bytes from ${previous}`)
    if (nativeCrc32c) assert.is(nativeCrc32c(bytes, previous), expected, `native crc32c of ${size} bytes`)
    const cut = randomInt(random, size + 1)
    assert.is(crc32c(bytes.subarray(cut), crc32c(bytes.subarray(0, cut), previous)), expected, `split at ${cut} of ${size}`)
  }
})

Checksum.run()
