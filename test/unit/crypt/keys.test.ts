/**
 * The key hierarchy (lib/crypt/keys.ts): unwrapping key → namespace key → volume key. A node
 * with the right key gets the volume's cipher; without a key, with another key, or from a damaged
 * or misplaced record it gets a typed error saying which, and no key is ever used silently.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { EncryptionError, type CryptoPrimitives } from "../../../lib/crypt/primitives.ts"
import { decodeNamespaceKey, newKeyFileText, newNamespaceKey, newVolumeKey, parseKeyFile, unwrapNamespaceKey, unwrapVolumeCipher, type KeyRing, type NamespaceKeyRecord } from "../../../lib/crypt/keys.ts"
import { nodeCrypto } from "../../../lib/platform/nodeCrypto.ts"

const test = suite("crypt: key hierarchy")
const crypto = nodeCrypto() as CryptoPrimitives
const ringOf = (text: string | undefined): KeyRing => ({ crypto, unwrappingKey: text === undefined ? undefined : (parseKeyFile(text, "test key") as Uint8Array), source: "test key" })
const keyText = newKeyFileText(crypto)
const ring = ringOf(keyText)

const made = () => {
  const ns = newNamespaceKey(ring, "db", 1)
  if (ns instanceof EncryptionError) throw ns
  const encryption = newVolumeKey(crypto, ns.key, "db/vol", "uid1")
  return { ns, encryption }
}
const failure = (value: unknown): EncryptionError => {
  assert.instance(value, EncryptionError)
  return value as EncryptionError
}

test("the right key unwraps namespace and volume key; the cipher it gives round-trips", () => {
  const { ns, encryption } = made()
  const record = decodeNamespaceKey("k", JSON.stringify(ns.record)) as NamespaceKeyRecord
  const nsKey = unwrapNamespaceKey(ring, record, "volume db/vol")
  assert.ok(nsKey instanceof Uint8Array)
  const cipher = unwrapVolumeCipher(crypto, nsKey as Uint8Array, encryption, "db/vol", "uid1")
  assert.not.instance(cipher, EncryptionError)
  const data = new Uint8Array(8192).fill(0x5a)
  if (cipher instanceof EncryptionError) return
  assert.equal(cipher.decrypt(4096, cipher.encrypt(4096, data)), data)
  assert.not.ok(JSON.stringify(record).includes(keyText), "the record never holds the unwrapping key")
})

test("no key: no-key, saying what to give the node", () => {
  const { ns } = made()
  const error = failure(unwrapNamespaceKey(ringOf(undefined), ns.record, "volume db/vol"))
  assert.is(error.reason, "no-key")
  assert.match(error.message, /--encryption-key-file/)
  assert.is(failure(newNamespaceKey(ringOf(undefined), "db", 1)).reason, "no-key")
})

test("another key: wrong-key with both check values, never used", () => {
  const { ns } = made()
  const other = ringOf(newKeyFileText(crypto))
  const error = failure(unwrapNamespaceKey(other, ns.record, "volume db/vol"))
  assert.is(error.reason, "wrong-key")
  assert.ok(error.message.includes(ns.record.unwrappingKeyCheck) && error.message.includes(crypto.keyCheck(other.unwrappingKey!)))
})

test("a damaged record, or one copied to another namespace, does not authenticate (the GCM tag), even with a matching check value", () => {
  const { ns } = made()
  const bytes = Uint8Array.from(atob(ns.record.sealed), (c) => c.charCodeAt(0))
  bytes[20]! ^= 1
  const damaged = { ...ns.record, sealed: btoa(String.fromCharCode(...bytes)) }
  assert.is(failure(unwrapNamespaceKey(ring, damaged, "volume db/vol")).reason, "wrong-key")
  assert.is(failure(unwrapNamespaceKey(ring, { ...ns.record, namespace: "other" }, "volume other/vol")).reason, "wrong-key")
  assert.is(failure(unwrapNamespaceKey(ring, { ...ns.record, sealed: "AAAA" }, "volume db/vol")).reason, "wrong-key")
})

test("a volume key is bound to its volume instance: another uid or name, or another namespace key, is refused", () => {
  const { ns, encryption } = made()
  assert.is(failure(unwrapVolumeCipher(crypto, ns.key, encryption, "db/vol", "uid2")).reason, "wrong-key")
  assert.is(failure(unwrapVolumeCipher(crypto, ns.key, encryption, "db/other", "uid1")).reason, "wrong-key")
  const second = newNamespaceKey(ring, "db", 2) as { key: Uint8Array }
  assert.is(failure(unwrapVolumeCipher(crypto, second.key, encryption, "db/vol", "uid1")).reason, "wrong-key")
  assert.is(failure(unwrapVolumeCipher(crypto, ns.key, { ...encryption, unitBytes: 512 }, "db/vol", "uid1")).reason, "unsupported")
})

test("key files: 64 hex digits; anything else is malformed-key naming the file", () => {
  assert.ok(parseKeyFile(` ${keyText.toUpperCase()}\n`, "f") instanceof Uint8Array)
  for (const bad of ["", "abc", keyText.slice(2), `${keyText}00`, keyText.replace(/^../, "zz")]) {
    const error = failure(parseKeyFile(bad, "key file /x"))
    assert.is(error.reason, "malformed-key")
    assert.match(error.message, /key file \/x/)
  }
  assert.instance(decodeNamespaceKey("replivol/nskeys/db", "{}"), EncryptionError)
})

test.run()
