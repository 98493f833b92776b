/**
 * Round trips: every message type, raw and compressed, through the encoder and the streaming
 * decoder, with chunks split anywhere (byte at a time, random splits, many frames per chunk).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { KiB, MiB } from "../../../lib/core/limits.ts"
import {
  decodeFrame,
  encodedBytes,
  encodeFrame,
  FrameDecoder,
  type Frame,
  isDataType,
  makeFrame,
  MessageType,
  messageTypeName,
  WireError,
} from "../../../lib/wire/index.ts"
import { bytesEqual, compressibleBytes, concat, decodeAll, mulberry32, randomBytes, randomInt } from "./support.ts"

const RoundTrip = suite("wire round trip")
const seed = 0x5eed0001
const random = mulberry32(seed)

const assertSameFrame = (actual: Frame | WireError | undefined, expected: Frame, what: string): void => {
  if (actual === undefined || actual instanceof WireError) {
    assert.unreachable(`${what}: expected a frame, got ${actual === undefined ? "undefined" : `${actual.reason}: ${actual.message}`}`)
    return
  }
  const { body: actualBody, ...actualHead } = actual
  const { body: expectedBody, ...expectedHead } = expected
  assert.equal(actualHead, expectedHead, `${what}: header fields`)
  assert.ok(bytesEqual(actualBody, expectedBody), `${what}: body bytes (${actualBody.length} vs ${expectedBody.length})`)
}

/** A representative frame of each type, with non-trivial header fields. */
const sampleFrame = (type: MessageType, payload: Uint8Array): Frame => {
  const common = { volumeId: 0xfedcba9876543210n, epoch: 0xfffffffe, sequence: Number.MAX_SAFE_INTEGER, offset: 64 * KiB }
  if (isDataType(type)) return makeFrame(type, { ...common, body: payload })
  if (type === MessageType.Read || type === MessageType.Verify) return makeFrame(type, { ...common, length: payload.length })
  if (type === MessageType.VerifyReply) return makeFrame(type, { ...common, offset: 0, body: new Uint8Array([0x83, 0x92, 0x06, 0xe3]) })
  if (type === MessageType.Error) return makeFrame(type, { ...common, offset: 0, aux: 5, body: new TextEncoder().encode("bad frame: ü") })
  if (type === MessageType.Resize || type === MessageType.ResizeAck) return makeFrame(type, { ...common, offset: 64 * 1024 ** 4 })
  return makeFrame(type, { ...common, offset: 0, body: new TextEncoder().encode(`{"type":${type}}`) })
}

const payloads: Array<[string, Uint8Array]> = [
  ["1 byte", new Uint8Array([42])],
  ["4 KiB compressible", compressibleBytes(4 * KiB)],
  ["4 KiB random", randomBytes(random, 4 * KiB)],
  ["1 MiB compressible", compressibleBytes(MiB)],
  ["1 MiB random", randomBytes(random, MiB)],
]

RoundTrip("every message type round-trips raw and compressed, for each payload size", () => {
  for (const type of Object.values(MessageType)) {
    for (const [label, payload] of payloads) {
      for (const compress of [false, true]) {
        const frame = sampleFrame(type, payload)
        const parts = encodeFrame(frame, { compress })
        assert.is(parts.length, 2, "encodeFrame returns [header, body]")
        assert.is(parts[0]!.length, 56, "the header is 56 bytes")
        assertSameFrame(decodeFrame(parts), frame, `${messageTypeName(type)} ${label} compress=${compress}`)
      }
    }
  }
})

RoundTrip("compressible data frames shrink and carry the compressed flag; random ones go raw", () => {
  const text = compressibleBytes(MiB)
  const [header, body] = encodeFrame(makeFrame(MessageType.Write, { body: text }), { compress: true })
  assert.ok(body!.length < text.length / 4, `1 MiB of text compresses to ${body!.length} bytes`)
  assert.is(header![6], 1, "flag bit 0 set")
  const noise = randomBytes(random, MiB)
  const [rawHeader, rawBody] = encodeFrame(makeFrame(MessageType.Write, { body: noise }), { compress: true })
  assert.is(rawHeader![6], 0, "incompressible data is sent with flag 0")
  assert.is(rawBody, noise, "a raw body is the caller's buffer, not a copy")
  const [, controlBody] = encodeFrame(makeFrame(MessageType.OpenAck, { body: compressibleBytes(4 * KiB) }), { compress: true })
  assert.is(controlBody!.length, 4 * KiB, "control frames are never compressed")
})

RoundTrip("encodedBytes counts header and body", () => {
  const parts = encodeFrame(makeFrame(MessageType.Write, { body: new Uint8Array(100) }))
  assert.is(encodedBytes(parts), 156)
})

const mixedStream = (): { frames: Frame[]; bytes: Uint8Array } => {
  const frames: Frame[] = []
  const parts: Uint8Array[] = []
  for (let index = 0; index < 60; index++) {
    const type = Object.values(MessageType)[index % Object.values(MessageType).length]!
    const size = [0, 1, 17, 4 * KiB, 9000][index % 5]!
    const payload = index % 2 === 0 ? compressibleBytes(Math.max(size, 1)) : randomBytes(random, Math.max(size, 1))
    const frame = { ...sampleFrame(type, payload), sequence: index }
    frames.push(frame)
    parts.push(...encodeFrame(frame, { compress: index % 3 !== 0 }))
  }
  return { frames, bytes: concat(parts) }
}

RoundTrip("a stream fed one byte at a time yields every frame in order", () => {
  const { frames, bytes } = mixedStream()
  const chunks = Array.from({ length: bytes.length }, (_, index) => bytes.subarray(index, index + 1))
  const result = decodeAll(chunks)
  assert.is(result.error, undefined)
  assert.is(result.frames.length, frames.length)
  result.frames.forEach((frame, index) => assertSameFrame(frame, frames[index]!, `frame ${index}`))
})

RoundTrip("a stream in one chunk (many frames per chunk) and in random splits yields every frame", () => {
  const { frames, bytes } = mixedStream()
  const whole = decodeAll([bytes])
  assert.is(whole.error, undefined)
  whole.frames.forEach((frame, index) => assertSameFrame(frame, frames[index]!, `whole: frame ${index}`))
  for (let trial = 0; trial < 20; trial++) {
    const chunks: Uint8Array[] = []
    for (let at = 0; at < bytes.length; ) {
      const step = 1 + randomInt(random, 12_000)
      chunks.push(bytes.subarray(at, at + step))
      at += step
    }
    const split = decodeAll(chunks)
    assert.is(split.error, undefined, `seed ${seed} trial ${trial}`)
    assert.is(split.frames.length, frames.length, `seed ${seed} trial ${trial}`)
    split.frames.forEach((frame, index) => assertSameFrame(frame, frames[index]!, `trial ${trial} frame ${index}`))
  }
})

RoundTrip("a raw body inside one chunk is returned as a view of that chunk, without a copy", () => {
  const bytes = concat(encodeFrame(makeFrame(MessageType.Write, { body: randomBytes(random, 4 * KiB) })))
  const decoder = new FrameDecoder()
  decoder.push(bytes)
  const frame = decoder.next()
  assert.ok(frame !== undefined && !(frame instanceof WireError))
  assert.is(frame.body.buffer, bytes.buffer, "same backing buffer")
  assert.is(frame.body.byteOffset, 56)
  assert.is(decoder.bufferedBytes, 0)
  assert.is(decoder.next(), undefined, "nothing more")
  assert.is(decoder.end(), undefined, "a clean end between frames")
})

RoundTrip.run()
