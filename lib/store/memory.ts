/**
 * An in-memory BlockStore for tests and the simulator, with power-loss and fault injection.
 *
 * Why: the whole cluster runs in one process in the simulator, so every replica needs a store
 * that costs only what is written (sparse 16 KiB pages, allocated on first write: a 1 GiB volume
 * in a test holds a few pages) and that can lose exactly what a real disk loses on power failure.
 * Pages live in two layers: a durable map and a volatile overlay. A write goes to the overlay
 * (copy-on-write of the durable page), `flush` moves the overlay into the durable map, `crash()`
 * drops the overlay. Zeros written into a hole allocate nothing (a hole already reads as zeros), so
 * a full sync of a sparse volume costs only its data. Faults (`failNext`) fail one operation with a
 * typed reason; a faulted write may first apply a prefix (a torn write), a faulted flush may first
 * drop the unflushed pages (what Linux may do to the page cache after a failed fdatasync).
 * `image()`/`restore()` take and put back what is on the disk (durable pages and meta): a copy
 * restored from an older backup. Pure: no node:* import, no clock, no randomness.
 */
import { Effect } from "effect"
import { KiB, volumeSizeBytesMax } from "../core/limits.ts"
import { crc32c } from "../core/checksum.ts"
import { assert } from "../core/assert.ts"
import { type BlockStore, checkGrow, checkRange, closedError, StoreError, type StoreErrorReason, type StoreMeta } from "./BlockStore.ts"
import { checkMetaForWrite } from "./meta.ts"

/** Allocation unit of the memory store (small: the simulator writes 4 KiB blocks all over big sparse volumes). */
export const memoryPageBytes = 16 * KiB

/** The operations a fault from `failNext` can be aimed at. */
export type MemoryStoreOperation = "read" | "write" | "flush" | "readMeta" | "writeMeta" | "grow"

export interface MemoryStore extends BlockStore {
  readonly name: string
  /** Bytes of pages allocated (durable or volatile); a sparse store holds only what was written. */
  readonly allocatedBytes: number
  /** The whole contents as seen by reads (allocates sizeBytes: for tests of small volumes). */
  readonly snapshot: () => Uint8Array
  /**
   * A cheap fingerprint of the contents as seen by reads: equal contents give equal digests,
   * whatever was allocated; different contents differ except with probability ~2^-32 (CRC-32C).
   */
  readonly digest: () => string
  /** Power loss: drops every write not covered by a completed flush, and reopens a closed store. */
  readonly crash: () => void
  /** Reopens a closed store with everything in it (a process restart: the page cache survives). */
  readonly reopen: () => void
  /** Makes the next operation (of kind `operation`, or of any kind) fail with `reason`, once. */
  readonly failNext: (reason: StoreErrorReason, options?: FaultOptions) => void
  /** Drops every fault not fired yet. */
  readonly clearFaults: () => void
  /** The contents as seen by reads, whatever the store's state (closed or not): for checkers. */
  readonly peek: (offset: number, length: number) => Uint8Array
  /** What is on the disk now: the durable pages and the meta record (not the unflushed writes). */
  readonly image: () => MemoryStoreImage
  /** Replaces the disk with `image` (an older copy restored, at the size it had then): unflushed writes are dropped too. */
  readonly restore: (image: MemoryStoreImage) => void
}

export interface FaultOptions {
  readonly operation?: MemoryStoreOperation
  /** A faulted write first applies this many leading bytes (a torn write), then fails. */
  readonly partialBytes?: number
  /** A faulted flush first drops every unflushed write (the page cache lost them), then fails. */
  readonly dropUnflushed?: boolean
  /** Told when the fault fires (checkers account for what it destroyed). */
  readonly onFired?: () => void
}

/** A disk's contents at one moment: durable pages (shared, never changed in place) and meta. */
export interface MemoryStoreImage {
  readonly sizeBytes: number
  readonly pages: ReadonlyMap<number, Uint8Array>
  readonly meta: StoreMeta | undefined
}

interface Fault extends FaultOptions {
  readonly reason: StoreErrorReason
}

/**
 * Sparse bytes in two layers: durable pages and a volatile overlay of pages written since the
 * last `persist`. Reads see the overlay first. Ranges are checked by the caller.
 */
