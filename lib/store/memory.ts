/**
 * An in-memory BlockStore for tests and the simulator, with power-loss and fault injection.
 *
 * Why: the whole cluster runs in one process in the simulator, so every replica needs a store
 * that costs only what is written (sparse 64 KiB pages, allocated on first write: a 1 GiB volume
 * in a test holds a few pages) and that can lose exactly what a real disk loses on power failure.
 * Pages live in two layers: a durable map and a volatile overlay. A write goes to the overlay
 * (copy-on-write of the durable page), `flush` moves the overlay into the durable map, `crash()`
 * drops the overlay. Pure: no node:* import, no clock, no randomness.
 */
import { Effect } from "effect"
import { KiB, volumeSizeBytesMax } from "../core/limits.ts"
import { crc32c } from "../core/checksum.ts"
import { assert } from "../core/assert.ts"
import { type BlockStore, checkRange, closedError, StoreError, type StoreErrorReason, type StoreMeta } from "./BlockStore.ts"
import { checkMetaForWrite } from "./meta.ts"

/** Allocation unit of the memory store. */
export const memoryPageBytes = 64 * KiB

/** The operations a fault from `failNext` can be aimed at. */
export type MemoryStoreOperation = "read" | "write" | "flush" | "readMeta" | "writeMeta"

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
  /** Makes the next operation (of kind `operation`, or of any kind) fail with `reason`, once. */
  readonly failNext: (reason: StoreErrorReason, options?: { readonly operation?: MemoryStoreOperation }) => void
}

interface Fault {
  readonly reason: StoreErrorReason
  readonly operation: MemoryStoreOperation | undefined
}

export function makeMemoryStore(sizeBytes: number, options?: { readonly name?: string }): MemoryStore {
  assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0 && sizeBytes <= volumeSizeBytesMax, `memory store size ${sizeBytes} within 0..${volumeSizeBytesMax}`)
  const name = options?.name ?? "memory"
  const durable = new Map<number, Uint8Array>()
  const volatile = new Map<number, Uint8Array>()
  const faults: Fault[] = []
  let meta: StoreMeta | undefined
  let closed = false

  /** The error this operation must fail with now (closed, injected, out of range), if any. */
  const guard = (operation: MemoryStoreOperation, offset = 0, length = 0): StoreError | undefined => {
    if (closed) return closedError(undefined, `${operation} of memory store "${name}"`)
    const faultIndex = faults.findIndex((f) => f.operation === undefined || f.operation === operation)
    if (faultIndex >= 0) {
      const [fault] = faults.splice(faultIndex, 1)
      return new StoreError({ reason: fault!.reason, path: undefined, message: `injected ${fault!.reason} fault on ${operation} of memory store "${name}"` })
    }
    return checkRange(undefined, sizeBytes, offset, length)
  }

  const writablePage = (pageIndex: number): Uint8Array => {
    let page = volatile.get(pageIndex)
    if (page === undefined) {
      const base = durable.get(pageIndex)
      page = base === undefined ? new Uint8Array(memoryPageBytes) : base.slice()
      volatile.set(pageIndex, page)
    }
    return page
  }

  /** Calls `visit` for each page-sized piece of [offset, offset + length). */
  const eachPiece = (offset: number, length: number, visit: (pageIndex: number, inPage: number, position: number, pieceBytes: number) => void) => {
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

  const readNow = (offset: number, length: number): Uint8Array => {
    const out = new Uint8Array(length)
    eachPiece(offset, length, (pageIndex, inPage, position, pieceBytes) => {
      const page = volatile.get(pageIndex) ?? durable.get(pageIndex)
      if (page !== undefined) out.set(page.subarray(inPage, inPage + pieceBytes), position)
    })
    return out
  }

  const read = (offset: number, length: number) =>
    Effect.suspend(() => {
      const error = guard("read", offset, length)
      return error === undefined ? Effect.succeed(readNow(offset, length)) : Effect.fail(error)
    })

  // Applied synchronously when the effect starts: writes land in the order they start.
  const write = (offset: number, data: Uint8Array) =>
    Effect.suspend(() => {
      const error = guard("write", offset, data.length)
      if (error !== undefined) return Effect.fail(error)
      eachPiece(offset, data.length, (pageIndex, inPage, position, pieceBytes) =>
        writablePage(pageIndex).set(data.subarray(position, position + pieceBytes), inPage))
      return Effect.void
    })

  const flush = Effect.suspend(() => {
    const error = guard("flush")
    if (error !== undefined) return Effect.fail(error)
    for (const [pageIndex, page] of volatile) durable.set(pageIndex, page)
    volatile.clear()
    return Effect.void
  })

  const readMeta = Effect.suspend(() => {
    const error = guard("readMeta")
    return error === undefined ? Effect.succeed(meta) : Effect.fail(error)
  })

  const writeMeta = (next: StoreMeta) =>
    Effect.suspend(() => {
      const error = guard("writeMeta") ?? checkMetaForWrite(next, undefined, sizeBytes)
      if (error !== undefined) return Effect.fail(error)
      meta = Object.freeze({ ...next })
      return Effect.void
    })

  return {
    name,
    sizeBytes,
    read,
    write,
    flush,
    close: Effect.sync(() => void (closed = true)),
    readMeta,
    writeMeta,
    get allocatedBytes() {
      return new Set([...durable.keys(), ...volatile.keys()]).size * memoryPageBytes
    },
    snapshot: () => readNow(0, sizeBytes),
    digest: () => digestPages(sizeBytes, durable, volatile),
    crash: () => {
      volatile.clear()
      closed = false
    },
    failNext: (reason, faultOptions) => void faults.push({ reason, operation: faultOptions?.operation }),
  }
}

/** CRC-32C over (page index, page bytes) of every non-zero page in ascending order, with the size. */
function digestPages(sizeBytes: number, durable: ReadonlyMap<number, Uint8Array>, volatile: ReadonlyMap<number, Uint8Array>): string {
  const indexes = [...new Set([...durable.keys(), ...volatile.keys()])].sort((a, b) => a - b)
  const indexBytes = new Uint8Array(8)
  const indexView = new DataView(indexBytes.buffer)
  let crc = 0
  for (const pageIndex of indexes) {
    const page = volatile.get(pageIndex) ?? durable.get(pageIndex)!
    const visible = page.subarray(0, Math.min(memoryPageBytes, sizeBytes - pageIndex * memoryPageBytes))
    if (isZero(visible)) continue
    indexView.setFloat64(0, pageIndex, true)
    crc = crc32c(visible, crc32c(indexBytes, crc))
  }
  return `${sizeBytes.toString(16)}-${crc.toString(16).padStart(8, "0")}`
}

function isZero(bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) if (bytes[index] !== 0) return false
  return true
}
