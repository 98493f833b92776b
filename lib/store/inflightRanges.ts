/**
 * Byte ranges with an operation in flight, so a later operation on an overlapping range can wait
 * for them: how a store that sends some writes to the thread pool keeps the BlockStore ordering
 * rule (overlapping writes land in the order they start; a read sees every write that completed
 * before it started, and one it overlaps that started before it).
 *
 * An entry is added synchronously when its operation starts and settled when the operation is
 * over (applied or failed), so the set is exactly the operations not yet over. Bounded by the
 * callers: a store has at most as many operations in flight as its users issue (the master bounds
 * writes in flight per volume, the replica applies one connection's frames in order).
 */
import { Deferred, Effect } from "effect"
import { assert } from "../core/assert.ts"

export interface InflightRange {
  readonly offset: number
  readonly end: number
  readonly done: Deferred.Deferred<void>
}

export class InflightRanges {
  readonly #entries = new Set<InflightRange>()

  /** Number of operations in flight. */
  get size(): number {
    return this.#entries.size
  }

  /** The in-flight operations whose range overlaps [offset, offset + length). */
  overlapping(offset: number, length: number): ReadonlyArray<InflightRange> {
    if (this.#entries.size === 0 || length === 0) return []
    const end = offset + length
    const found: InflightRange[] = []
    for (const entry of this.#entries) if (entry.offset < end && offset < entry.end) found.push(entry)
    return found
  }

  /** Registers an operation on [offset, offset + length) that starts now. */
  add(offset: number, length: number): InflightRange {
    assert(length > 0, "an in-flight range is not empty")
    const entry: InflightRange = { offset, end: offset + length, done: Deferred.makeUnsafe<void>() }
    this.#entries.add(entry)
    return entry
  }

  /** The operation is over (whatever its outcome): operations waiting for it go on. */
  settle(entry: InflightRange): void {
    this.#entries.delete(entry)
    Deferred.doneUnsafe(entry.done, Effect.void)
  }

  /** Waits until every one of `entries` is over. */
  static awaitAll(entries: ReadonlyArray<InflightRange>): Effect.Effect<void> {
    if (entries.length === 0) return Effect.void
    return Effect.forEach(entries, (entry) => Deferred.await(entry.done), { discard: true })
  }
}
