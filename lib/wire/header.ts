/**
 * The 56-byte frame header: its layout, and the rules every header must satisfy.
 *
 * Pure functions over bytes. `readHeader` validates in the order the decoder promises (magic,
 * header checksum, version, type, flags, lengths against their limits, field ranges) so that a
 * hostile header is refused before anything is allocated or waited for. The encoder uses the
 * same `checkLengths` / `checkRanges` rules as assertions on its own frames.
 * The byte table is in lib/wire/FORMAT.md.
 */
import { crc32c } from "../core/checksum.ts"
import { frameHeaderBytes, volumeSizeBytesMax } from "../core/limits.ts"
import { wireError, type WireError } from "./error.ts"
import {
  bodyBytesMaxOf,
  errorCodeName,
  isAddressedType,
  isEmptyBodyType,
  isDataType,
  isErrorCode,
  isMessageType,
  isRangeRequestType,
  lengthMaxOf,
  MessageType,
  messageTypeName,
  verifyReplyBodyBytes,
} from "./messages.ts"

/** "RPV1" as a little-endian u32. */
export const frameMagic = 0x31565052
export const frameVersion = 4
/** Flag bit 0: the body is an lz4 block (lz4-napi format: 4-byte LE size, then the block). */
export const flagCompressed = 1
/** Smallest compressed body: the 4-byte size header and one lz4 token. */
export const compressedBodyBytesMin = 5

/** Byte offsets of the header fields. */
export const at = {
  magic: 0,
  version: 4,
  type: 5,
  flags: 6,
  volumeId: 8,
  epoch: 16,
  aux: 20,
  sequence: 24,
  offset: 32,
  length: 40,
  bodyBytes: 44,
  bodyChecksum: 48,
  headerChecksum: 52,
} as const

export interface FrameHeader {
  readonly type: MessageType
  readonly compressed: boolean
  readonly volumeId: bigint
  readonly epoch: number
  readonly aux: number
  readonly sequence: number
  readonly offset: number
  readonly length: number
  readonly bodyBytes: number
  readonly bodyChecksum: number
}

const hex = (value: number): string => `0x${value.toString(16).padStart(8, "0")}`

const readU64Number = (view: DataView, offset: number): number =>
  view.getUint32(offset + 4, true) * 2 ** 32 + view.getUint32(offset, true)

const writeU64Number = (view: DataView, offset: number, value: number): void => {
  view.setUint32(offset, value % 2 ** 32, true)
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true)
}

/**
 * Headers are carved from shared slabs, each region handed out once and never written again
 * (like Node's Buffer pool): a fresh 56-byte array per frame, with its own ArrayBuffer and
 * DataView, cost more than writing the header.
 */
const headerSlabBytes = frameHeaderBytes * 1024
let headerSlab = new ArrayBuffer(headerSlabBytes)
let headerSlabView = new DataView(headerSlab)
let headerSlabUsed = 0

/** Serialises a header (already checked by the caller) into 56 bytes no one else holds. */
export const writeHeader = (header: FrameHeader): Uint8Array => {
  if (headerSlabUsed + frameHeaderBytes > headerSlabBytes) {
    headerSlab = new ArrayBuffer(headerSlabBytes)
    headerSlabView = new DataView(headerSlab)
    headerSlabUsed = 0
  }
  const base = headerSlabUsed
  headerSlabUsed += frameHeaderBytes
  const view = headerSlabView
  view.setUint32(base + at.magic, frameMagic, true)
  view.setUint8(base + at.version, frameVersion)
  view.setUint8(base + at.type, header.type)
  view.setUint16(base + at.flags, header.compressed ? flagCompressed : 0, true)
  view.setBigUint64(base + at.volumeId, header.volumeId, true)
  view.setUint32(base + at.epoch, header.epoch, true)
  view.setUint32(base + at.aux, header.aux, true)
  writeU64Number(view, base + at.sequence, header.sequence)
  writeU64Number(view, base + at.offset, header.offset)
  view.setUint32(base + at.length, header.length, true)
  view.setUint32(base + at.bodyBytes, header.bodyBytes, true)
  view.setUint32(base + at.bodyChecksum, header.bodyChecksum, true)
  view.setUint32(base + at.headerChecksum, crc32c(new Uint8Array(headerSlab, base, at.headerChecksum)), true)
  return new Uint8Array(headerSlab, base, frameHeaderBytes)
}

/** Flag rules: only bit 0 exists, and only data types may set it. */
export const checkFlags = (type: MessageType, flags: number): WireError | undefined => {
  if ((flags & ~flagCompressed) !== 0) {
    return wireError("bad-flags", `frame flags ${flags} set unknown bits; only bit 0 (lz4-compressed) is defined`)
  }
  if (flags === flagCompressed && !isDataType(type)) {
    return wireError("bad-flags", `a ${messageTypeName(type)} frame is compressed; only Write, SyncChunk and ReadReply may be`)
  }
  return undefined
}

/**
 * Length rules of one type: limits first ("too-large"), then consistency ("bad-length").
 * `bodyBytesMax` is the connection's own cap (it may be lower than the format's).
 */
