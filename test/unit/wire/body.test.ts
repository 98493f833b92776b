/**
 * Control bodies: JSON bodies with a size limit and a shape check, and Error frames whose
 * code users match on (never the text).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Schema } from "effect"
import { InvariantViolation } from "../../../lib/core/assert.ts"
import { controlBodyBytesMax } from "../../../lib/core/limits.ts"
import {
  decodeFrame,
  decodeJsonBody,
  encodeFrame,
  encodeJsonBody,
  ErrorCode,
  errorFrame,
  makeFrame,
  MessageType,
  readErrorFrame,
  WireError,
} from "../../../lib/wire/index.ts"

const Body = suite("wire control bodies")

interface OpenRequest {
  readonly volume: string
  readonly sizeBytes: number
}
const isOpenRequest = (value: unknown): value is OpenRequest =>
  typeof value === "object" && value !== null &&
  typeof (value as Record<string, unknown>).volume === "string" &&
  typeof (value as Record<string, unknown>).sizeBytes === "number"

Body("a JSON body survives a frame round trip and is validated on the way in", () => {
  const request: OpenRequest = { volume: "default/pg-data", sizeBytes: 10 * 2 ** 30 }
  const frame = decodeFrame(encodeFrame(makeFrame(MessageType.Open, { volumeId: 7n, body: encodeJsonBody(request) })))
  assert.ok(!(frame instanceof WireError))
  assert.equal(decodeJsonBody(frame.body, isOpenRequest), request)
})

Body("an Effect Schema guard works as the validator", () => {
  const OpenAck = Schema.Struct({ ok: Schema.Boolean, epoch: Schema.Number })
  const body = encodeJsonBody({ ok: true, epoch: 3 })
  assert.equal(decodeJsonBody(body, Schema.is(OpenAck)), { ok: true, epoch: 3 })
  const wrong = decodeJsonBody(encodeJsonBody({ ok: "yes" }), Schema.is(OpenAck))
  assert.ok(wrong instanceof WireError && wrong.reason === "bad-field")
})

Body("bad JSON bodies are typed errors: too large, invalid UTF-8, invalid JSON, wrong shape", () => {
  const reason = (body: Uint8Array, bytesMax?: number): string => {
    const result = decodeJsonBody(body, isOpenRequest, bytesMax)
    return result instanceof WireError ? result.reason : "accepted"
  }
  assert.is(reason(new Uint8Array(controlBodyBytesMax + 1).fill(0x20)), "too-large")
  assert.is(reason(encodeJsonBody({ volume: "a", sizeBytes: 1 }), 10), "too-large")
  assert.is(reason(new Uint8Array([0x22, 0xff, 0xfe, 0x22])), "bad-field")
  assert.is(reason(new TextEncoder().encode("{\"volume\":")), "bad-field")
  assert.is(reason(encodeJsonBody({ volume: 1, sizeBytes: 1 })), "bad-field")
  assert.is(reason(new Uint8Array(0)), "bad-field")
})

Body("encodeJsonBody refuses (as a bug) a body beyond controlBodyBytesMax", () => {
  assert.throws(() => encodeJsonBody({ pad: "x".repeat(controlBodyBytesMax) }), (e: unknown) => e instanceof InvariantViolation)
})

Body("an Error frame carries its code in aux and its text as UTF-8", () => {
  const sent = errorFrame(ErrorCode.StaleEpoch, "epoch 3 < 4: stale master ✋", { volumeId: 9n, epoch: 4, sequence: 17 })
  const frame = decodeFrame(encodeFrame(sent))
  assert.ok(!(frame instanceof WireError))
  assert.is(frame.type, MessageType.Error)
  assert.is(frame.aux, ErrorCode.StaleEpoch)
  assert.equal([frame.volumeId, frame.epoch, frame.sequence], [9n, 4, 17])
  assert.equal(readErrorFrame(frame), { code: 1, text: "epoch 3 < 4: stale master ✋" })
  assert.equal(Object.values(ErrorCode), [1, 2, 3, 4, 5, 6, 7, 8])
})

Body("a very long error text is cut to controlBodyBytesMax at a character boundary", () => {
  const frame = errorFrame(ErrorCode.BadFrame, "é".repeat(controlBodyBytesMax))
  assert.ok(frame.body.length <= controlBodyBytesMax && frame.body.length % 2 === 0)
  const decoded = decodeFrame(encodeFrame(frame))
  assert.ok(!(decoded instanceof WireError))
  assert.is(readErrorFrame(decoded).text, "é".repeat(controlBodyBytesMax / 2))
})

Body.run()
