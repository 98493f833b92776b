/**
 * Encoding data-frame bodies on the master's hot path: adaptive lz4, and one encoding shared by
 * the links that send the same write to several replicas.
 *
 * Why: lz4 and the body checksum are most of what a frame costs the sender. On incompressible
 * data (already compressed or encrypted files, random bytes) lz4 is pure cost, so a
 * `CompressionGovernor` per stream stops trying after `incompressibleStreakMax` bodies in a row
 * that did not shrink by at least 1/16, and then tries only every `incompressibleProbeEvery`-th
 * eligible body until one shrinks again. And a master with N replicas used to encode each write N
 * times; `SharedBodyEncoder` hands the encoding it made for one link to the next link that sends
 * the same body. Only the body is shared: every link still writes its own header (its own
 * sequence number). The wire format is unchanged; only what the sender chooses to compress is.
 *
 * Sharing contract: a cached encoding is identified by the body's object identity, so it must not
 * outlive the bytes it was made from. The owner calls `forget()` whenever a write may have
 * completed (any frame received from any replica, a link attached or failed), and a user (link)
 * never reuses an encoding it already used, so a caller that rewrites its buffer for the next
 * write always gets a fresh encoding.
 */
import { compressible, encodeBody, type EncodedBody } from "./frame.ts"
import type { MessageType } from "./messages.ts"

/** Consecutive bodies that did not shrink before a stream stops trying lz4. */
export const incompressibleStreakMax = 4
/** While lz4 is paused, every this-many-th eligible body is tried again. */
export const incompressibleProbeEvery = 32

/** Per-stream memory of whether lz4 has been paying off. */
export class CompressionGovernor {
  #streak = 0
  #skipped = 0

  /** Should the next eligible body be compressed? */
  shouldTry(): boolean {
    if (this.#streak < incompressibleStreakMax) return true
    this.#skipped++
    if (this.#skipped < incompressibleProbeEvery) return false
    this.#skipped = 0
    return true
  }

  /** Records how a compressed attempt went. */
  record(body: EncodedBody): void {
    const length = body.source.length
    const paid = body.compressed && body.bytes.length <= length - length / 16
    if (paid) {
      this.#streak = 0
      this.#skipped = 0
    } else if (this.#streak < incompressibleStreakMax) this.#streak++
  }

  /** True while lz4 is paused (only probes are compressed). */
  get paused(): boolean {
    return this.#streak >= incompressibleStreakMax
  }
}

/**
 * Encodes a body of `type`: lz4 when `governor` is given (compression wanted), the body is
 * eligible (`compressible`) and the governor says to try; raw otherwise. Updates the governor.
 */
export const encodeBodyAdaptive = (type: MessageType, body: Uint8Array, governor: CompressionGovernor | undefined): EncodedBody => {
  const attempt = governor !== undefined && compressible(type, body.length) && governor.shouldTry()
  const encoded = encodeBody(type, body, attempt)
  if (attempt) governor.record(encoded)
  return encoded
}

interface SharedEntry {
  readonly type: MessageType
  readonly encoded: EncodedBody
  readonly users: Set<object>
}

/** Remembers the last body encoded, for the other links sending the same write (see the contract above). */
export class SharedBodyEncoder {
  #last: SharedEntry | undefined = undefined

  /**
   * The encoding of `body` for `user`: the one made for another user of the same body since the
   * last `forget()` when there is one (a compressed one only if this user compresses too), else a
   * fresh `encodeBodyAdaptive`.
   */
  encode(type: MessageType, body: Uint8Array, user: object, governor: CompressionGovernor | undefined): EncodedBody {
    const last = this.#last
    if (
      last !== undefined && last.encoded.source === body && last.type === type && !last.users.has(user) &&
      (governor !== undefined || !last.encoded.compressed)
    ) {
      last.users.add(user)
      return last.encoded
    }
    const encoded = encodeBodyAdaptive(type, body, governor)
    this.#last = { type, encoded, users: new Set([user]) }
    return encoded
  }

  /** Drops the remembered encoding (a write may have completed; its buffer may be reused). */
  forget(): void {
    this.#last = undefined
  }
}