export const checkLengths = (
  type: MessageType,
  compressed: boolean,
  length: number,
  bodyBytes: number,
  bodyBytesMax: number,
): WireError | undefined => {
  const name = messageTypeName(type)
  const lengthMax = lengthMaxOf(type)
  if (length > lengthMax) return wireError("too-large", `${name} frame length ${length} exceeds ${lengthMax} bytes`)
  const bodyMax = Math.min(bodyBytesMaxOf(type), bodyBytesMax)
  if (bodyBytes > bodyMax) return wireError("too-large", `${name} frame body of ${bodyBytes} bytes exceeds ${bodyMax} bytes`)
  if (isRangeRequestType(type)) {
    return bodyBytes === 0 ? undefined : wireError("bad-length", `${name} frame has a ${bodyBytes}-byte body; it must be empty`)
  }
  if (isEmptyBodyType(type) && bodyBytes !== 0) {
    return wireError("bad-length", `${name} frame has a ${bodyBytes}-byte body; it must be empty`)
  }
  if (type === MessageType.VerifyReply && bodyBytes !== verifyReplyBodyBytes) {
    return wireError("bad-length", `VerifyReply frame has a ${bodyBytes}-byte body; it must be ${verifyReplyBodyBytes} (a CRC-32C)`)
  }
  if (!compressed) {
    return bodyBytes === length
      ? undefined
      : wireError("bad-length", `${name} frame length ${length} differs from its uncompressed body of ${bodyBytes} bytes`)
  }
  if (bodyBytes < compressedBodyBytesMin || bodyBytes >= length) {
    return wireError(
      "bad-length",
      `compressed ${name} body of ${bodyBytes} bytes for length ${length}; it must be ${compressedBodyBytesMin}..${length - 1} bytes (smaller than the data)`,
    )
  }
  return undefined
}

/** Field ranges: sequence exact in a JS number, offsets inside the largest volume, aux by type. */
export const checkRanges = (
  type: MessageType,
  aux: number,
  sequence: number,
  offset: number,
  length: number,
): WireError | undefined => {
  if (sequence > Number.MAX_SAFE_INTEGER) {
    return wireError("bad-field", `sequence ${sequence} exceeds 2^53-1`)
  }
  const end = isAddressedType(type) ? offset + length : offset
  if (offset > volumeSizeBytesMax || end > volumeSizeBytesMax) {
    return wireError("bad-field", `offset ${offset} + length ${length} lies beyond ${volumeSizeBytesMax} bytes (volumeSizeBytesMax)`)
  }
  if (type === MessageType.Error) {
    return isErrorCode(aux) ? undefined : wireError("bad-field", `Error frame carries unknown ${errorCodeName(aux)}; codes are 1..8`)
  }
  return aux === 0 ? undefined : wireError("bad-field", `${messageTypeName(type)} frame has aux ${aux}; only Error frames use aux`)
}

/**
 * Parses and validates the 56 header bytes. Returns the header, or the first rule it breaks,
 * in the documented order. Allocates nothing beyond the result.
 */
export const readHeader = (bytes: Uint8Array, bodyBytesMax: number): FrameHeader | WireError => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, frameHeaderBytes)
  const magic = view.getUint32(at.magic, true)
  if (magic !== frameMagic) return wireError("bad-magic", `frame starts with ${hex(magic)}; expected "RPV1" (${hex(frameMagic)})`)
  const stored = view.getUint32(at.headerChecksum, true)
  const actual = crc32c(bytes.subarray(0, at.headerChecksum))
  if (stored !== actual) return wireError("header-checksum", `header checksum ${hex(stored)} does not match its bytes (${hex(actual)})`)
  const version = view.getUint8(at.version)
  if (version !== frameVersion) return wireError("bad-version", `frame version ${version}; only version ${frameVersion} is spoken`)
  const type = view.getUint8(at.type)
  if (!isMessageType(type)) return wireError("bad-type", `unknown frame type ${type}`)
  const flags = view.getUint16(at.flags, true)
  const flagError = checkFlags(type, flags)
  if (flagError !== undefined) return flagError
  const compressed = flags === flagCompressed
  const length = view.getUint32(at.length, true)
  const bodyBytes = view.getUint32(at.bodyBytes, true)
  const lengthError = checkLengths(type, compressed, length, bodyBytes, bodyBytesMax)
  if (lengthError !== undefined) return lengthError
  const aux = view.getUint32(at.aux, true)
  const sequence = readU64Number(view, at.sequence)
  const offset = readU64Number(view, at.offset)
  const rangeError = checkRanges(type, aux, sequence, offset, length)
  if (rangeError !== undefined) return rangeError
  return {
    type,
    compressed,
    volumeId: view.getBigUint64(at.volumeId, true),
    epoch: view.getUint32(at.epoch, true),
    aux,
    sequence,
    offset,
    length,
    bodyBytes,
    bodyChecksum: view.getUint32(at.bodyChecksum, true),
  }
}
