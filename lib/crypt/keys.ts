/**
 * The key hierarchy of encryption at rest (StorageOS v1's, with authenticated wrapping):
 *
 *   unwrapping key  32 bytes, a file on every node (`--encryption-key-file`; `cluster up` makes
 *                   <data>/encryption.key). Never stored in the control store.
 *     └ namespace key  32 random bytes, one per namespace, kept in the control store only sealed
 *                      by the unwrapping key (AES-256-GCM, aad: the namespace): `replivol/nskeys/<ns>`
 *         └ volume key  64 random bytes (AES-256-XTS), one per volume, kept in the volume record
 *                      only sealed by its namespace key (aad: the volume's name and uid)
 *
 * Each sealed key is stored with the key check value of the key that sealed it, so a node holding
 * another key is told "wrong key" with both check values (and even a matching check value must
 * pass the GCM tag: a wrong or damaged key is never used). A node without the unwrapping key
 * cannot serve an encrypted volume and says so; replicas need no key (they store ciphertext).
 *
 * Pure given the primitives (randomness comes from `CryptoPrimitives.randomBytes`, the platform's
 * CSPRNG). Records are JSON; decoding checks them.
 */
import { isRecord } from "../core/guards.ts"
import { aesKeyBytes, EncryptionError, gcmNonceBytes, gcmTagBytes, xtsKeyBytes, type CryptoPrimitives } from "./primitives.ts"
import { encryptionUnitBytes, makeVolumeCipher, volumeCipherName, type VolumeCipher } from "./volumeCipher.ts"

/** What a node was given to unwrap keys with. */
export interface KeyRing {
  readonly crypto: CryptoPrimitives
  /** The unwrapping key (32 bytes); undefined when this node was given none. */
  readonly unwrappingKey: Uint8Array | undefined
  /** Where the key came from, for messages (e.g. `key file /var/lib/replivol/encryption.key`). */
  readonly source: string
}

/** `replivol/nskeys/<namespace>`: the namespace key, sealed by the unwrapping key. */
export interface NamespaceKeyRecord {
  readonly namespace: string
  /** base64 of nonce ‖ ciphertext ‖ tag. */
  readonly sealed: string
  /** Check value of the unwrapping key that sealed it. */
  readonly unwrappingKeyCheck: string
  /** Check value of the namespace key itself (volume keys name it). */
  readonly keyCheck: string
  readonly createdAtMs: number
}

/** Kept in an encrypted volume's record. */
export interface VolumeEncryption {
  readonly cipher: typeof volumeCipherName
  readonly unitBytes: number
  /** Check value of the namespace key that sealed the volume key. */
  readonly namespaceKeyCheck: string
  /** base64 of nonce ‖ sealed 64-byte volume key ‖ tag. */
  readonly sealedKey: string
}

const encoder = new TextEncoder()
const hexPattern = /^[0-9a-f]+$/
const sealedBytes = (plain: number) => gcmNonceBytes + plain + gcmTagBytes

export const toBase64 = (bytes: Uint8Array): string => {
  let text = ""
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]!)
  return btoa(text)
}
const fromBase64 = (text: string): Uint8Array | undefined => {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
  } catch {
    return undefined
  }
}
const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

const namespaceAad = (namespace: string) => encoder.encode(`replivol/namespace-key/v1\0${namespace}`)
const volumeAad = (volume: string, uid: string) => encoder.encode(`replivol/volume-key/v1\0${volume}\0${uid}`)

/** A key file's text: 64 hex digits (32 bytes), surrounding white space ignored. */
export const parseKeyFile = (text: string, source: string): Uint8Array | EncryptionError => {
  const hex = text.trim().toLowerCase()
  if (hex.length !== aesKeyBytes * 2 || !hexPattern.test(hex)) {
    return new EncryptionError({ reason: "malformed-key", message: `${source} does not hold an encryption key: expected ${aesKeyBytes * 2} hex digits (${aesKeyBytes} bytes), found ${hex.length} characters${hexPattern.test(hex) || hex === "" ? "" : " that are not all hex digits"}` })
  }
  return Uint8Array.from({ length: aesKeyBytes }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16))
}

/** A new unwrapping key as key-file text. */
export const newKeyFileText = (crypto: CryptoPrimitives): string => toHex(crypto.randomBytes(aesKeyBytes))

const noKey = (ring: KeyRing, what: string) =>
  new EncryptionError({ reason: "no-key", message: `${what} is encrypted and this node has no encryption key (${ring.source}): give every node the cluster's key file (replivol node start --encryption-key-file FILE)` })

