/**
 * The cryptographic primitives (lib/crypt/primitives.ts) from node:crypto, and the key file.
 *
 * XTS: node:crypto's native `aes-256-xts` (OpenSSL) where the runtime has it (Node 20 and 22);
 * Bun 1.4 and Deno 2.9 have no XTS in node:crypto (they answer "Unknown cipher"), so there it is
 * computed from `aes-256-ecb` by lib/crypt/xts.ts — the same ciphertext, checked by the unit
 * tests on every runtime. A runtime with neither fails with `unsupported`.
 *
 * Native XTS needs one cipher object per data unit: the tweak is the IV, and node:crypto cannot
 * change the IV of a cipher in use (~10 µs of CPU per 4 KiB unit here, most of it the object), so
 * on Node runs of 64 KiB or more are computed over ECB instead (`nodeXts`), and big runs go to
 * worker threads (cryptWorkers.ts, `XtsCipher.background`), off the event loop;
 * `nodeCryptoInline` is the same without the threads (simulators: one thread, exact).
 */
import * as crypto from "node:crypto"
import { readFile } from "node:fs/promises"
import { Effect } from "effect"
import { EncryptionError, type CryptoPrimitives, type XtsCipher } from "../crypt/primitives.ts"
import { makeXtsOverEcb, type EcbBlocks } from "../crypt/xts.ts"
import { newKeyFileText, parseKeyFile, type KeyRing } from "../crypt/keys.ts"
import { ensureSecretFile } from "./adminHttp.ts"
import { cryptWorkersAvailable, xtsBackground } from "./cryptWorkers.ts"

const hasCipher = (name: string): boolean => {
  try {
    crypto.createCipheriv(name, Buffer.alloc(name === "aes-256-xts" ? 64 : 32, 1).fill(2, 32), name === "aes-256-ecb" ? null : Buffer.alloc(16))
    return true
  } catch {
    return false
  }
}

const ecb = (decrypt: boolean): EcbBlocks => (key, data) => {
  const cipher = decrypt ? crypto.createDecipheriv("aes-256-ecb", key, null) : crypto.createCipheriv("aes-256-ecb", key, null)
  cipher.setAutoPadding(false)
  const head = cipher.update(data)
  const tail = cipher.final()
  return tail.length === 0 ? head : Buffer.concat([head, tail])
}

/** Runs this long or longer are computed over aes-256-ecb (xts.ts), shorter ones with a native XTS cipher object per unit. */
const overEcbRunBytesMin = 64 * 1024

/**
 * Native XTS, one cipher object per unit (the tweak is its IV): ~2.5 ms of CPU per MiB here, most
 * of it making the objects. XTS over ECB (two ECB calls a run, the tweak mask in JavaScript) took
 * ~1.5 ms per MiB, so runs of `overEcbRunBytesMin` or more take that path (the same bytes; the
 * unit tests compare both). `final()` is not called on the native cipher: OpenSSL's XTS does a
 * unit's whole work in its one `update` and `final` adds nothing but its cost.
 */
const nodeXts = (key: Uint8Array, workers: boolean): XtsCipher => {
  const keyBuffer = Buffer.from(key)
  const tweak = Buffer.alloc(16)
  const overEcb = makeXtsOverEcb(key, ecb(false), ecb(true))
  const run = (decrypt: boolean) => (firstUnit: number, unitBytes: number, data: Uint8Array): Uint8Array => {
    if (data.length >= overEcbRunBytesMin) return (decrypt ? overEcb.decrypt : overEcb.encrypt)(firstUnit, unitBytes, data)
    const out = new Uint8Array(data.length)
    for (let at = 0, unit = firstUnit; at < data.length; at += unitBytes, unit++) {
      tweak.writeUInt32LE(unit >>> 0, 0)
      tweak.writeUInt32LE(Math.floor(unit / 0x1_0000_0000), 4)
      const cipher = decrypt ? crypto.createDecipheriv("aes-256-xts", keyBuffer, tweak) : crypto.createCipheriv("aes-256-xts", keyBuffer, tweak)
      out.set(cipher.update(data.subarray(at, Math.min(data.length, at + unitBytes))), at)
    }
    return out
  }
  const inline = { encrypt: run(false), decrypt: run(true) }
  return workers ? { ...inline, background: xtsBackground(key, inline) } : inline
}