class LayeredPages {
  readonly #durable = new Map<number, Uint8Array>()
  readonly #volatile = new Map<number, Uint8Array>()

  get allocatedBytes(): number {
    return this.#pageIndexes().length * memoryPageBytes
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length)
    forEachPiece(offset, length, (pageIndex, inPage, position, pieceBytes) => {
      const page = this.#visible(pageIndex)
      if (page !== undefined) out.set(page.subarray(inPage, inPage + pieceBytes), position)
    })
    return out
  }

  write(offset: number, data: Uint8Array): void {
    forEachPiece(offset, data.length, (pageIndex, inPage, position, pieceBytes) => {
      const piece = data.subarray(position, position + pieceBytes)
      // Zeros into a hole change nothing a read can see: the page stays unallocated.
      if (this.#visible(pageIndex) === undefined && isZero(piece)) return
      this.#writable(pageIndex).set(piece, inPage)
    })
  }

  /** The durable pages (page arrays are replaced, never changed in place, so sharing them is safe). */
  durablePages(): ReadonlyMap<number, Uint8Array> {
    return new Map(this.#durable)
  }

  /** Replaces every page with `pages` (durable) and drops the overlay. */
  replace(pages: ReadonlyMap<number, Uint8Array>): void {
    this.#volatile.clear()
    this.#durable.clear()
    for (const [pageIndex, page] of pages) this.#durable.set(pageIndex, page)
  }

  /** Makes every volatile page durable (what a completed flush guarantees). */
  persist(): void {
    for (const [pageIndex, page] of this.#volatile) this.#durable.set(pageIndex, page)
    this.#volatile.clear()
  }

  /** Drops every volatile page (power loss). */
  dropVolatile(): void {
    this.#volatile.clear()
  }

  /** CRC-32C over (page index, visible page bytes) of every non-zero page in ascending order. */
  digest(sizeBytes: number): string {
    const indexBytes = new Uint8Array(8)
    const indexView = new DataView(indexBytes.buffer)
    let crc = 0
    for (const pageIndex of this.#pageIndexes()) {
      const page = this.#visible(pageIndex)!
      const visible = page.subarray(0, Math.min(memoryPageBytes, sizeBytes - pageIndex * memoryPageBytes))
      if (isZero(visible)) continue
      indexView.setFloat64(0, pageIndex, true)
      crc = crc32c(visible, crc32c(indexBytes, crc))
    }
    return `${sizeBytes.toString(16)}-${crc.toString(16).padStart(8, "0")}`
  }

  #visible(pageIndex: number): Uint8Array | undefined {
    return this.#volatile.get(pageIndex) ?? this.#durable.get(pageIndex)
  }

  /** The overlay page, made on first write as a copy of the durable page (or zeros). */
  #writable(pageIndex: number): Uint8Array {
    let page = this.#volatile.get(pageIndex)
    if (page === undefined) {
      const base = this.#durable.get(pageIndex)
      page = base === undefined ? new Uint8Array(memoryPageBytes) : base.slice()
      this.#volatile.set(pageIndex, page)
    }
    return page
  }

  #pageIndexes(): number[] {
    return [...new Set([...this.#durable.keys(), ...this.#volatile.keys()])].sort((a, b) => a - b)
  }
}

/** Calls `visit` for each page-sized piece of [offset, offset + length). */
function forEachPiece(offset: number, length: number, visit: (pageIndex: number, inPage: number, position: number, pieceBytes: number) => void) {
  let position = 0
  while (position < length) {
    const absolute = offset + position
    const pageIndex = Math.floor(absolute / memoryPageBytes)
    const inPage = absolute - pageIndex * memoryPageBytes
    const pieceBytes = Math.min(memoryPageBytes - inPage, length - position)
    visit(pageIndex, inPage, position, pieceBytes)
    position += pieceBytes
  }
}

function isZero(bytes: Uint8Array): boolean {
  // Word by word when aligned (pages and sync chunks are): a zero check runs over whole syncs.
  if (bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
    for (let index = 0; index < words.length; index++) if (words[index] !== 0) return false
    return true
  }
  for (let index = 0; index < bytes.length; index++) if (bytes[index] !== 0) return false
  return true
}

export function makeMemoryStore(initialSizeBytes: number, options?: { readonly name?: string }): MemoryStore {
  assert(Number.isSafeInteger(initialSizeBytes) && initialSizeBytes >= 0 && initialSizeBytes <= volumeSizeBytesMax, `memory store size ${initialSizeBytes} within 0..${volumeSizeBytesMax}`)
  // Changed only by `grow` (durable at once: a grown size survives `crash`) and `restore`.
  let sizeBytes = initialSizeBytes
  const name = options?.name ?? "memory"
  const pages = new LayeredPages()
  const faults: Fault[] = []
  let meta: StoreMeta | undefined
  let closed = false

  /** Runs `run` unless the store is closed, a fault is due, or the range is bad. */
  const guarded = <A>(operation: MemoryStoreOperation, offset: number, length: number, run: () => A, data?: Uint8Array) =>
    Effect.suspend((): Effect.Effect<A, StoreError> => {
      if (closed) return Effect.fail(closedError(undefined, `${operation} of memory store "${name}"`))
      const error = checkRange(undefined, sizeBytes, offset, length)
      if (error !== undefined) return Effect.fail(error)
      const faultIndex = faults.findIndex((f) => f.operation === undefined || f.operation === operation)
      if (faultIndex >= 0) return Effect.fail(fire(faults.splice(faultIndex, 1)[0]!, operation, offset, data))
      return Effect.succeed(run())
    })

  /** Does what the fault does before failing (a torn write, a dropped page cache) and names it. */
  const fire = (fault: Fault, operation: MemoryStoreOperation, offset: number, data: Uint8Array | undefined): StoreError => {
    if (operation === "write" && fault.partialBytes !== undefined && data !== undefined) pages.write(offset, data.subarray(0, Math.min(fault.partialBytes, data.length)))
    if (operation === "flush" && fault.dropUnflushed === true) pages.dropVolatile()
    fault.onFired?.()
    return new StoreError({ reason: fault.reason, path: undefined, message: `injected ${fault.reason} fault on ${operation} of memory store "${name}"` })
  }

  return {
    name,
    get sizeBytes() {
      return sizeBytes
    },
    read: (offset, length) => guarded("read", offset, length, () => pages.read(offset, length)),
    // Applied synchronously when the effect starts: writes land in the order they start.
    write: (offset, data) => guarded("write", offset, data.length, () => pages.write(offset, data), data),
    flush: guarded("flush", 0, 0, () => pages.persist()),
    close: Effect.sync(() => void (closed = true)),
    readMeta: guarded("readMeta", 0, 0, () => meta),
    writeMeta: (next) =>
      Effect.flatMap(guarded("writeMeta", 0, 0, () => checkMetaForWrite(next, undefined, sizeBytes)), (error) => {
        if (error !== undefined) return Effect.fail(error)
        meta = Object.freeze({ ...next })
        return Effect.void
      }),
    grow: (next) =>
      Effect.flatMap(guarded("grow", 0, 0, () => checkGrow(undefined, sizeBytes, next)), (error) => {
        if (error !== undefined) return Effect.fail(error)
        // Pages are allocated on write: the new bytes are holes, read as zeros.
        sizeBytes = next
        return Effect.void
      }),
    get allocatedBytes() {
      return pages.allocatedBytes
    },
    snapshot: () => pages.read(0, sizeBytes),
    digest: () => pages.digest(sizeBytes),
    reopen: () => void (closed = false),
    crash: () => {
      pages.dropVolatile()
      closed = false
    },
    failNext: (reason, faultOptions) => void faults.push({ ...faultOptions, reason }),
    clearFaults: () => void faults.splice(0),
    peek: (offset, length) => {
      assert(checkRange(undefined, sizeBytes, offset, length) === undefined, `peek of ${length} bytes at ${offset} inside ${sizeBytes}`)
      return pages.read(offset, length)
    },
    image: () => ({ sizeBytes, pages: pages.durablePages(), meta }),
    restore: (image) => {
      sizeBytes = image.sizeBytes
      pages.replace(image.pages)
      meta = image.meta
    },
  }
}
