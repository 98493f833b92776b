/**
 * Reusable memory for received frame bodies.
 *
 * Why: a 1 MiB Write arrives in many socket chunks, so the decoder gathers its body into one
 * array. A fresh 1 MiB array per frame costs more than the copy into it (page faults of fresh
 * memory on this kind of VM, then the garbage collector: a third of a replica's CPU in the
 * profiles), so a receiver that knows when it is done with a body (the replica, once the store
 * write completed: a store never keeps the caller's bytes) gives it back, and the next body that
 * spans chunks is gathered into the same slab. A body never given back is simply garbage.
 *
 * Rules: a slab is handed out once until it is given back; giving back anything else (a view of
 * a socket chunk, a decompressed body, a slab twice) does nothing. At most `slabsMax` slabs are
 * kept free.
 */
import { assert } from "../core/assert.ts"

export class BodyPool {
  readonly #free: ArrayBuffer[] = []
  /** Slabs handed out and not given back yet. */
  readonly #out = new Set<ArrayBuffer>()

  constructor(readonly slabBytes: number, readonly slabsMax: number) {
    assert(Number.isSafeInteger(slabBytes) && slabBytes > 0 && Number.isSafeInteger(slabsMax) && slabsMax >= 0, "a body pool has a positive slab size and a slab count")
  }

  /**
   * `bytes` bytes to gather a body into (a slab's first bytes), or undefined when it does not fit
   * a slab or is under a sixteenth of one (a small body gets its own small array: a slab for it
   * would multiply the memory a peer can make us hold).
   */
  take(bytes: number): Uint8Array | undefined {
    if (bytes > this.slabBytes || bytes * 16 < this.slabBytes) return undefined
    const slab = this.#free.pop() ?? new ArrayBuffer(this.slabBytes)
    this.#out.add(slab)
    return new Uint8Array(slab, 0, bytes)
  }

  /** The receiver is done with `body`: if it is a slab of this pool handed out, it may be reused. */
  give(body: Uint8Array): void {
    const slab = body.buffer
    if (!(slab instanceof ArrayBuffer) || !this.#out.delete(slab)) return
    if (this.#free.length < this.slabsMax) this.#free.push(slab)
  }

  /** Slabs kept free now (for tests). */
  get freeCount(): number {
    return this.#free.length
  }
}
