/**
 * Limits of the control store and the checks both implementations run before touching state.
 *
 * The numbers stay inside etcd's defaults (1.5 MiB request, 128 operations per transaction) so
 * that anything the embedded store accepts, etcd accepts too. Oversized input is an expected
 * fault (`ControlError` reason `too-large`); a malformed call (duplicate keys in one
 * transaction, a non-positive TTL) is a caller bug and fails an assertion.
 */
import { Effect } from "effect"
import { assert } from "../core/assert.ts"
import { KiB, MiB } from "../core/limits.ts"
import { ControlError, type Txn } from "./ControlStore.ts"

/** Largest key, in UTF-8 bytes. */
export const keyBytesMax = 1 * KiB
/** Largest value, in UTF-8 bytes. */
export const valueBytesMax = 1 * MiB
/** Compares + puts + deletes in one transaction (etcd's default --max-txn-ops). */
export const txnOpsMax = 128
/** Keys and values of one transaction together (below etcd's default 1.5 MiB request, with room for framing). */
export const txnBytesMax = 1 * MiB + 256 * KiB
/** Longest lease TTL. */
export const leaseTtlMsMax = 24 * 60 * 60 * 1000
/** Events a watcher may have buffered before it fails with `watch-lagged`. */
export const watchBufferEventsMax = 10_000
/** Expired lease ids remembered so that a late keepAlive says `lease-expired`, not `lease-not-found`. */
export const expiredLeasesRememberedMax = 4096

assert(keyBytesMax + valueBytesMax <= txnBytesMax, "a single largest put must fit in a transaction")
assert(txnBytesMax < 1.5 * MiB, "transactions must fit etcd's default request limit")

/** UTF-8 length of a JS string without allocating. */
export const utf8Bytes = (text: string): number => {
  let bytes = 0
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      bytes += 4
      index++
    } else bytes += 3
  }
  return bytes
}

const tooLarge = (message: string) => new ControlError({ reason: "too-large", message })

export const checkKey = (key: string): Effect.Effect<number, ControlError> => {
  assert(key.length > 0, "control store keys are non-empty")
  const bytes = utf8Bytes(key)
  return bytes > keyBytesMax
    ? Effect.fail(tooLarge(`key "${key.slice(0, 64)}…" is ${bytes} bytes; keys are at most ${keyBytesMax} bytes`))
    : Effect.succeed(bytes)
}

export const checkPut = (key: string, value: string): Effect.Effect<number, ControlError> =>
  Effect.flatMap(checkKey(key), (keyBytes) => {
    const bytes = utf8Bytes(value)
    return bytes > valueBytesMax
      ? Effect.fail(tooLarge(`value of key "${key}" is ${bytes} bytes; values are at most ${valueBytesMax} bytes`))
      : Effect.succeed(keyBytes + bytes)
  })

export const checkTtl = (ttlMs: number): void => {
  assert(Number.isFinite(ttlMs) && ttlMs > 0, `lease TTL must be a positive number of ms, got ${ttlMs}`)
  assert(ttlMs <= leaseTtlMsMax, `lease TTL must be at most ${leaseTtlMsMax} ms, got ${ttlMs}`)
}

/** Validates a transaction: sizes (typed error) and shape (assertions). */
export const checkTxn = (txn: Txn): Effect.Effect<void, ControlError> =>
  Effect.gen(function* () {
    const puts = txn.put ?? []
    const deletes = txn.delete ?? []
    const ops = txn.compare.length + puts.length + deletes.length
    if (ops > txnOpsMax) {
      return yield* tooLarge(`transaction has ${ops} compares, puts and deletes; at most ${txnOpsMax} are allowed`)
    }
    const written = new Set<string>()
    let bytes = 0
    for (const op of puts) {
      assert(!written.has(op.key), `key "${op.key}" appears twice in one transaction`)
      written.add(op.key)
      bytes += yield* checkPut(op.key, op.value)
    }
    for (const key of deletes) {
      assert(!written.has(key), `key "${key}" appears twice in one transaction`)
      written.add(key)
      bytes += yield* checkKey(key)
    }
    for (const compare of txn.compare) {
      assert(Number.isInteger(compare.revision) && compare.revision >= 0, "compare revisions are integers >= 0")
      bytes += yield* checkKey(compare.key)
    }
    if (bytes > txnBytesMax) {
      return yield* tooLarge(`transaction carries ${bytes} bytes of keys and values; at most ${txnBytesMax} are allowed`)
    }
  })
