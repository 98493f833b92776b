/**
 * Seeded fuzz of the streaming decoder: 10 000 cases of valid, mutated and random frames
 * (bit flips, truncations, random length fields up to 2^32−1 with re-signed headers, spliced
 * headers and bodies, random bytes), fed in random chunks. The decoder must never throw, never
 * return a frame whose header or body checksum does not hold for the bytes it came from, and
 * never hold more than one frame's worth of bytes. Seed: WIRE_FUZZ_SEED (printed on failure).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { crc32c } from "../../../lib/core/checksum.ts"
import { frameBodyBytesMax, KiB } from "../../../lib/core/limits.ts"
import { encodeFrame, FrameDecoder, type Frame, makeFrame, MessageType, WireError } from "../../../lib/wire/index.ts"
import { bytesEqual, compressibleBytes, concat, mulberry32, randomBytes, randomInt } from "./support.ts"

const Fuzz = suite("wire fuzz")
const seed = Number(process.env.WIRE_FUZZ_SEED ?? 0x00c0ffee)
const caseCount = 10_000
const headerBytes = 56

const types = Object.values(MessageType)

const randomFrame = (random: () => number): Frame => {
  const type = types[randomInt(random, types.length)]!
  const size = [0, 1, 7, 100, 1000, 4 * KiB, 9000][randomInt(random, 7)]!
  const payload = random() < 0.5 ? compressibleBytes(size) : randomBytes(random, size)
  const fields = { volumeId: BigInt(randomInt(random, 1000)), epoch: randomInt(random, 2 ** 32), sequence: randomInt(random, 2 ** 40) }
  if (type === MessageType.Read || type === MessageType.Verify) return makeFrame(type, { ...fields, offset: randomInt(random, 2 ** 30), length: size })
  if (type === MessageType.VerifyReply) return makeFrame(type, { ...fields, body: payload.length >= 4 ? payload.subarray(0, 4) : new Uint8Array(4) })
  if (type === MessageType.Error) return makeFrame(type, { ...fields, aux: 1 + randomInt(random, 8), body: payload })
  if (type === MessageType.Resize || type === MessageType.ResizeAck) return makeFrame(type, { ...fields, offset: randomInt(random, 2 ** 40) })
  const offset = type === MessageType.Write || type === MessageType.SyncChunk || type === MessageType.ReadReply ? randomInt(random, 2 ** 30) : 0
  return makeFrame(type, { ...fields, offset, body: payload })
}

const resign = (bytes: Uint8Array, at: number): void => {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at + 52, crc32c(bytes.subarray(at, at + 52)), true)
}

type Mutation = "none" | "bit-flips" | "truncate" | "random-length" | "splice" | "random-bytes" | "random-header"

/** A stream of 1..3 frames with one mutation; returns the bytes and how many leading frames are intact. */
const makeCase = (random: () => number, mutation: Mutation): { bytes: Uint8Array; intactFrames: number } => {
  const frames = Array.from({ length: 1 + randomInt(random, 3) }, () => randomFrame(random))
  const encoded = frames.map((frame) => concat(encodeFrame(frame, { compress: random() < 0.6 })))
  const victim = randomInt(random, encoded.length)
  const target = encoded[victim]!.slice()
  const view = new DataView(target.buffer)
  switch (mutation) {
    case "none":
      return { bytes: concat(encoded), intactFrames: encoded.length }
    case "bit-flips":
      for (let flips = 1 + randomInt(random, 4); flips > 0; flips--) {
        const bit = randomInt(random, target.length * 8)
        target[bit >>> 3]! ^= 1 << (bit & 7)
      }
      break
    case "truncate":
      return { bytes: concat([...encoded.slice(0, victim), target.subarray(0, randomInt(random, target.length))]), intactFrames: victim }
    case "random-length":
      {
        const field = random() < 0.5 ? 40 : 44
        const roll = random()
        const near = view.getUint32(field, true) + randomInt(random, 2000) - 1000
        view.setUint32(field, roll < 0.2 ? 2 ** 32 - 1 : roll < 0.6 ? randomInt(random, 2 ** 32) : Math.max(0, near), true)
      }
      if (random() < 0.8) resign(target, 0)
      break
    case "splice": {
      const donor = encoded[randomInt(random, encoded.length)]!
      const body = randomFrame(random)
      const spliced = concat([donor.subarray(0, headerBytes), concat(encodeFrame(body)).subarray(headerBytes)])
      encoded[victim] = spliced
      return { bytes: concat(encoded), intactFrames: victim }
    }
    case "random-bytes":
      encoded[victim] = randomBytes(random, randomInt(random, 200))
      return { bytes: concat(encoded), intactFrames: victim }
    case "random-header":
      target.set(randomBytes(random, 48).subarray(4), 4)
      resign(target, 0)
      break
  }
  encoded[victim] = target
  return { bytes: concat(encoded), intactFrames: victim }
}

