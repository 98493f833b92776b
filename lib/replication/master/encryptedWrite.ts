/**
 * An encrypted volume's writes: whole cipher units (4 KiB), encrypted off the event loop, queued
 * in the order they took their in-flight permits.
 *
 * A chunk the write covers whole is encrypted at once; one with a partial edge unit is merged with
 * that unit's current plaintext and encrypted under the order lock (queueChunk's `prepare`), so
 * it is ordered against every other write to that unit. Every copy — the master's and every
 * replica's — holds only ciphertext.
 */
import { Deferred, Effect } from "effect"
import { writeChunkBytesMax } from "../../core/limits.ts"
import { unitSpan, type VolumeCipher } from "../../crypt/volumeCipher.ts"
import { MessageType } from "../../wire/index.ts"
import type { VolumeError } from "../errors.ts"
import { storeFailure, type MasterState } from "./state.ts"
import { queueChunk, settleAll, writeChunk } from "./writePipeline.ts"

/** An encrypted write chunk: `seal` gives its ciphertext (absent: `prepare` makes it, under the order lock). */
interface Encrypted {
  readonly seal?: Effect.Effect<Uint8Array>
}

/**
 * Encrypted writes take turns: each is queued (reaches the order lock) after every encrypted
 * write that took a permit before it, as a plain write would be, though their encryption runs
 * concurrently, off the event loop (`encryptBackground`, a worker thread per core). A turn is
 * taken with the in-flight permit, so a write holding a turn never waits for a permit.
 */
export interface Turns {
  last: Deferred.Deferred<void> | undefined
}

const inTurn = (state: MasterState, turns: Turns, offset: number, encrypted: Encrypted, prepare: Effect.Effect<Uint8Array, VolumeError> | undefined) => {
  const previous = turns.last
  const mine = Deferred.makeUnsafe<void>()
  turns.last = mine
  const earlierQueued = previous ? Deferred.await(previous) : Effect.void
  return Effect.gen(function* () {
    const data = encrypted.seal ? yield* encrypted.seal : new Uint8Array(0)
    yield* earlierQueued
    return yield* queueChunk(state, MessageType.Write, offset, data, prepare)
  }).pipe(Effect.ensuring(Effect.andThen(earlierQueued, Deferred.succeed(mine, undefined))))
}

/** The plaintext of the whole unit at `at` (the cipher's zero rule: never written reads as zeros). */
const plainUnit = (state: MasterState, encrypt: VolumeCipher, at: number) =>
  state.store.read(at, Math.min(encrypt.unitBytes, state.visibleBytes - at)).pipe(
    Effect.mapError(storeFailure(state.volume)),
    Effect.map((stored) => encrypt.decrypt(at, stored)),
  )

/** An encrypted write: the whole units it touches, in chunks on unit boundaries. */
export const writeEncrypted = (state: MasterState, turns: Turns, encrypt: VolumeCipher, offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> => {
  const span = unitSpan(offset, data.length, state.visibleBytes, encrypt.unitBytes)
  const chunks: Array<Effect.Effect<void, VolumeError>> = []
  for (let at = span.start; at < span.end; at += writeChunkBytesMax) {
    const end = Math.min(span.end, at + writeChunkBytesMax)
    const from = Math.max(offset, at)
    const to = Math.min(offset + data.length, end)
    const piece = data.subarray(from - offset, to - offset)
    if (from === at && to === end) {
      const sealed = { seal: encrypt.encryptBackground(at, piece) }
      chunks.push(writeChunk(state, at, piece, () => inTurn(state, turns, at, sealed, undefined), [from, to - from]))
      continue
    }
    const lastUnit = Math.floor((end - 1) / encrypt.unitBytes) * encrypt.unitBytes
    const prepare = Effect.gen(function* () {
      const head = from > at ? yield* plainUnit(state, encrypt, at) : undefined
      const tail = to < end ? (lastUnit === at && head ? head : yield* plainUnit(state, encrypt, lastUnit)) : undefined
      const merged = new Uint8Array(end - at)
      if (head) merged.set(head, 0)
      if (tail) merged.set(tail, lastUnit - at)
      merged.set(piece, from - at)
      return yield* encrypt.encryptBackground(at, merged)
    })
    chunks.push(writeChunk(state, at, new Uint8Array(0), () => inTurn(state, turns, at, {}, prepare), [from, to - from]))
  }
  return chunks.length === 1 ? chunks[0]! : settleAll(chunks)
}
