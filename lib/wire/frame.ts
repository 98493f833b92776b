/**
 * Frames in memory, and their encoding to bytes.
 *
 * A `Frame` is what the replication code sends and receives; `encodeFrame` turns one into
 * `[header, body]` for a vectored socket write (the body is the caller's buffer, uncopied, when
 * it goes raw). The sender is our own code, so a frame that breaks the format's rules is a bug
 * and throws InvariantViolation rather than returning an error.
 */
import { assert } from "../core/assert.ts"
import { totalBytes } from "../core/bytes.ts"
import { crc32c } from "../core/checksum.ts"
import { frameBodyBytesMax } from "../core/limits.ts"
import { checkLengths, checkRanges, compressedBodyBytesMin, writeHeader } from "./header.ts"
import { compressBlock } from "./lz4.ts"
import { isDataType, isMessageType, isRangeRequestType, MessageType, messageTypeName } from "./messages.ts"

export interface Frame {
  readonly type: MessageType
  /** u64; 0n for connection-level frames. */
  readonly volumeId: bigint
  /** u32: the volume's epoch as the sender knows it. */
  readonly epoch: number
  /** u32: the ErrorCode of an Error frame, else 0. */
  readonly aux: number
  /** ≤ 2^53−1. */
  readonly sequence: number
  /** Byte offset in the volume, ≤ volumeSizeBytesMax. */
  readonly offset: number
  /** Uncompressed payload length (for Read: the requested bytes). */
  readonly length: number
  /** The decoded payload, uncompressed. May alias a buffer the decoder was given. */
  readonly body: Uint8Array
}

export interface EncodeOptions {
  /** Compress data frames (Write, SyncChunk, ReadReply) when that makes them smaller. */
  readonly compress?: boolean
}

const emptyBody = new Uint8Array(0)
const u64Limit = 1n << 64n

/**
 * A frame with defaults filled in: volumeId 0n, epoch/aux/sequence/offset 0, body empty, and
 * length = body length (pass `length` explicitly for Read).
 */
export const makeFrame = (type: MessageType, fields: Partial<Omit<Frame, "type">> = {}): Frame => {
  const body = fields.body ?? emptyBody
  return {
    type,
    volumeId: fields.volumeId ?? 0n,
    epoch: fields.epoch ?? 0,
    aux: fields.aux ?? 0,
    sequence: fields.sequence ?? 0,
    offset: fields.offset ?? 0,
    length: fields.length ?? body.length,
    body,
  }
}

const isU32 = (value: number): boolean => Number.isInteger(value) && value >= 0 && value <= 0xffffffff
const isCount = (value: number): boolean => Number.isSafeInteger(value) && value >= 0

/**
 * The reason `frame` breaks the format's rules, or undefined. Messages are built only for a
 * frame that breaks one: this runs for every frame sent, where building them cost more than the
 * header itself.
 */
const malformation = (frame: Frame): string | undefined => {
  if (!isMessageType(frame.type)) return `frame type ${frame.type} is a MessageType`
  const name = () => messageTypeName(frame.type)
  if (!(frame.volumeId >= 0n && frame.volumeId < u64Limit)) return `${name()} volumeId ${frame.volumeId} fits in a u64`
  if (!isU32(frame.epoch)) return `${name()} epoch ${frame.epoch} is a u32`
  if (!isU32(frame.aux)) return `${name()} aux ${frame.aux} is a u32`
  if (!isCount(frame.sequence) || !isCount(frame.offset)) return `${name()} sequence/offset are non-negative safe integers`
  if (!isCount(frame.length)) return `${name()} length ${frame.length} is a non-negative integer`
  const bodyBytesExpected = isRangeRequestType(frame.type) ? 0 : frame.length
  if (frame.body.length !== bodyBytesExpected) return `${name()} body has ${frame.body.length} bytes; expected ${bodyBytesExpected}`
  return checkLengths(frame.type, false, frame.length, frame.body.length, frameBodyBytesMax)?.message ??
    checkRanges(frame.type, frame.aux, frame.sequence, frame.offset, frame.length)?.message
}

const assertWellFormed = (frame: Frame): void => {
  const broken = malformation(frame)
  assert(broken === undefined, broken ?? "")
}

/**
 * A frame body ready for the wire: the bytes to send (an lz4 block or the data itself), whether
 * they are compressed, and their CRC-32C. Encoding is the expensive part of a frame (lz4 and the
 * checksum), so one EncodedBody can be sent to several peers, each with its own header
 * (`encodeFrameWith`). It is valid only while `source` holds the bytes it was made from.
 */
export interface EncodedBody {
  /** The uncompressed body this encodes (identity is what `encodeFrameWith` checks). */
  readonly source: Uint8Array
  readonly compressed: boolean
  readonly bytes: Uint8Array
  readonly checksum: number
}

/** Data bodies shorter than this go raw: lz4-napi costs ~10–25 µs a call here, more than it saves on a link. */
export const compressBodyBytesMin = 8 * 1024

/** May a body of this type and length be compressed at all (data type, not too small)? */
export const compressible = (type: MessageType, length: number): boolean =>
  isDataType(type) && length >= compressBodyBytesMin && length > compressedBodyBytesMin

/**
 * Encodes the body of a frame of `type`: lz4-compressed when `compress` is set, the type allows
 * it, the body is at least compressBodyBytesMin bytes and the block comes out smaller; else raw.
 */
export const encodeBody = (type: MessageType, body: Uint8Array, compress: boolean): EncodedBody => {
  if (compress && compressible(type, body.length)) {
    const packed = compressBlock(body)
    if (packed.length < body.length) return { source: body, compressed: true, bytes: packed, checksum: crc32c(packed) }
  }
  return { source: body, compressed: false, bytes: body, checksum: crc32c(body) }
}

/** `[header, body]` of `frame` with its body already encoded (`body.source` must be `frame.body`). */
export const encodeFrameWith = (frame: Frame, body: EncodedBody): Uint8Array[] => {
  assertWellFormed(frame)
  assert(body.source === frame.body, "the encoded body belongs to this frame")
  return framePartsOf(frame, body)
}

const framePartsOf = (frame: Frame, body: EncodedBody): Uint8Array[] => {
  const header = writeHeader({
    type: frame.type,
    compressed: body.compressed,
    volumeId: frame.volumeId,
    epoch: frame.epoch,
    aux: frame.aux,
    sequence: frame.sequence,
    offset: frame.offset,
    length: frame.length,
    bodyBytes: body.bytes.length,
    bodyChecksum: body.checksum,
  })
  return [header, body.bytes]
}

/**
 * `[header, body]`: the bytes of one frame. Data frames are lz4-compressed when
 * `options.compress` is set, the body is at least compressBodyBytesMin bytes and the block comes
 * out smaller; otherwise the body goes raw.
 */
export const encodeFrame = (frame: Frame, options?: EncodeOptions): Uint8Array[] => {
  assertWellFormed(frame)
  return framePartsOf(frame, encodeBody(frame.type, frame.body, options?.compress === true))
}

/** Total bytes of an encoded frame (or of several frames' parts). */
export const encodedBytes = (parts: Uint8Array[]): number => totalBytes(parts)