/** A new namespace key and its record (sealed by the ring's unwrapping key). */
export const newNamespaceKey = (ring: KeyRing, namespace: string, nowMs: number): { readonly key: Uint8Array; readonly record: NamespaceKeyRecord } | EncryptionError => {
  if (!ring.unwrappingKey) return noKey(ring, `namespace ${namespace}'s first encrypted volume`)
  const key = ring.crypto.randomBytes(aesKeyBytes)
  const sealed = ring.crypto.seal(ring.unwrappingKey, key, namespaceAad(namespace))
  return {
    key,
    record: { namespace, sealed: toBase64(sealed), unwrappingKeyCheck: ring.crypto.keyCheck(ring.unwrappingKey), keyCheck: ring.crypto.keyCheck(key), createdAtMs: nowMs },
  }
}

/** The namespace key, or why it cannot be had with this ring (no key, wrong key, damaged record). */
export const unwrapNamespaceKey = (ring: KeyRing, record: NamespaceKeyRecord, forWhat: string): Uint8Array | EncryptionError => {
  if (!ring.unwrappingKey) return noKey(ring, forWhat)
  const check = ring.crypto.keyCheck(ring.unwrappingKey)
  if (check !== record.unwrappingKeyCheck) {
    return new EncryptionError({ reason: "wrong-key", message: `${forWhat} is encrypted with namespace ${record.namespace}'s key, sealed by the unwrapping key with check value ${record.unwrappingKeyCheck}; this node's key (${ring.source}) has check value ${check}: it is another key, and is not used` })
  }
  const sealed = fromBase64(record.sealed)
  const key = sealed?.length === sealedBytes(aesKeyBytes) ? ring.crypto.open(ring.unwrappingKey, sealed, namespaceAad(record.namespace)) : undefined
  if (!key || ring.crypto.keyCheck(key) !== record.keyCheck) {
    return new EncryptionError({ reason: "wrong-key", message: `namespace ${record.namespace}'s key record does not authenticate with this node's key (${ring.source}, check value ${check}): the record is damaged or was sealed by another key; it is not used` })
  }
  return key
}

/** A new random volume key, sealed by its namespace key for this volume instance. */
export const newVolumeKey = (crypto: CryptoPrimitives, namespaceKey: Uint8Array, volume: string, uid: string): VolumeEncryption => {
  const key = crypto.randomBytes(xtsKeyBytes)
  return {
    cipher: volumeCipherName, unitBytes: encryptionUnitBytes, namespaceKeyCheck: crypto.keyCheck(namespaceKey),
    sealedKey: toBase64(crypto.seal(namespaceKey, key, volumeAad(volume, uid))),
  }
}

/** The volume's cipher, from its record's sealed key and the namespace key. */
export const unwrapVolumeCipher = (crypto: CryptoPrimitives, namespaceKey: Uint8Array, encryption: VolumeEncryption, volume: string, uid: string): VolumeCipher | EncryptionError => {
  if (encryption.cipher !== volumeCipherName || encryption.unitBytes !== encryptionUnitBytes) {
    return new EncryptionError({ reason: "unsupported", message: `volume ${volume} is encrypted with ${encryption.cipher} in units of ${encryption.unitBytes} bytes: this version reads only ${volumeCipherName} in units of ${encryptionUnitBytes}` })
  }
  if (crypto.keyCheck(namespaceKey) !== encryption.namespaceKeyCheck) {
    return new EncryptionError({ reason: "wrong-key", message: `volume ${volume}'s key was sealed by a namespace key with check value ${encryption.namespaceKeyCheck}, not the namespace's current key (${crypto.keyCheck(namespaceKey)}); it is not used` })
  }
  const sealed = fromBase64(encryption.sealedKey)
  const key = sealed?.length === sealedBytes(xtsKeyBytes) ? crypto.open(namespaceKey, sealed, volumeAad(volume, uid)) : undefined
  if (!key) return new EncryptionError({ reason: "wrong-key", message: `volume ${volume}'s sealed key does not authenticate (damaged, or sealed for another volume); it is not used` })
  return makeVolumeCipher(crypto.xts(key))
}

/** Decodes a namespace key record (a damaged record is `malformed-key`, never a crash). */
export const decodeNamespaceKey = (key: string, text: string): NamespaceKeyRecord | EncryptionError => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  const ok = isRecord(value) && typeof value.namespace === "string" && typeof value.sealed === "string" && typeof value.unwrappingKeyCheck === "string" && typeof value.keyCheck === "string" && typeof value.createdAtMs === "number"
  return ok ? (value as unknown as NamespaceKeyRecord) : new EncryptionError({ reason: "malformed-key", message: `namespace key record ${key} is malformed` })
}

/** Checks the shape of a volume record's `encryption` field. */
export const isVolumeEncryption = (value: unknown): value is VolumeEncryption =>
  isRecord(value) && typeof value.cipher === "string" && typeof value.unitBytes === "number" && typeof value.namespaceKeyCheck === "string" && typeof value.sealedKey === "string"
