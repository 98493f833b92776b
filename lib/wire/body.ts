/**
 * Bodies of control frames: JSON objects (Open, OpenAck, handshake) and Error frames.
 *
 * Control bodies are small (≤ controlBodyBytesMax) UTF-8. Decoding checks the size before
 * parsing, rejects invalid UTF-8, and validates the parsed value with a type guard (for example
 * `Schema.is(schema)`), so a handler only ever sees a value of the shape it expects.
 */
import { assert } from "../core/assert.ts"
import { controlBodyBytesMax } from "../core/limits.ts"
import { wireError, type WireError } from "./error.ts"
import { makeFrame, type Frame } from "./frame.ts"
import { errorCodeName, isErrorCode, MessageType, type ErrorCode } from "./messages.ts"

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/** The UTF-8 JSON of `value`. Asserts it fits a control body: our own messages are small. */
export const encodeJsonBody = (value: unknown): Uint8Array => {
  const text = JSON.stringify(value)
  assert(text !== undefined, "a JSON body is a JSON value")
  const bytes = utf8Encoder.encode(text)
  assert(bytes.length <= controlBodyBytesMax, `JSON body of ${bytes.length} bytes fits in ${controlBodyBytesMax} bytes`)
  return bytes
}

/**
 * Parses a JSON body and checks its shape with `validate`. Fails with "too-large" above
 * `bodyBytesMax`, and "bad-field" for invalid UTF-8, invalid JSON or the wrong shape.
 */
export const decodeJsonBody = <A>(
  body: Uint8Array,
  validate: (value: unknown) => value is A,
  bodyBytesMax: number = controlBodyBytesMax,
): A | WireError => {
  if (body.length > bodyBytesMax) {
    return wireError("too-large", `JSON body of ${body.length} bytes exceeds ${bodyBytesMax} bytes`)
  }
  let value: unknown
  try {
    value = JSON.parse(utf8Decoder.decode(body))
  } catch (cause) {
    return wireError("bad-field", `body is not UTF-8 JSON: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
  if (!validate(value)) return wireError("bad-field", "JSON body does not have the expected shape")
  return value
}

/** `text` cut to at most `bytesMax` UTF-8 bytes, never inside a character. */
const utf8Prefix = (text: string, bytesMax: number): Uint8Array => {
  const bytes = utf8Encoder.encode(text)
  if (bytes.length <= bytesMax) return bytes
  let end = bytesMax
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

export interface ErrorFrameFields {
  readonly volumeId?: bigint
  readonly epoch?: number
  /** The sequence of the request this error answers, if any. */
  readonly sequence?: number
}

/** An Error frame: aux = code, body = `text` as UTF-8 (cut to controlBodyBytesMax). */
export const errorFrame = (code: ErrorCode, text: string, fields: ErrorFrameFields = {}): Frame => {
  assert(isErrorCode(code), `${errorCodeName(code)} is an ErrorCode`)
  return makeFrame(MessageType.Error, { ...fields, aux: code, body: utf8Prefix(text, controlBodyBytesMax) })
}

export interface ErrorFrameContent {
  readonly code: ErrorCode
  readonly text: string
}

/** Code and text of a decoded Error frame (the decoder has already checked the code). */
export const readErrorFrame = (frame: Frame): ErrorFrameContent => {
  assert(frame.type === MessageType.Error, `frame type ${frame.type} is Error`)
  assert(isErrorCode(frame.aux), `Error frame aux ${frame.aux} is an ErrorCode`)
  return { code: frame.aux, text: new TextDecoder("utf-8").decode(frame.body) }
}

