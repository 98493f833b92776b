/**
 * Received-body reuse: a raw body that spans chunks is gathered into a pool slab, a slab given
 * back holds the next such body (same memory, right bytes), and nothing else is ever reused —
 * a slab given back twice is handed out once, small bodies and views of chunks are not pooled.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { KiB, MiB } from "../../../lib/core/limits.ts"
import { BodyPool, encodeFrame, FrameDecoder, makeFrame, MessageType, type Frame } from "../../../lib/wire/index.ts"

const test = suite("wire/bodyPool")

const bodyOf = (bytes: number, seed: number) => Uint8Array.from({ length: bytes }, (_, i) => (i * 31 + seed) & 0xff)
/** Pushes the encoded frame in `chunkBytes` pieces and returns the decoded frame. */
const through = (decoder: FrameDecoder, body: Uint8Array, chunkBytes: number): Frame => {
  const wire = encodeFrame(makeFrame(MessageType.Write, { volumeId: 1n, epoch: 1, sequence: 1, offset: 0, body }))
  const joined = new Uint8Array(wire[0]!.length + wire[1]!.length)
  joined.set(wire[0]!, 0)
  joined.set(wire[1]!, wire[0]!.length)
  for (let at = 0; at < joined.length; at += chunkBytes) decoder.push(joined.slice(at, at + chunkBytes))
  const frame = decoder.next()
  if (frame === undefined || !("body" in frame)) throw new Error(`expected a frame, got ${String(frame)}`)
  return frame
}

test("a slab given back holds the next spanning body, with that body's bytes", () => {
  const pool = new BodyPool(MiB, 2)
  const decoder = new FrameDecoder({ pool })
  const first = through(decoder, bodyOf(256 * KiB, 1), 64 * KiB)
  assert.equal(first.body, bodyOf(256 * KiB, 1))
  assert.is(first.body.buffer.byteLength, MiB, "gathered into a 1 MiB slab")
  const slab = first.body.buffer
  pool.give(first.body)
  pool.give(first.body)
  assert.is(pool.freeCount, 1, "a slab given back twice is free once")
  const second = through(decoder, bodyOf(300 * KiB, 2), 64 * KiB)
  assert.is(second.body.buffer, slab, "the same memory")
  assert.equal(second.body, bodyOf(300 * KiB, 2))
  const third = through(decoder, bodyOf(300 * KiB, 3), 64 * KiB)
  assert.is.not(third.body.buffer, slab, "a slab handed out is not handed out again before it is given back")
  assert.equal(second.body, bodyOf(300 * KiB, 2), "the earlier body is untouched")
})

test("small bodies and bodies inside one chunk are not pooled", () => {
  const pool = new BodyPool(MiB, 2)
  const decoder = new FrameDecoder({ pool })
  const small = through(decoder, bodyOf(4 * KiB, 4), 1 * KiB)
  assert.is(small.body.buffer.byteLength, 4 * KiB, "a small spanning body gets its own array")
  const inOne = through(decoder, bodyOf(256 * KiB, 5), 2 * MiB)
  pool.give(small.body)
  pool.give(inOne.body)
  assert.is(pool.freeCount, 0, "neither is taken as a slab")
  assert.equal(inOne.body, bodyOf(256 * KiB, 5))
})

test.run()
