/**
 * FrameDecoder: a streaming decoder that turns a peer's byte chunks into frames.
 *
 * Chunks may split frames anywhere and hold many frames. The header is validated completely
 * (lib/wire/header.ts) before the decoder waits for or allocates a body, so a hostile length is
 * refused with the 56 header bytes alone. The decoder keeps a list of the chunks it was given
 * and only concatenates what one frame needs: a body that lies inside one chunk is returned as a
 * view of it, without a copy (so callers must not reuse a chunk after pushing it).
 *
 * Body lifetimes: a frame's `body` is either a view of a pushed chunk or a fresh array (or, with
 * a `pool`, a slab the receiver may give back once done with it), never memory the decoder writes
 * again on its own, so a receiver may keep it as long as it likes (until it gives it back). Only a compressed wire body that spans chunks is
 * gathered into a scratch buffer the decoder reuses: it is checksummed and decompressed (into a
 * fresh array) inside `next()` and never escapes, which saves a 1 MiB allocation and its page
 * faults per compressed frame.
 *
 * After the first WireError the decoder is poisoned: it returns that error forever and drops
 * whatever it is given, because the connection is about to be closed.
 */
import { assert } from "../core/assert.ts"
import { crc32c } from "../core/checksum.ts"
import { frameBodyBytesMax, frameHeaderBytes } from "../core/limits.ts"
import { wireError, WireError } from "./error.ts"
import type { Frame } from "./frame.ts"
import { readHeader, type FrameHeader } from "./header.ts"
import { decompressBlock } from "./lz4.ts"
import type { BodyPool } from "./bodyPool.ts"

export interface FrameDecoderOptions {
  /** Largest wire body this connection accepts (default frameBodyBytesMax); e.g. controlBodyBytesMax before authentication. */
  readonly bodyBytesMax?: number
  /** Memory for raw bodies that span chunks, given back by the receiver when done (bodyPool.ts); else each is a fresh array. */
  readonly pool?: BodyPool
}

const emptyChunk = new Uint8Array(0)
/** Consumed chunk slots are compacted away once this many have accumulated (and they are half the list). */
const consumedChunksCompactCount = 64

export class FrameDecoder {
  readonly #bodyBytesMax: number
  readonly #pool: BodyPool | undefined
  readonly #headerScratch = new Uint8Array(frameHeaderBytes)
  /** Reused for compressed wire bodies that span chunks (they never leave `next()`); grows up to bodyBytesMax. */
  #bodyScratch = emptyChunk
  #chunks: Uint8Array[] = []
  #head = 0
  #headOffset = 0
  #buffered = 0
  #pending: FrameHeader | undefined = undefined
  #poison: WireError | undefined = undefined

  constructor(options?: FrameDecoderOptions) {
    const bodyBytesMax = options?.bodyBytesMax ?? frameBodyBytesMax
    assert(
      Number.isInteger(bodyBytesMax) && bodyBytesMax >= 0 && bodyBytesMax <= frameBodyBytesMax,
      `decoder bodyBytesMax ${bodyBytesMax} is 0..${frameBodyBytesMax}`,
    )
    this.#bodyBytesMax = bodyBytesMax
    this.#pool = options?.pool
  }

  /**
   * Bytes received and not yet returned as frames. Once `next()` has returned undefined this is
   * below frameHeaderBytes + bodyBytesMax: the decoder never holds more than one frame's worth.
   */
  get bufferedBytes(): number {
    return this.#buffered
  }

