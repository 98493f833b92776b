/**
 * Rejections: every WireError reason is produced, typed, and produced before the decoder waits
 * for or allocates a body; the decoder stays poisoned; the encoder refuses frames that break
 * the rules (those are bugs in our own code: InvariantViolation).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { InvariantViolation } from "../../../lib/core/assert.ts"
import { controlBodyBytesMax, KiB, MiB, volumeSizeBytesMax, writeChunkBytesMax } from "../../../lib/core/limits.ts"
import {
  compressBlock,
  decodeFrame,
  decompressBlock,
  encodeFrame,
  FrameDecoder,
  makeFrame,
  MessageType,
  WireError,
  type WireErrorReason,
} from "../../../lib/wire/index.ts"
import { compressibleBytes, concat, rawHeader, type RawHeader } from "./support.ts"

const Reject = suite("wire rejections")

const reasonOf = (result: unknown): string =>
  result instanceof WireError ? result.reason : result === undefined ? "undefined (waiting for bytes)" : "a frame"

/** Feeds only the header (no body) and expects the decoder to refuse it at once. */
const expectHeaderRejected = (fields: RawHeader, reason: WireErrorReason, options?: { bodyBytesMax?: number }): void => {
  const decoder = new FrameDecoder(options)
  decoder.push(rawHeader(fields))
  const result = decoder.next()
  assert.is(reasonOf(result), reason, JSON.stringify(fields, (_, v) => (typeof v === "bigint" ? `${v}n` : v)))
  assert.ok(result instanceof WireError && result._tag === "WireError" && result.message.length > 0)
  assert.is(decoder.bufferedBytes, 0, "a rejected stream keeps no bytes")
}

const expectFrameRejected = (fields: RawHeader, body: Uint8Array, reason: WireErrorReason): WireError => {
  const result = decodeFrame([rawHeader(fields, body), body])
  assert.is(reasonOf(result), reason)
  return result as WireError
}

const W = MessageType.Write

Reject("each header rule has its own reason, decided from the header alone", () => {
  expectHeaderRejected({ magic: 0x31565051, type: W, length: 0, bodyBytes: 0 }, "bad-magic")
  expectHeaderRejected({ type: W, length: 0, bodyBytes: 0, headerChecksum: 1 }, "header-checksum")
  expectHeaderRejected({ version: 1, type: W, length: 0, bodyBytes: 0 }, "bad-version")
  expectHeaderRejected({ version: 2, type: W, length: 0, bodyBytes: 0 }, "bad-version")
  expectHeaderRejected({ type: 99, length: 0, bodyBytes: 0 }, "bad-type")
  expectHeaderRejected({ type: 0, length: 0, bodyBytes: 0 }, "bad-type")
  expectHeaderRejected({ type: W, flags: 2, length: 0, bodyBytes: 0 }, "bad-flags")
  expectHeaderRejected({ type: W, flags: 0x8001, length: 100, bodyBytes: 50 }, "bad-flags")
  expectHeaderRejected({ type: MessageType.Ping, flags: 1, length: 10, bodyBytes: 8 }, "bad-flags")
  expectHeaderRejected({ type: W, length: writeChunkBytesMax + 1, bodyBytes: writeChunkBytesMax + 1 }, "too-large")
  expectHeaderRejected({ type: MessageType.Open, length: controlBodyBytesMax + 1, bodyBytes: controlBodyBytesMax + 1 }, "too-large")
  expectHeaderRejected({ type: MessageType.Read, length: writeChunkBytesMax + 1, bodyBytes: 0 }, "too-large")
  expectHeaderRejected({ type: MessageType.Read, length: 4096, bodyBytes: 1 }, "too-large")
  // Verify (wire version 3): a range request like Read; its reply is exactly one CRC-32C.
  expectHeaderRejected({ type: MessageType.Verify, length: writeChunkBytesMax + 1, bodyBytes: 0 }, "too-large")
  expectHeaderRejected({ type: MessageType.Verify, length: 4096, bodyBytes: 4 }, "too-large")
  expectHeaderRejected({ type: MessageType.Verify, flags: 1, length: 4096, bodyBytes: 0 }, "bad-flags")
  expectHeaderRejected({ type: MessageType.Verify, length: 4096, bodyBytes: 0, offsetHigh: volumeSizeBytesMax / 2 ** 32 }, "bad-field")
  expectHeaderRejected({ type: MessageType.Verify, length: 4096, bodyBytes: 0, aux: 1 }, "bad-field")
  expectHeaderRejected({ type: MessageType.VerifyReply, length: 3, bodyBytes: 3 }, "bad-length")
  expectHeaderRejected({ type: MessageType.VerifyReply, length: 64, bodyBytes: 64 }, "bad-length")
  expectHeaderRejected({ type: MessageType.VerifyReply, length: 8, bodyBytes: 4 }, "bad-length")
  expectHeaderRejected({ type: MessageType.VerifyReply, flags: 1, length: 4, bodyBytes: 4 }, "bad-flags")
  // Resize / ResizeAck (online growth): the size is the offset; no body, never past volumeSizeBytesMax.
  expectHeaderRejected({ type: MessageType.Resize, length: 8, bodyBytes: 8 }, "bad-length")
  expectHeaderRejected({ type: MessageType.ResizeAck, length: 1, bodyBytes: 1 }, "bad-length")
  expectHeaderRejected({ type: MessageType.Resize, flags: 1, length: 0, bodyBytes: 0 }, "bad-flags")
  expectHeaderRejected({ type: MessageType.Resize, length: 0, bodyBytes: 0, offsetHigh: 0x4001 }, "bad-field")
  expectHeaderRejected({ type: W, length: 100, bodyBytes: 99 }, "bad-length")
  expectHeaderRejected({ type: MessageType.Hello, length: 10, bodyBytes: 0 }, "bad-length")
  expectHeaderRejected({ type: W, flags: 1, length: 100, bodyBytes: 100 }, "bad-length")
  expectHeaderRejected({ type: W, flags: 1, length: 100, bodyBytes: 4 }, "bad-length")
  expectHeaderRejected({ type: W, length: 0, bodyBytes: 0, sequenceHigh: 0x200000 }, "bad-field")
  expectHeaderRejected({ type: W, length: 0, bodyBytes: 0, offsetHigh: 0x4001 }, "bad-field")
  expectHeaderRejected({ type: W, length: 4096, bodyBytes: 4096, offsetHigh: volumeSizeBytesMax / 2 ** 32 }, "bad-field")
  expectHeaderRejected({ type: MessageType.Ping, length: 0, bodyBytes: 0, aux: 3 }, "bad-field")
  expectHeaderRejected({ type: MessageType.Error, length: 0, bodyBytes: 0, aux: 0 }, "bad-field")
  expectHeaderRejected({ type: MessageType.Error, length: 0, bodyBytes: 0, aux: 9 }, "bad-field")
})

