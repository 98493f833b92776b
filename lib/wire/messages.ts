/**
 * The message table of the replication protocol: frame types and error codes.
 *
 * Numbers are part of the wire format (lib/wire/FORMAT.md) and never change meaning. The
 * per-type rules (which types carry data, which may be compressed, how long their bodies may
 * be) live here too, so the encoder and the decoder read them from one place.
 */
import { controlBodyBytesMax, frameBodyBytesMax, writeChunkBytesMax } from "../core/limits.ts"

export const MessageType = {
  /** Handshake: dialer says who it is. */
  Hello: 1,
  /** Handshake: listener sends a nonce. */
  Challenge: 2,
  /** Handshake: dialer proves it knows the cluster secret. */
  Prove: 3,
  /** Handshake: listener accepts; the connection is authenticated. */
  Welcome: 4,
  /** Open a volume on a replica (body: JSON). */
  Open: 10,
  OpenAck: 11,
  /** A replicated write: offset, length, body = data. */
  Write: 20,
  WriteAck: 21,
  Flush: 22,
  FlushAck: 23,
  /** Read request: offset, length = requested bytes, empty body. */
  Read: 24,
  /** Read reply: body = data. */
  ReadReply: 25,
  /** A resync chunk: like Write. */
  SyncChunk: 26,
  SyncAck: 27,
  /** The master tells a synced replica it holds every byte of the session (body: JSON); the replica fdatasyncs and records it. */
  Complete: 28,
  CompleteAck: 29,
  /** aux = ErrorCode, body = UTF-8 text. */
  Error: 30,
  /** Verify request: offset, length = bytes to checksum, empty body; answered in stream order, after every earlier frame is applied. */
  Verify: 31,
  /** Verify reply: body = the CRC-32C of the copy's bytes at offset, length (4 bytes, little-endian). */
  VerifyReply: 32,
  /** Online growth: offset = the copy's new size in bytes, empty body; applied in stream order (after every earlier frame, before every later one). */
  Resize: 33,
  /** The copy is the new size, durably (sequence = the Resize's); empty body. */
  ResizeAck: 34,
  Ping: 40,
  Pong: 41,
  Close: 42,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

const typeNames = new Map<number, string>(Object.entries(MessageType).map(([name, value]) => [value, name]))

export const isMessageType = (value: number): value is MessageType => typeNames.has(value)

/** "Write", or "type 99" for a number that is not a MessageType. */
export const messageTypeName = (value: number): string => typeNames.get(value) ?? `type ${value}`

/** Types whose body is volume data: they may be compressed and carry up to writeChunkBytesMax. */
export const isDataType = (type: MessageType): boolean =>
  type === MessageType.Write || type === MessageType.SyncChunk || type === MessageType.ReadReply

/** Requests that name a range by offset and length and carry no body (Read, Verify). */
export const isRangeRequestType = (type: MessageType): boolean => type === MessageType.Read || type === MessageType.Verify

/** Types whose offset addresses the volume, so offset + length must stay inside volumeSizeBytesMax. */
export const isAddressedType = (type: MessageType): boolean => isDataType(type) || isRangeRequestType(type)

/** Control types that carry no body at all (their meaning is in the header). */
export const isEmptyBodyType = (type: MessageType): boolean => type === MessageType.Resize || type === MessageType.ResizeAck

/** Exact body of a VerifyReply: one CRC-32C. */
export const verifyReplyBodyBytes = 4

/** Largest wire body a frame of this type may carry (before any per-connection limit). */
export const bodyBytesMaxOf = (type: MessageType): number =>
  isDataType(type) ? frameBodyBytesMax : isRangeRequestType(type) ? 0 : controlBodyBytesMax

/** Largest `length` (uncompressed payload, or requested bytes for Read and Verify) of this type. */
export const lengthMaxOf = (type: MessageType): number =>
  isAddressedType(type) ? writeChunkBytesMax : controlBodyBytesMax

/** Stable error codes carried in the `aux` field of an Error frame. */
export const ErrorCode = {
  StaleEpoch: 1,
  UnknownVolume: 2,
  OutOfRange: 3,
  Unauthenticated: 4,
  BadFrame: 5,
  StoreFailed: 6,
  NotReplica: 7,
  Busy: 8,
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

const errorCodeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, value]) => [value, name]))

export const isErrorCode = (value: number): value is ErrorCode => errorCodeNames.has(value)

export const errorCodeName = (value: number): string => errorCodeNames.get(value) ?? `error code ${value}`