  /** Hands the decoder the next chunk of the stream. Ignored once the decoder is poisoned. */
  push(chunk: Uint8Array): void {
    if (this.#poison !== undefined || chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** The next frame, the error that poisoned the stream, or undefined when more bytes are needed. */
  next(): Frame | WireError | undefined {
    if (this.#poison !== undefined) return this.#poison
    if (this.#pending === undefined) {
      if (this.#buffered < frameHeaderBytes) return undefined
      const header = readHeader(this.#take(frameHeaderBytes, this.#headerScratch), this.#bodyBytesMax)
      if (header instanceof WireError) return this.#fail(header)
      this.#pending = header
    }
    const header = this.#pending
    if (this.#buffered < header.bodyBytes) return undefined
    this.#pending = undefined
    const result = decodeBody(header, this.#take(header.bodyBytes, header.compressed ? this.#compressedScratch(header.bodyBytes) : this.#pool))
    return result instanceof WireError ? this.#fail(result) : result
  }

  /**
   * The peer closed the stream. Returns a "truncated" WireError (and poisons the decoder) if a
   * partial frame is buffered, else undefined.
   */
  end(): WireError | undefined {
    if (this.#poison !== undefined) return this.#poison
    if (this.#buffered === 0 && this.#pending === undefined) return undefined
    const partial = this.#pending === undefined ? "header" : "body"
    return this.#fail(wireError("truncated", `stream ended inside a frame ${partial} with ${this.#buffered} bytes buffered`))
  }

  /** A scratch view of `count` bytes for a compressed wire body (only used if the body spans chunks). */
  #compressedScratch(count: number): Uint8Array {
    if (this.#bodyScratch.length < count) this.#bodyScratch = new Uint8Array(Math.max(count, Math.min(this.#bodyBytesMax, this.#bodyScratch.length * 2)))
    return this.#bodyScratch.subarray(0, count)
  }

  #fail(error: WireError): WireError {
    this.#poison = error
    this.#chunks = []
    this.#head = 0
    this.#headOffset = 0
    this.#buffered = 0
    this.#pending = undefined
    this.#bodyScratch = emptyChunk
    return error
  }

  /** Removes `count` buffered bytes: a view when they lie in one chunk, else a copy (into `scratch`, or a slab of a pool, if given). */
  #take(count: number, scratch: Uint8Array | BodyPool | undefined): Uint8Array {
    assert(count <= this.#buffered, `take ${count} of ${this.#buffered} buffered bytes`)
    this.#buffered -= count
    if (count === 0) return emptyChunk
    const first = this.#chunks[this.#head]!
    if (first.length - this.#headOffset >= count) {
      const view = first.subarray(this.#headOffset, this.#headOffset + count)
      this.#advance(first, count)
      return view
    }
    const out = (scratch instanceof Uint8Array ? scratch : scratch?.take(count)) ?? new Uint8Array(count)
    let filled = 0
    while (filled < count) {
      const chunk = this.#chunks[this.#head]!
      const step = Math.min(chunk.length - this.#headOffset, count - filled)
      out.set(chunk.subarray(this.#headOffset, this.#headOffset + step), filled)
      filled += step
      this.#advance(chunk, step)
    }
    return out
  }

  #advance(chunk: Uint8Array, count: number): void {
    this.#headOffset += count
    if (this.#headOffset < chunk.length) return
    this.#chunks[this.#head] = emptyChunk
    this.#head++
    this.#headOffset = 0
    if (this.#head === this.#chunks.length) {
      this.#chunks = []
      this.#head = 0
    } else if (this.#head >= consumedChunksCompactCount && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head)
      this.#head = 0
    }
  }
}

/** Checks a complete wire body against its header and decompresses it. */
const decodeBody = (header: FrameHeader, wireBody: Uint8Array): Frame | WireError => {
  const actual = crc32c(wireBody)
  if (actual !== header.bodyChecksum) {
    return wireError("body-checksum", `body checksum 0x${actual.toString(16)} does not match the header's 0x${header.bodyChecksum.toString(16)}`)
  }
  const body = header.compressed ? decompressBlock(wireBody, header.length) : wireBody
  if (body instanceof WireError) return body
  return {
    type: header.type,
    volumeId: header.volumeId,
    epoch: header.epoch,
    aux: header.aux,
    sequence: header.sequence,
    offset: header.offset,
    length: header.length,
    body,
  }
}

/** Decodes exactly one frame from its complete bytes (for tests and one-shot messages). */
export const decodeFrame = (parts: Uint8Array | Uint8Array[], options?: FrameDecoderOptions): Frame | WireError => {
  const decoder = new FrameDecoder(options)
  for (const part of parts instanceof Uint8Array ? [parts] : parts) decoder.push(part)
  const result = decoder.next()
  if (result === undefined) return decoder.end() ?? wireError("truncated", "no bytes given; expected one frame")
  if (result instanceof WireError || decoder.bufferedBytes === 0) return result
  return wireError("bad-length", `${decoder.bufferedBytes} bytes follow the frame; expected exactly one frame`)
}