/** The decoded frame must be exactly what the bytes at `at` say, with both checksums holding. */
const checkAgainstBytes = (frame: Frame, bytes: Uint8Array, at: number, context: string): number => {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at)
  const bodyBytes = view.getUint32(44, true)
  const wireBody = bytes.subarray(at + headerBytes, at + headerBytes + bodyBytes)
  assert.is(crc32c(bytes.subarray(at, at + 52)), view.getUint32(52, true), `${context}: header checksum holds`)
  assert.is(wireBody.length, bodyBytes, `${context}: body present`)
  assert.is(crc32c(wireBody), view.getUint32(48, true), `${context}: body checksum holds`)
  assert.is(frame.type as number, view.getUint8(5), `${context}: type`)
  assert.is(frame.length, view.getUint32(40, true), `${context}: length`)
  if (frame.type !== MessageType.Read && frame.type !== MessageType.Verify) assert.is(frame.body.length, frame.length, `${context}: body is length bytes`)
  if (view.getUint16(6, true) === 0) assert.ok(bytesEqual(frame.body, wireBody), `${context}: raw body`)
  return at + headerBytes + bodyBytes
}

const mutations: Mutation[] = ["none", "bit-flips", "truncate", "random-length", "splice", "random-bytes", "random-header"]

Fuzz(`${caseCount} mutated streams: no throw, no frame with a bad checksum, bounded buffering (seed ${seed})`, () => {
  const random = mulberry32(seed)
  const reasons = new Map<string, number>()
  let framesSeen = 0
  for (let index = 0; index < caseCount; index++) {
    const mutation = mutations[index % mutations.length]!
    const { bytes, intactFrames } = makeCase(random, mutation)
    const context = `seed ${seed} case ${index} (${mutation})`
    const bodyBytesMax = random() < 0.2 ? 1000 : frameBodyBytesMax
    const decoder = new FrameDecoder({ bodyBytesMax })
    const decoded: Frame[] = []
    let error: WireError | undefined
    let position = 0
    let cursor = 0
    try {
      while (cursor < bytes.length && error === undefined) {
        const step = random() < 0.1 ? 1 : 1 + randomInt(random, 3000)
        decoder.push(bytes.subarray(cursor, cursor + step))
        cursor += step
        for (;;) {
          const result = decoder.next()
          if (result === undefined) {
            assert.ok(decoder.bufferedBytes < headerBytes + bodyBytesMax, `${context}: buffered ${decoder.bufferedBytes}`)
            break
          }
          if (result instanceof WireError) {
            error = result
            assert.is(decoder.bufferedBytes, 0, `${context}: a poisoned decoder keeps nothing`)
            break
          }
          position = checkAgainstBytes(result, bytes, position, `${context} frame ${decoded.length}`)
          decoded.push(result)
        }
      }
      error ??= decoder.end()
    } catch (thrown) {
      if (thrown instanceof assert.Assertion) throw thrown
      assert.unreachable(`${context}: the decoder threw ${String(thrown)}`)
    }
    framesSeen += decoded.length
    if (error !== undefined) reasons.set(error.reason, (reasons.get(error.reason) ?? 0) + 1)
    // With a lowered bodyBytesMax an intact frame may be refused as too-large; nothing else.
    const cappedOut = bodyBytesMax < frameBodyBytesMax && error?.reason === "too-large"
    if (mutation === "none" && !cappedOut) assert.is(error, undefined, `${context}: intact stream decodes (${error?.message})`)
    if (!cappedOut) assert.ok(decoded.length >= intactFrames, `${context}: the ${intactFrames} intact leading frames decode`)
  }
  const seen = [...reasons.keys()].sort()
  for (const reason of ["bad-magic", "header-checksum", "body-checksum", "too-large", "bad-length", "truncated", "bad-type"]) {
    assert.ok(reasons.has(reason), `seed ${seed}: the fuzz produced ${reason} (saw ${seen.join(", ")})`)
  }
  assert.ok(framesSeen > caseCount / 2, `seed ${seed}: ${framesSeen} frames decoded`)
})

Fuzz.run()
