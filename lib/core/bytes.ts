/** Byte-array helpers shared by the pure layers (DER encoding, the handshake's messages, copies of write bodies). */

/** The parts' lengths summed. */
export const totalBytes = (parts: ReadonlyArray<Uint8Array>): number => {
  let total = 0
  for (const part of parts) total += part.length
  return total
}

/** The parts one after another in a new array. */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(totalBytes(parts))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/**
 * A copy that shares no memory with `bytes`. Not `bytes.slice()`: on a Node Buffer (what FUSE and
 * most Node callers hand us) `slice` is a view of the same memory, so a "copy" kept for a resend
 * would change when the caller reuses its buffer.
 */
export const copyBytes = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes)
