/**
 * The block store contract: a fixed-size array of bytes with durable flush and a small metadata
 * record, behind which every copy of a volume (master or replica) keeps its data.
 *
 * Why one contract: replication, resync and the simulator only ever see `BlockStore`, so the
 * in-memory store (tests, simulator) and the file store (real nodes) are interchangeable and pass
 * one compliance suite (test/unit/store/contract.ts).
 *
 * Rules every implementation keeps:
 * - Range: offset and length are non-negative safe integers and offset + length ≤ sizeBytes,
 *   else `StoreError` with reason `out-of-range`. Zero-length reads and writes are no-ops.
 * - Ordering: writes are applied in the order their Effects start running (for effects started
 *   in a loop — `runFork`, `forkChild`, `Effect.forEach` with concurrency — that is call order),
 *   even when many are in flight at once. Replication relies on overlapping writes landing in
 *   that order, so an implementation applies the bytes synchronously when the effect starts.
 * - Visibility: a read sees every write whose Effect completed.
 * - Ownership: `write` copies its bytes (the caller may reuse the buffer once the effect
 *   completes); `read` returns a fresh array the caller owns.
 * - Durability: after `flush` completes, every write completed before it survives a crash.
 *   `writeMeta` is durable and atomic by itself: after a crash the old or the new record is
 *   there, never a mix.
 * - After `close`, every operation fails with reason `closed`; `close` itself is idempotent.
 */
import { Data, type Effect } from "effect"
import { isInside } from "../core/range.ts"

/** Why a store operation failed; users match on `reason`, never on `message`. */
export type StoreErrorReason = "out-of-range" | "io" | "no-space" | "closed" | "size-mismatch" | "corrupt-meta" | "exists"

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly reason: StoreErrorReason
  /** The backing file, or undefined for an in-memory store. */
  readonly path: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {}

/** The persistent identity and role of one copy of a volume, kept next to its data. */
export interface StoreMeta {
  readonly volume: string
  readonly sizeBytes: number
  readonly epoch: number
  readonly role: "master" | "replica"
  /** The copy's state as lib/replication/copyIdentity.ts names it (`empty`, `incomplete`, `complete`). */
  readonly state: string
  readonly updatedAtMs: number
  /** The volume's unique id (fresh at every create): a re-created name is another volume. */
  readonly uid?: string
  /** The master session this copy last served or followed (see copyIdentity.ts). */
  readonly generation?: string
}

export interface BlockStore {
  readonly sizeBytes: number
  /** True when this open created the backing storage: it holds only zeros and no meta record. */
  readonly createdEmpty?: boolean
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, StoreError>
  readonly write: (offset: number, data: Uint8Array) => Effect.Effect<void, StoreError>
  /** Durable: every write completed before the flush survives a crash (fdatasync for files). */
  readonly flush: Effect.Effect<void, StoreError>
  readonly close: Effect.Effect<void>
  readonly readMeta: Effect.Effect<StoreMeta | undefined, StoreError>
  /** Durable and atomic. Refuses a record whose sizeBytes is not the store's (`size-mismatch`). */
  readonly writeMeta: (meta: StoreMeta) => Effect.Effect<void, StoreError>
}

/**
 * The range rule shared by every store: returns the error to fail with, or undefined when
 * `offset`/`length` address bytes inside a store of `sizeBytes`.
 */
export function checkRange(path: string | undefined, sizeBytes: number, offset: number, length: number): StoreError | undefined {
  if (isInside(sizeBytes, offset, length)) return undefined
  return new StoreError({
    reason: "out-of-range",
    path,
    message:
      `range offset ${offset}, length ${length} is outside the store of ${sizeBytes} bytes` +
      ` (offset and length must be non-negative integers with offset + length ≤ ${sizeBytes})`,
  })
}

/** The error every operation after `close` fails with. */
export function closedError(path: string | undefined, operation: string): StoreError {
  return new StoreError({ reason: "closed", path, message: `${operation} on a closed store${path === undefined ? "" : ` (${path})`}; open it again` })
}
