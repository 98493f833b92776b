/**
 * Sender-side body encoding: small bodies go raw, incompressible streams pause lz4 and probe it
 * again, compressible data keeps being compressed, and one encoding is shared between links of
 * the same write but never reused across writes (after forget(), or by the same link).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { KiB, MiB } from "../../../lib/core/limits.ts"
import {
  compressBodyBytesMin,
  CompressionGovernor,
  decodeFrame,
  encodeBodyAdaptive,
  encodeFrame,
  encodeFrameWith,
  incompressibleProbeEvery,
  incompressibleStreakMax,
  makeFrame,
  MessageType,
  SharedBodyEncoder,
  WireError,
} from "../../../lib/wire/index.ts"
import { bytesEqual, compressibleBytes, halfCompressibleBytes, mulberry32, randomBytes } from "./support.ts"

const Encoder = suite("body encoder")
const random = mulberry32(0xb0d1e5)
const W = MessageType.Write

Encoder("bodies below compressBodyBytesMin go raw even when compressible; larger ones compress", () => {
  const small = compressibleBytes(compressBodyBytesMin - 1)
  const [smallHeader, smallBody] = encodeFrame(makeFrame(W, { body: small }), { compress: true })
  assert.is(smallHeader![6], 0, "flag bit 0 clear")
  assert.is(smallBody, small, "the caller's buffer goes out uncopied")
  const [header, body] = encodeFrame(makeFrame(W, { body: compressibleBytes(compressBodyBytesMin) }), { compress: true })
  assert.is(header![6], 1)
  assert.ok(body!.length < compressBodyBytesMin / 2)
})

Encoder("an incompressible stream pauses lz4, probes every Nth body, and resumes when data compresses", () => {
  const governor = new CompressionGovernor()
  const noise = randomBytes(random, 64 * KiB)
  let attempts = 0
  const attempt = () => {
    const before = governor.paused
    const encoded = encodeBodyAdaptive(W, noise, governor)
    assert.is(encoded.compressed, false, "random data is never sent compressed")
    return before
  }
  for (let i = 0; i < incompressibleStreakMax; i++) assert.is(attempt(), false)
  assert.ok(governor.paused, `paused after ${incompressibleStreakMax} bodies that did not shrink`)
  for (let i = 0; i < incompressibleProbeEvery * 3; i++) {
    if (governor.shouldTry()) attempts++
  }
  assert.is(attempts, 3, "one probe per incompressibleProbeEvery bodies while paused")
  // A probe that shrinks resumes compression for every body.
  for (let i = 0; i < incompressibleProbeEvery && governor.paused; i++) encodeBodyAdaptive(W, compressibleBytes(64 * KiB), governor)
  assert.is(governor.paused, false)
  assert.is(encodeBodyAdaptive(W, compressibleBytes(64 * KiB), governor).compressed, true)
})

Encoder("50%-compressible data keeps compressing to about half", () => {
  const governor = new CompressionGovernor()
  let wire = 0, plain = 0
  for (let i = 0; i < 40; i++) {
    const body = halfCompressibleBytes(random, 256 * KiB)
    const encoded = encodeBodyAdaptive(W, body, governor)
    wire += encoded.bytes.length
    plain += body.length
  }
  assert.ok(wire / plain > 0.45 && wire / plain < 0.55, `ratio ${wire / plain}`)
})

Encoder("links of one write share one encoding; each link's frame decodes to the data", () => {
  const shared = new SharedBodyEncoder()
  const [linkA, linkB] = [{}, {}]
  const body = compressibleBytes(MiB)
  const a = shared.encode(W, body, linkA, new CompressionGovernor())
  const b = shared.encode(W, body, linkB, new CompressionGovernor())
  assert.is(b, a, "the second link reuses the first link's encoding")
  for (const [sequence, encoded] of [[1, a], [7, b]] as const) {
    const frame = makeFrame(W, { sequence, offset: 4096, body })
    const decoded = decodeFrame(encodeFrameWith(frame, encoded))
    assert.ok(!(decoded instanceof WireError) && decoded.sequence === sequence && bytesEqual(decoded.body, body))
  }
  assert.is(shared.encode(W, body, {}, undefined) === a, false, "a link that does not compress never gets a compressed body")
})

Encoder("a reused buffer is encoded afresh: after forget(), and when the same link sends it again", () => {
  const shared = new SharedBodyEncoder()
  const [linkA, linkB] = [{}, {}]
  const buffer = compressibleBytes(64 * KiB)
  const first = shared.encode(W, buffer, linkA, new CompressionGovernor())
  buffer.fill(7)
  const again = shared.encode(W, buffer, linkA, new CompressionGovernor())
  assert.is.not(again, first, "the same link sending the same buffer is a new write")
  const decoded = decodeFrame(encodeFrameWith(makeFrame(W, { body: buffer }), again))
  assert.ok(!(decoded instanceof WireError) && bytesEqual(decoded.body, buffer))
  shared.forget()
  buffer.fill(9)
  const afterForget = shared.encode(W, buffer, linkB, new CompressionGovernor())
  assert.is.not(afterForget, again)
  const decodedB = decodeFrame(encodeFrameWith(makeFrame(W, { body: buffer }), afterForget))
  assert.ok(!(decodedB instanceof WireError) && bytesEqual(decodedB.body, buffer))
})

Encoder("encodeFrameWith refuses an encoding made for another body", () => {
  const shared = new SharedBodyEncoder()
  const encoded = shared.encode(W, compressibleBytes(16 * KiB), {}, undefined)
  assert.throws(() => encodeFrameWith(makeFrame(W, { body: compressibleBytes(16 * KiB) }), encoded))
})

Encoder.run()