Reject("checks run in the documented order: magic, checksum, version, type, flags, lengths, ranges", () => {
  expectHeaderRejected({ magic: 0, type: 99, length: 0, bodyBytes: 0, headerChecksum: 7 }, "bad-magic")
  expectHeaderRejected({ version: 9, type: 99, length: 0, bodyBytes: 0, headerChecksum: 7 }, "header-checksum")
  expectHeaderRejected({ version: 9, type: 99, flags: 4, length: 0, bodyBytes: 0 }, "bad-version")
  expectHeaderRejected({ type: 99, flags: 4, length: 0, bodyBytes: 0 }, "bad-type")
  expectHeaderRejected({ type: W, flags: 4, length: 2 ** 32 - 1, bodyBytes: 0 }, "bad-flags")
  expectHeaderRejected({ type: W, length: 2 ** 32 - 1, bodyBytes: 0, sequenceHigh: 2 ** 32 - 1 }, "too-large")
  expectHeaderRejected({ type: W, length: 5, bodyBytes: 0, sequenceHigh: 2 ** 32 - 1 }, "bad-length")
})

Reject("a header claiming a 4 GiB body is refused before any body byte arrives", () => {
  for (const type of [W, MessageType.SyncChunk, MessageType.ReadReply, MessageType.Open, MessageType.Error]) {
    expectHeaderRejected({ type, length: 2 ** 32 - 1, bodyBytes: 2 ** 32 - 1, aux: type === MessageType.Error ? 1 : 0 }, "too-large")
    expectHeaderRejected({ type, flags: type === W ? 1 : 0, length: 4096, bodyBytes: 2 ** 32 - 1, aux: type === MessageType.Error ? 1 : 0 }, "too-large")
  }
})

Reject("a connection's own bodyBytesMax is enforced (e.g. control-sized before authentication)", () => {
  expectHeaderRejected({ type: W, length: 100 * KiB, bodyBytes: 100 * KiB }, "too-large", { bodyBytesMax: controlBodyBytesMax })
  expectHeaderRejected({ type: MessageType.Hello, length: 200, bodyBytes: 200 }, "too-large", { bodyBytesMax: 128 })
})

Reject("a body that does not match its checksum is refused", () => {
  const body = compressibleBytes(1000)
  const error = expectFrameRejected({ type: W, length: 1000, bodyBytes: 1000, bodyChecksum: 12345 }, body, "body-checksum")
  assert.match(error.message, /checksum/)
})

