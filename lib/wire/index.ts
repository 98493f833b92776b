/**
 * The wire format of replivol's replication protocol: frames, their codec, lz4 and the
 * streaming decoder. Pure code; the byte layout is documented in lib/wire/FORMAT.md.
 */
export { decodeJsonBody, encodeJsonBody, errorFrame, readErrorFrame } from "./body.ts"
export type { ErrorFrameContent, ErrorFrameFields } from "./body.ts"
export { BodyPool } from "./bodyPool.ts"
export { decodeFrame, FrameDecoder } from "./decoder.ts"
export type { FrameDecoderOptions } from "./decoder.ts"
export { isWireError, WireError } from "./error.ts"
export type { WireErrorReason } from "./error.ts"
export {
  CompressionGovernor,
  encodeBodyAdaptive,
  incompressibleProbeEvery,
  incompressibleStreakMax,
  SharedBodyEncoder,
} from "./bodyEncoder.ts"
export { compressBodyBytesMin, compressible, encodeBody, encodedBytes, encodeFrame, encodeFrameWith, makeFrame } from "./frame.ts"
export type { EncodedBody, EncodeOptions, Frame } from "./frame.ts"
export { frameMagic, frameVersion } from "./header.ts"
export { compressBlock, decompressBlock } from "./lz4.ts"
export {
  ErrorCode,
  errorCodeName,
  isDataType,
  isErrorCode,
  isMessageType,
  isRangeRequestType,
  MessageType,
  messageTypeName,
  verifyReplyBodyBytes,
} from "./messages.ts"
