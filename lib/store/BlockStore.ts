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
 * - Growth (`grow`, online resize): the store gets bigger, never smaller. The new bytes read as
 *   zeros (a sparse file is extended, nothing is written), the new size is durable when `grow`
 *   returns, and `sizeBytes` says the new size from then on (so wrappers read it through, never
 *   copy it: `wrapStore`). A smaller size is refused (`shrink`): a copy is never truncated.
 */
import { Data, Effect } from "effect"
import { isInside } from "../core/range.ts"
import { volumeSizeBytesMax } from "../core/limits.ts"

/** Why a store operation failed; users match on `reason`, never on `message`. */
export type StoreErrorReason = "out-of-range" | "io" | "no-space" | "closed" | "size-mismatch" | "corrupt-meta" | "exists" | "shrink"

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

/** A copy's continuity across process restarts of its node (lib/store/continuity.ts). */
export interface Continuity {
  /**
   * Earlier process incarnations whose writes the copy provably still holds (they stopped, the
   * machine did not lose power and the disk was not replaced since); empty: none, and empty
   * again after any failed write, fdatasync or grow of this open.
   */
  readonly continuedFrom: () => ReadonlyArray<number>
  /** The copy provably holds what process `incarnation` wrote: it is this process or one `continuedFrom` names, and no write, fdatasync or grow of this open failed. */
  readonly holdsWritesOf: (incarnation: number) => boolean
  /** The epoch at which a process in that chain (or this one) served the copy as master, if any. */
  readonly servedEpoch: () => number | undefined
  /** This process serves the copy as master at `epoch` (kept for its successors). */
  readonly noteServed: (epoch: number) => Effect.Effect<void>
}

export interface BlockStore {
  /** The current size (it changes only by `grow`). */
  readonly sizeBytes: number
  /** True when this open created the backing storage: it holds only zeros and no meta record. */
  readonly createdEmpty?: boolean
  /** What this copy proves about earlier processes of its node (lib/store/continuity.ts); absent: nothing. */
  readonly continuity?: Continuity
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, StoreError>
  readonly write: (offset: number, data: Uint8Array) => Effect.Effect<void, StoreError>
  /** Durable: every write completed before the flush survives a crash (fdatasync for files). */
  readonly flush: Effect.Effect<void, StoreError>
  readonly close: Effect.Effect<void>
  readonly readMeta: Effect.Effect<StoreMeta | undefined, StoreError>
  /**
   * Durable and atomic. Refuses a record whose sizeBytes is not the store's (`size-mismatch`).
   * `readMeta` also accepts a record of a smaller size: what a crash between `grow` and the
   * record's rewrite leaves (the bytes past the record's size are the zeros `grow` added).
   */
  readonly writeMeta: (meta: StoreMeta) => Effect.Effect<void, StoreError>
  /**
   * Grows the store to `sizeBytes` (new bytes read as zeros), durably. Equal to the current size:
   * nothing happens. Smaller: `shrink`; above volumeSizeBytesMax or not an integer: `out-of-range`.
   * The meta record is left as it is (its owner rewrites it with the new size).
   */
  readonly grow: (sizeBytes: number) => Effect.Effect<void, StoreError>
}

/** Why a store of `currentBytes` cannot grow to `nextBytes`, or undefined when it can (or is that size already). */
export function checkGrow(path: string | undefined, currentBytes: number, nextBytes: number): StoreError | undefined {
  if (!Number.isSafeInteger(nextBytes) || nextBytes < 0 || nextBytes > volumeSizeBytesMax)
    return new StoreError({ reason: "out-of-range", path, message: `cannot grow the store${path === undefined ? "" : ` ${path}`} to ${nextBytes} bytes: allowed an integer from ${currentBytes} to ${volumeSizeBytesMax}` })
  if (nextBytes < currentBytes)
    return new StoreError({ reason: "shrink", path, message: `cannot shrink the store${path === undefined ? "" : ` ${path}`} from ${currentBytes} to ${nextBytes} bytes: a copy only grows (allowed: ${currentBytes} bytes or more)` })
  return undefined
}

/**
 * A store with some operations replaced (instrumentation, fault gates) whose `sizeBytes` reads
 * through to `store`: a spread would copy the size once and miss every later `grow`.
 */
export function wrapStore(store: BlockStore, overrides: Partial<Omit<BlockStore, "sizeBytes">>): BlockStore {
  const wrapped: Omit<BlockStore, "sizeBytes"> = {
    ...(store.createdEmpty === undefined ? {} : { createdEmpty: store.createdEmpty }),
    ...(store.continuity === undefined ? {} : { continuity: store.continuity }),
    read: store.read, write: store.write, flush: store.flush, close: store.close, readMeta: store.readMeta, writeMeta: store.writeMeta, grow: store.grow,
    ...overrides,
  }
  return Object.defineProperty(wrapped, "sizeBytes", { get: () => store.sizeBytes, enumerable: true }) as BlockStore
}

/**
 * `store` whose `createdEmpty` turns false at its first write: a copy this open created holds only
 * zeros until something is written to it. Read once at open, the flag made a copy that had served
 * as master in this process look never written when it was hosted as a replica afterwards: its
 * activity log started known and empty, and the catch-up of the next master missed the writes its
 * fenced session had made locally (cluster simulator seed 3013: an in-sync replica differed).
 */
export function emptyUntilWritten(store: BlockStore): BlockStore {
  if (store.createdEmpty !== true) return store
  let written = false
  const wrapped = wrapStore(store, { write: (offset, data) => Effect.suspend(() => ((written = true), store.write(offset, data))) })
  return Object.defineProperty(wrapped, "createdEmpty", { get: () => !written, enumerable: true })
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
