/**
 * AES-256-XTS as volumes use it: the IEEE 1619 vector on this runtime's cipher (native where
 * node:crypto has `aes-256-xts`, XTS over ECB elsewhere) and on the ECB path; both paths give the
 * same bytes for runs of units with big indices; the volume cipher's zero rule and unit spans.
 */
import { Effect } from "effect"
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { EncryptionError, type CryptoPrimitives } from "../../../lib/crypt/primitives.ts"
import { encryptionUnitBytes, isUnitAligned, makeVolumeCipher, unitSpan } from "../../../lib/crypt/volumeCipher.ts"
import { nodeCrypto, nodeCryptoViaEcb } from "../../../lib/platform/nodeCrypto.ts"
import { cryptWorkerCounts } from "../../../lib/platform/cryptWorkers.ts"
import { mulberry32 } from "../../../lib/core/seeded.ts"

const test = suite("crypt: AES-256-XTS")
const hex = (text: string) => Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16))
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
const primitives = (made: CryptoPrimitives | EncryptionError): CryptoPrimitives => {
  if (made instanceof EncryptionError) throw new Error(made.message)
  return made
}
const runtimeCrypto = primitives(nodeCrypto())
const ecbCrypto = primitives(nodeCryptoViaEcb())
const paths = [runtimeCrypto, ecbCrypto]
const random = (length: number, seed: number) => {
  const r = mulberry32(seed)
  return Uint8Array.from({ length }, () => Math.floor(r.next() * 256))
}

// IEEE 1619-2007 Annex B, vector 10: XTS-AES-256, data unit 255, 512 bytes 00..ff twice.
const vectorKey = hex("2718281828459045235360287471352662497757247093699959574966967627" + "3141592653589793238462643383279502884197169399375105820974944592")
const vectorPlain = Uint8Array.from({ length: 512 }, (_, i) => i & 0xff)
const vectorCipherHead = "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"

for (const crypto of paths) {
  test(`IEEE 1619 vector 10 (${crypto.xtsImplementation})`, () => {
    const cipher = crypto.xts(vectorKey)
    const encrypted = cipher.encrypt(255, 512, vectorPlain)
    assert.is(toHex(encrypted.subarray(0, 64)), vectorCipherHead)
    assert.equal(cipher.decrypt(255, 512, encrypted), vectorPlain)
  })
}

test(`this runtime's XTS (${runtimeCrypto.xtsImplementation}) and XTS over ECB give the same bytes (runs of units, indices past 2^32, a short last unit)`, () => {
  const key = random(64, 1)
  const data = random(encryptionUnitBytes * 9 + 1024, 2)
  for (const first of [0, 1, 2 ** 32 - 3, 2 ** 40 + 5]) {
    const a = runtimeCrypto.xts(key).encrypt(first, encryptionUnitBytes, data)
    const b = ecbCrypto.xts(key).encrypt(first, encryptionUnitBytes, data)
    assert.is(toHex(a), toHex(b), `first unit ${first}`)
    assert.equal(ecbCrypto.xts(key).decrypt(first, encryptionUnitBytes, a), data)
    assert.equal(runtimeCrypto.xts(key).decrypt(first, encryptionUnitBytes, b), data)
  }
})

