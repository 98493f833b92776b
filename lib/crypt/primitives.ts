/**
 * The cryptographic primitives replivol needs, as a contract, and the one error they report.
 *
 * Encryption at rest (`storageos.com/encryption=true`) needs four things from the runtime: AES-XTS
 * over whole data units (the volume's copies), AES-256-GCM to seal keys (the key hierarchy,
 * keys.ts), a key check value (to tell a wrong key from a damaged record), and random bytes from
 * the operating system's CSPRNG. Only lib/platform/ implements them (node:crypto: native
 * `aes-256-xts` on Node, XTS over `aes-256-ecb` where the runtime has no XTS — Bun, Deno); the
 * rest of the library sees this interface, so it stays free of node:* and a simulator can swap
 * the random source for a seeded one.
 */
import { Data, type Effect } from "effect"

export type EncryptionErrorReason =
  /** This node was given no unwrapping key (no key file). */
  | "no-key"
  /** The key this node holds is not the one the record was wrapped with (check value or GCM tag). */
  | "wrong-key"
  /** A key file or key record is malformed (length, encoding, truncated, authenticated data). */
  | "malformed-key"
  /** The runtime lacks a primitive (no AES at all). */
  | "unsupported"

export class EncryptionError extends Data.TaggedError("EncryptionError")<{
  readonly reason: EncryptionErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}

/** AES-XTS with one key (64 bytes: two AES-256 keys), over a run of data units. */
export interface XtsCipher {
  /**
   * Encrypts `data`, a run of whole data units of `unitBytes` each starting at unit `firstUnit`
   * (the last may be shorter, a multiple of 16 bytes: the end of the volume). The tweak of a unit
   * is its index, as a 128-bit little-endian number (IEEE 1619, dm-crypt's `plain64`). Returns new bytes.
   */
  readonly encrypt: (firstUnit: number, unitBytes: number, data: Uint8Array) => Uint8Array
  readonly decrypt: (firstUnit: number, unitBytes: number, data: Uint8Array) => Uint8Array
  /** The same work on other threads (lib/platform/cryptWorkers.ts), where the runtime has them; absent: inline only. */
  readonly background?: XtsBackground
}

/**
 * XTS off the event loop: the same bytes as the inline calls, computed on a worker thread so a
 * big run overlaps the node's disk and network IO (and other runs, on other cores). Never fails:
 * when a worker cannot do it, the run is done inline instead. Doesn't hold on to `data` after it
 * has returned (its bytes are copied before the hand-over).
 */
export interface XtsBackground {
  /** Runs shorter than this are done inline by callers (the hand-over to a thread costs tens of µs). */
  readonly minBytes: number
  readonly encrypt: (firstUnit: number, unitBytes: number, data: Uint8Array) => Effect.Effect<Uint8Array>
  readonly decrypt: (firstUnit: number, unitBytes: number, data: Uint8Array) => Effect.Effect<Uint8Array>
}

/** The cipher without its background (a simulator runs on one thread, in virtual time). */
export const inlineXts = (xts: XtsCipher): XtsCipher => ({ encrypt: xts.encrypt, decrypt: xts.decrypt })

export interface CryptoPrimitives {
  /** What implements XTS here (shown in events and docs): e.g. `node:crypto aes-256-xts`. */
  readonly xtsImplementation: string
  /** An XTS cipher for a 64-byte key (the two halves must differ). */
  readonly xts: (key: Uint8Array) => XtsCipher
  /** AES-256-GCM: returns nonce (12) ‖ ciphertext ‖ tag (16); `aad` is authenticated, not stored. */
  readonly seal: (key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array) => Uint8Array
  /** The plaintext, or undefined when the tag does not verify (wrong key, other aad, damaged bytes). */
  readonly open: (key: Uint8Array, sealed: Uint8Array, aad: Uint8Array) => Uint8Array | undefined
  /** A key check value: 8 bytes of HMAC-SHA-256(key, a fixed label), hex. Says nothing about the key. */
  readonly keyCheck: (key: Uint8Array) => string
  /** Bytes from the operating system's CSPRNG (keys and nonces). */
  readonly randomBytes: (count: number) => Uint8Array
}

/** Bytes of an AES-256 key (the unwrapping key, namespace keys). */
export const aesKeyBytes = 32
/** Bytes of an AES-256-XTS key (a volume key: two AES-256 keys). */
export const xtsKeyBytes = 64
/** Bytes of a GCM nonce and tag. */
export const gcmNonceBytes = 12
export const gcmTagBytes = 16
/** The AES block. */
export const aesBlockBytes = 16