Reject("the lz4 size-header bomb (ff ff ff ff 01) is refused fast, without decompressing", () => {
  const bomb = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x01])
  const started = performance.now()
  expectFrameRejected({ type: W, flags: 1, length: 4096, bodyBytes: 5 }, bomb, "bad-compression")
  expectFrameRejected({ type: W, flags: 1, length: writeChunkBytesMax, bodyBytes: 5 }, bomb, "bad-compression")
  assert.is(reasonOf(decompressBlock(bomb, 2 ** 32 - 1)), "too-large")
  assert.is(reasonOf(decompressBlock(bomb, 4096)), "bad-compression")
  const elapsedMs = performance.now() - started
  assert.ok(elapsedMs < 100, `rejected in ${elapsedMs.toFixed(1)} ms (a 4 GiB allocation takes seconds)`)
})

Reject("corrupt lz4 blocks are refused: wrong size header, short output, garbage", () => {
  const data = compressibleBytes(4000)
  const packed = compressBlock(data)
  const claimsMore = packed.slice()
  new DataView(claimsMore.buffer).setUint32(0, 8000, true)
  expectFrameRejected({ type: W, flags: 1, length: 8000, bodyBytes: claimsMore.length }, claimsMore, "bad-compression")
  expectFrameRejected({ type: W, flags: 1, length: 3000, bodyBytes: packed.length }, packed, "bad-compression")
  const garbage = new Uint8Array([0xa0, 0x0f, 0, 0, 0xff, 0xff, 0xff, 0x10, 0x20, 0x30])
  expectFrameRejected({ type: W, flags: 1, length: 4000, bodyBytes: garbage.length }, garbage, "bad-compression")
  const truncatedBlock = packed.subarray(0, packed.length - 3)
  expectFrameRejected({ type: W, flags: 1, length: 4000, bodyBytes: truncatedBlock.length }, truncatedBlock, "bad-compression")
})

Reject("a stream that ends inside a frame is 'truncated'; one that ends between frames is clean", () => {
  const bytes = concat(encodeFrame(makeFrame(W, { body: compressibleBytes(100) })))
  for (const cut of [1, 55, 56, 100]) {
    const decoder = new FrameDecoder()
    decoder.push(bytes.subarray(0, cut))
    assert.is(decoder.next(), undefined, `cut at ${cut}: waiting`)
    assert.is(reasonOf(decoder.end()), "truncated", `cut at ${cut}`)
  }
  assert.is(reasonOf(decodeFrame(bytes.subarray(0, 70))), "truncated")
  assert.is(reasonOf(decodeFrame(concat([bytes, bytes]))), "bad-length", "decodeFrame wants exactly one frame")
})

Reject("after the first error the decoder is poisoned: same error forever, new bytes dropped", () => {
  const decoder = new FrameDecoder()
  const good = concat(encodeFrame(makeFrame(MessageType.Ping)))
  decoder.push(rawHeader({ type: 77, length: 0, bodyBytes: 0 }))
  decoder.push(good)
  const first = decoder.next()
  assert.is(reasonOf(first), "bad-type")
  decoder.push(good)
  assert.is(decoder.next(), first, "the same error object")
  assert.is(decoder.end(), first)
  assert.is(decoder.bufferedBytes, 0)
})

Reject("the encoder refuses frames that break the rules (a bug in the sender)", () => {
  const bad = [
    makeFrame(W, { body: new Uint8Array(10), length: 11 }),
    makeFrame(W, { body: new Uint8Array(writeChunkBytesMax + 1) }),
    makeFrame(MessageType.Open, { body: new Uint8Array(controlBodyBytesMax + 1) }),
    makeFrame(MessageType.Read, { length: 10, body: new Uint8Array(10) }),
    makeFrame(MessageType.Verify, { length: 10, body: new Uint8Array(10) }),
    makeFrame(MessageType.Verify, { length: writeChunkBytesMax + 1 }),
    makeFrame(MessageType.VerifyReply, { body: new Uint8Array(5) }),
    makeFrame(MessageType.Ping, { aux: 1 }),
    makeFrame(MessageType.Error, { aux: 42 }),
    makeFrame(W, { sequence: 2 ** 53 }),
    makeFrame(W, { offset: volumeSizeBytesMax, body: new Uint8Array(1) }),
    makeFrame(W, { epoch: 2 ** 32 }),
    makeFrame(W, { volumeId: 1n << 64n }),
    makeFrame(99 as MessageType),
  ]
  for (const frame of bad) {
    assert.throws(() => encodeFrame(frame, { compress: true }), (error: unknown) => error instanceof InvariantViolation)
  }
  assert.not.throws(() => encodeFrame(makeFrame(W, { offset: volumeSizeBytesMax - MiB, body: new Uint8Array(MiB) })))
})

Reject.run()