test(`big runs on worker threads (${runtimeCrypto.xtsImplementation}) give the inline bytes, and back`, async () => {
  const key = random(64, 8)
  const cipher = runtimeCrypto.xts(key)
  const background = cipher.background
  if (!background) {
    console.log(`skipped the worker-thread comparison: ${runtimeCrypto.xtsImplementation} has no background (no native XTS, or one core)`)
    return
  }
  const data = random(encryptionUnitBytes * 256 + 512, 9)
  for (const first of [0, 2 ** 32 - 3]) {
    const inline = cipher.encrypt(first, encryptionUnitBytes, data)
    const [a, b] = await Effect.runPromise(Effect.all([background.encrypt(first, encryptionUnitBytes, data), background.encrypt(first + 1, encryptionUnitBytes, data)], { concurrency: 2 }))
    assert.is(toHex(a!), toHex(inline), `first unit ${first}`)
    assert.is(toHex(b!), toHex(cipher.encrypt(first + 1, encryptionUnitBytes, data)))
    assert.equal(await Effect.runPromise(background.decrypt(first, encryptionUnitBytes, inline)), data)
  }
  const counts = cryptWorkerCounts()
  assert.ok(counts.onWorkers >= 6 && counts.inline === 0, `every run was done on a worker thread, none fell back inline: ${JSON.stringify(counts)}`)
  const volume = makeVolumeCipher(cipher)
  const stored = new Uint8Array(background.minBytes * 2)
  stored.set(volume.encrypt(0, data.subarray(0, background.minBytes)))
  assert.equal(await Effect.runPromise(volume.decryptBackground(0, stored)), Uint8Array.from([...data.subarray(0, background.minBytes), ...new Uint8Array(background.minBytes)]), "never-written units read as zeros")
})

test("the same plaintext in two units, or under two keys, gives different ciphertext; one flipped bit garbles its 16-byte block only (XTS: no tamper detection)", () => {
  const cipher = makeVolumeCipher(runtimeCrypto.xts(random(64, 3)))
  const unit = random(encryptionUnitBytes, 4)
  const two = new Uint8Array(encryptionUnitBytes * 2)
  two.set(unit, 0)
  two.set(unit, encryptionUnitBytes)
  const encrypted = cipher.encrypt(0, two)
  assert.not.equal(encrypted.subarray(0, encryptionUnitBytes), encrypted.subarray(encryptionUnitBytes))
  assert.not.equal(makeVolumeCipher(runtimeCrypto.xts(random(64, 5))).encrypt(0, two), encrypted)
  const flipped = encrypted.slice()
  flipped[10]! ^= 1
  const back = cipher.decrypt(0, flipped)
  assert.equal(back.subarray(encryptionUnitBytes), unit, "the other unit decrypts as before")
  assert.equal(back.subarray(16, encryptionUnitBytes), unit.subarray(16), "the rest of the unit decrypts as before")
  assert.not.equal(back.subarray(0, 16), unit.subarray(0, 16), "the block with the flipped bit is garbage")
})

test("a unit never written (stored zeros) reads as zeros; a written unit of zeros is not stored as zeros", () => {
  const cipher = makeVolumeCipher(runtimeCrypto.xts(random(64, 6)))
  const stored = new Uint8Array(encryptionUnitBytes * 3)
  const data = random(encryptionUnitBytes, 7)
  stored.set(cipher.encrypt(encryptionUnitBytes, data), encryptionUnitBytes)
  const plain = cipher.decrypt(0, stored)
  assert.equal(plain.subarray(0, encryptionUnitBytes), new Uint8Array(encryptionUnitBytes))
  assert.equal(plain.subarray(encryptionUnitBytes, 2 * encryptionUnitBytes), data)
  assert.equal(plain.subarray(2 * encryptionUnitBytes), new Uint8Array(encryptionUnitBytes))
  const zeros = cipher.encrypt(0, new Uint8Array(encryptionUnitBytes))
  assert.ok(zeros.some((b) => b !== 0))
  assert.equal(cipher.decrypt(0, zeros), new Uint8Array(encryptionUnitBytes))
})

test("unit spans: widened to whole 4 KiB units, clipped at the volume's end", () => {
  const size = 10 * encryptionUnitBytes + 512
  assert.equal(unitSpan(0, 4096, size), { start: 0, end: 4096 })
  assert.equal(unitSpan(100, 10, size), { start: 0, end: 4096 })
  assert.equal(unitSpan(4000, 200, size), { start: 0, end: 8192 })
  assert.equal(unitSpan(size - 10, 10, size), { start: 10 * encryptionUnitBytes, end: size })
  assert.ok(isUnitAligned(8192, 4096, size))
  assert.ok(isUnitAligned(10 * encryptionUnitBytes, 512, size), "the short last unit counts as whole")
  assert.not.ok(isUnitAligned(512, 4096, size))
})

test.run()
