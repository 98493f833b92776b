/**
 * Encryption keys in the cluster (the hierarchy is lib/crypt/keys.ts): a namespace's key record
 * is created with its first encrypted volume (compare-and-swap, so two creates agree on one key);
 * a new encrypted volume gets a fresh volume key sealed into its record; a master unwraps its
 * volume's cipher before it claims the master role, and a node that cannot (no key file, another
 * key, a damaged record) does not serve, saying why. Replicas need no key: they store ciphertext.
 */
import { Effect } from "effect"
import type { ControlError, ControlStoreShape } from "../control/ControlStore.ts"
import { decodeNamespaceKey, newNamespaceKey, newVolumeKey, unwrapNamespaceKey, unwrapVolumeCipher, type KeyRing, type VolumeEncryption } from "../crypt/keys.ts"
import { EncryptionError } from "../crypt/primitives.ts"
import type { VolumeCipher } from "../crypt/volumeCipher.ts"
import { encode, keys, uidOf, type VolumeRecord } from "./records.ts"

const noRing = (what: string) =>
  new EncryptionError({ reason: "no-key", message: `${what} is encrypted and this node was started without encryption support (no key ring): give it the cluster's key file (replivol node start --encryption-key-file FILE)` })

/** The namespace's key: unwrapped from its record, or created (and recorded) if it has none yet. */
const namespaceKey = (control: ControlStoreShape, ring: KeyRing, namespace: string, forWhat: string, nowMs: number): Effect.Effect<Uint8Array, EncryptionError | ControlError> =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = yield* control.get(keys.namespaceKey(namespace))
      if (row) {
        const record = decodeNamespaceKey(row.key, row.value)
        if (record instanceof EncryptionError) return yield* record
        const key = unwrapNamespaceKey(ring, record, forWhat)
        return key instanceof EncryptionError ? yield* key : key
      }
      const made = newNamespaceKey(ring, namespace, nowMs)
      if (made instanceof EncryptionError) return yield* made
      const created = yield* control.transaction({ compare: [{ key: keys.namespaceKey(namespace), revision: 0 }], put: [{ key: keys.namespaceKey(namespace), value: encode(made.record) }] })
      if (created.succeeded) return made.key
    }
    return yield* new EncryptionError({ reason: "malformed-key", message: `namespace ${namespace}'s key record kept changing while ${forWhat} was created; try again` })
  })

/** A new volume's sealed key (before its record is created). */
export const sealNewVolumeKey = (control: ControlStoreShape, ring: KeyRing | undefined, volume: string, uid: string, nowMs: number): Effect.Effect<VolumeEncryption, EncryptionError | ControlError> =>
  Effect.gen(function* () {
    const what = `volume ${volume}`
    if (!ring) return yield* noRing(what)
    const key = yield* namespaceKey(control, ring, volume.split("/")[0]!, what, nowMs)
    return newVolumeKey(ring.crypto, key, volume, uid)
  })

/** The cipher of an encrypted volume's record, or why this node cannot have it. */
export const volumeCipherOf = (control: ControlStoreShape, ring: KeyRing | undefined, record: VolumeRecord, nowMs: number): Effect.Effect<VolumeCipher, EncryptionError | ControlError> =>
  Effect.gen(function* () {
    const what = `volume ${record.volume}`
    if (!ring) return yield* noRing(what)
    if (!record.encryption) return yield* new EncryptionError({ reason: "malformed-key", message: `${what} is labelled storageos.com/encryption=true but its record holds no sealed key` })
    const row = yield* control.get(keys.namespaceKey(record.volume.split("/")[0]!))
    if (!row) return yield* new EncryptionError({ reason: "malformed-key", message: `${what} is encrypted but namespace ${record.volume.split("/")[0]}'s key record (${keys.namespaceKey(record.volume.split("/")[0]!)}) is gone: the volume's data cannot be decrypted` })
    const key = yield* namespaceKey(control, ring, record.volume.split("/")[0]!, what, nowMs)
    const cipher = unwrapVolumeCipher(ring.crypto, key, record.encryption, record.volume, uidOf(record))
    return cipher instanceof EncryptionError ? yield* cipher : cipher
  })
