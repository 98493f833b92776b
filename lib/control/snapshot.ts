/**
 * The embedded store's persisted form: a versioned JSON document of its non-leased keys and
 * counters, and the `SnapshotStorage` interface through which it is read and written.
 *
 * Decoding validates everything (types, revision order, limits) so that a damaged or foreign file
 * is a `corrupt` ControlError naming the file, never a crash or a half-loaded store. The storage
 * itself (atomic file writes) lives in lib/platform/fileSnapshot.ts; this module is pure.
 */
import { Effect, Schema } from "effect"
import { ControlError } from "./ControlStore.ts"
import type { KeySpaceSnapshot } from "./keySpace.ts"
import { keyBytesMax, utf8Bytes, valueBytesMax } from "./limits.ts"

export const snapshotFormat = "replivol-control-store/1"

/** Where a snapshot lives. `read` gives undefined when there is none yet. */
export interface SnapshotStorage {
  /** Names the storage in messages (a file path). */
  readonly name: string
  readonly read: Effect.Effect<string | undefined, ControlError>
  /** Durable when it returns (the file implementation writes a temporary file, fsyncs, renames). */
  readonly write: (text: string) => Effect.Effect<void, ControlError>
}

const Revision = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

const SnapshotDocument = Schema.Struct({
  format: Schema.Literal(snapshotFormat),
  revision: Revision,
  leaseSeq: Revision,
  entries: Schema.Array(
    Schema.Struct({ key: Schema.String, value: Schema.String, revision: Revision, createRevision: Revision }),
  ),
})

export const encodeSnapshot = (snapshot: KeySpaceSnapshot): string =>
  JSON.stringify({ format: snapshotFormat, ...snapshot })

const corrupt = (name: string, what: string, cause?: unknown) =>
  new ControlError({
    reason: "corrupt",
    message: `control store file ${name} is corrupt: ${what}; expected a ${snapshotFormat} JSON document (move it away to start empty)`,
    cause,
  })

/** Checks what the schema cannot: ordering of revisions, unique keys, sizes. Returns a problem or undefined. */
const problemOf = (snapshot: KeySpaceSnapshot): string | undefined => {
  const seen = new Set<string>()
  for (const entry of snapshot.entries) {
    if (seen.has(entry.key)) return `key "${entry.key}" appears twice`
    seen.add(entry.key)
    if (entry.key.length === 0 || utf8Bytes(entry.key) > keyBytesMax) return `key "${entry.key.slice(0, 64)}" has a bad size`
    if (utf8Bytes(entry.value) > valueBytesMax) return `value of key "${entry.key}" is too large`
    if (!(entry.createRevision >= 1 && entry.createRevision <= entry.revision && entry.revision <= snapshot.revision)) {
      return `key "${entry.key}" has revisions out of order`
    }
  }
  return undefined
}

export const decodeSnapshot = (name: string, text: string): Effect.Effect<KeySpaceSnapshot, ControlError> =>
  Effect.gen(function* () {
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: (cause) => corrupt(name, "not JSON", cause) })
    const document = yield* Schema.decodeUnknownEffect(SnapshotDocument)(json).pipe(
      Effect.mapError((cause) => corrupt(name, `bad shape (${String(cause.message).split("\n")[0]})`, cause)),
    )
    const snapshot: KeySpaceSnapshot = { revision: document.revision, leaseSeq: document.leaseSeq, entries: document.entries }
    const problem = problemOf(snapshot)
    if (problem !== undefined) return yield* corrupt(name, problem)
    return snapshot
  })