const keyCheckLabel = "replivol key check v1"

const make = (forceEcb: boolean, threads: boolean): CryptoPrimitives | EncryptionError => {
  const native = !forceEcb && hasCipher("aes-256-xts")
  const workers = native && threads && cryptWorkersAvailable()
  if (!native && !hasCipher("aes-256-ecb")) return new EncryptionError({ reason: "unsupported", message: "this runtime's node:crypto has neither aes-256-xts nor aes-256-ecb: encrypted volumes cannot be served here" })
  return {
    xtsImplementation: native ? `node:crypto aes-256-xts (runs of 64 KiB+ over aes-256-ecb${workers ? ", on worker threads" : ""})` : "XTS over node:crypto aes-256-ecb (lib/crypt/xts.ts)",
    xts: native ? (key) => nodeXts(key, workers) : (key) => makeXtsOverEcb(key, ecb(false), ecb(true)),
    seal: (key, plaintext, aad) => {
      const nonce = crypto.randomBytes(12)
      const cipher = crypto.createCipheriv("aes-256-gcm", key, nonce)
      cipher.setAAD(aad)
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
      return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
    },
    open: (key, sealed, aad) => {
      if (sealed.length < 28) return undefined
      try {
        const decipher = crypto.createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12))
        decipher.setAAD(aad)
        decipher.setAuthTag(sealed.subarray(sealed.length - 16))
        return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]))
      } catch {
        return undefined
      }
    },
    keyCheck: (key) => crypto.createHmac("sha256", key).update(keyCheckLabel).digest("hex").slice(0, 16),
    randomBytes: (count) => new Uint8Array(crypto.randomBytes(count)),
  }
}

let cached: CryptoPrimitives | EncryptionError | undefined
/** The primitives of this runtime (native XTS where it exists, big runs on worker threads where they help). */
export const nodeCrypto = (): CryptoPrimitives | EncryptionError => (cached ??= make(false, true))
/** The same with every run inline, on the calling thread (simulators; comparisons in benchmarks). */
export const nodeCryptoInline = (): CryptoPrimitives | EncryptionError => make(false, false)
/** The same, always with XTS computed over ECB, inline (to compare the two paths in tests and benchmarks). */
export const nodeCryptoViaEcb = (): CryptoPrimitives | EncryptionError => make(true, false)

/** A key ring from a key file (`node start --encryption-key-file`); a missing, unreadable or malformed file is an error. */
export const readKeyRing = (path: string): Effect.Effect<KeyRing, EncryptionError> =>
  Effect.gen(function* () {
    const primitives = nodeCrypto()
    if (primitives instanceof EncryptionError) return yield* primitives
    const source = `key file ${path}`
    const read = yield* Effect.promise(() => readFile(path, "utf8").then((text) => ({ text }), (error: NodeJS.ErrnoException) => ({ error })))
    if ("error" in read) {
      return yield* new EncryptionError({ reason: read.error.code === "ENOENT" ? "no-key" : "malformed-key", message: `${source} cannot be read: ${read.error.message}`, cause: read.error })
    }
    const text = read.text
    const key = parseKeyFile(text, source)
    if (key instanceof EncryptionError) return yield* key
    return { crypto: primitives, unwrappingKey: key, source }
  })

/** `cluster up`: the key file in the data directory, created (mode 0600) with a fresh random key the first time. */
export const ensureKeyRing = (path: string): Effect.Effect<KeyRing, EncryptionError> =>
  Effect.gen(function* () {
    const primitives = nodeCrypto()
    if (primitives instanceof EncryptionError) return yield* primitives
    const text = yield* ensureSecretFile(path, () => newKeyFileText(primitives)).pipe(Effect.mapError((error) => new EncryptionError({ reason: "malformed-key", message: error.message })))
    const key = parseKeyFile(text, `key file ${path}`)
    if (key instanceof EncryptionError) return yield* key
    return { crypto: primitives, unwrappingKey: key, source: `key file ${path}` }
  })

/** A node given no key file: it hosts replicas of encrypted volumes (ciphertext) but serves none, saying why. */
export const keyRingWithoutKey = (why = "no --encryption-key-file was given"): KeyRing | EncryptionError => {
  const primitives = nodeCrypto()
  return primitives instanceof EncryptionError ? primitives : { crypto: primitives, unwrappingKey: undefined, source: why }
}
