/**
 * lz4 behind one small interface: compress a block, decompress a block safely.
 *
 * The block format is lz4-napi's: a 4-byte little-endian uncompressed size, then the lz4 block.
 * lz4-napi trusts that size header (`ff ff ff ff 01` allocates 4 GiB and returns an empty
 * buffer without an error), so `decompressBlock` checks the header against the length the
 * frame header promised, and the output length afterwards, before anything is returned.
 * Synchronous calls: chunks are at most writeChunkBytesMax (1 MiB), where the async API's
 * thread-pool hop costs more than it saves.
 */
import { compressSync, uncompressSync } from "lz4-napi"
import { writeChunkBytesMax } from "../core/limits.ts"
import { wireError, type WireError } from "./error.ts"

// lz4-napi declares Buffer parameters; it accepts any Uint8Array and returns a Buffer (a Uint8Array).
const compressRaw = compressSync as unknown as (data: Uint8Array) => Uint8Array
const uncompressRaw = uncompressSync as unknown as (data: Uint8Array) => Uint8Array

/** Bytes of lz4-napi's uncompressed-size prefix. */
export const sizeHeaderBytes = 4

/** The lz4 block of `data`, with lz4-napi's 4-byte size prefix. May be larger than `data`. */
export const compressBlock = (data: Uint8Array): Uint8Array => compressRaw(data)

/** The uncompressed size a block claims in its prefix, or undefined if the block is too short. */
export const claimedBytes = (body: Uint8Array): number | undefined =>
  body.length < sizeHeaderBytes
    ? undefined
    : (body[0]! | (body[1]! << 8) | (body[2]! << 16) | (body[3]! << 24)) >>> 0

/**
 * Decompresses a block that must hold exactly `expectedLength` bytes. The size prefix is checked
 * before lz4 runs, so a hostile prefix never causes an allocation beyond `expectedLength`.
 */
export const decompressBlock = (body: Uint8Array, expectedLength: number): Uint8Array | WireError => {
  if (expectedLength > writeChunkBytesMax) {
    return wireError("too-large", `compressed block claims ${expectedLength} bytes; at most ${writeChunkBytesMax} are allowed`)
  }
  const claimed = claimedBytes(body)
  if (claimed === undefined) {
    return wireError("bad-compression", `compressed body of ${body.length} bytes has no 4-byte size header`)
  }
  if (claimed !== expectedLength) {
    return wireError("bad-compression", `compressed body's size header says ${claimed} bytes; the frame length is ${expectedLength}`)
  }
  let output: Uint8Array
  try {
    output = uncompressRaw(body)
  } catch (cause) {
    return wireError("bad-compression", `lz4 block is corrupt: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
  if (output.length !== expectedLength) {
    return wireError("bad-compression", `lz4 block decompressed to ${output.length} bytes; the frame length is ${expectedLength}`)
  }
  return output
}
