/**
 * FrameDecoder body lifetimes: bodies it returns (raw or decompressed, in one chunk or gathered
 * across chunks) stay intact while later frames are decoded, even though compressed wire bodies
 * spanning chunks share a scratch buffer inside the decoder.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { KiB } from "../../../lib/core/limits.ts"
import { encodeFrame, FrameDecoder, type Frame, makeFrame, MessageType, WireError } from "../../../lib/wire/index.ts"
import { bytesEqual, compressibleBytes, concat, mulberry32, randomBytes } from "./support.ts"

const Lifetime = suite("decoder body lifetime")
const random = mulberry32(0xdec0de)

Lifetime("kept bodies are unchanged after later frames (compressed and raw, split in 1 KiB chunks)", () => {
  const bodies: Uint8Array[] = []
  const stream: Uint8Array[] = []
  for (let i = 0; i < 12; i++) {
    const body = i % 3 === 2 ? randomBytes(random, 40 * KiB) : compressibleBytes(32 * KiB + i * 1000).map((b) => b ^ i)
    bodies.push(body.slice())
    stream.push(concat(encodeFrame(makeFrame(MessageType.Write, { sequence: i + 1, body }), { compress: true })))
  }
  const bytes = concat(stream)
  const decoder = new FrameDecoder()
  const kept: Frame[] = []
  for (let at = 0; at < bytes.length; at += KiB) {
    decoder.push(bytes.slice(at, at + KiB))
    for (let next = decoder.next(); next !== undefined; next = decoder.next()) {
      if (next instanceof WireError) return assert.unreachable(next.message)
      kept.push(next)
    }
  }
  assert.is(kept.length, bodies.length)
  kept.forEach((frame, i) => assert.ok(bytesEqual(frame.body, bodies[i]!), `frame ${i + 1}'s body is intact`))
})

Lifetime.run()
