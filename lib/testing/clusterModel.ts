/**
 * What the cluster simulator's checkers know of each volume: for every block, which contents a
 * correct cluster may show, and which copies hold every acknowledged write.
 *
 * Per block: the last acknowledged write; writes issued after it and not acknowledged (they may
 * or may not have landed, a torn one sector by sector, byte by byte where it ended); and values a legitimate loss may have
 * brought back. A loss is legitimate only when the last copy holding the acknowledged writes lost
 * its page cache (power loss, or an fdatasync that dropped it): then every write not yet covered by
 * a successful flush may roll back to what the last flush made durable — and so may a write its
 * master acknowledged before the loss whose acknowledgement reached the application only after it.
 * What the last flush made durable may also be a write that failed (it landed all the same) before
 * an acknowledged write no flush has covered yet.
 * Anything else that reads back other than these is a lost acknowledged write.
 *
 * Holders: the copies the cluster's own records say hold every acknowledged write — the master
 * and in-sync replicas — minus the copies a fault damaged since they last became in sync. The
 * fault generator never wipes or rolls back the last holder (that loss would be the disk's fault,
 * not the cluster's), and a power loss of the last holder is the one legitimate loss above.
 * Records are read as typed data from the control store's commits, never from event text.
 *
 * Spec: a volume's spec (replica count, failure mode and tolerance, nocompress, hint) changes only
 * by a `volume update`: a committed record may change it only to the spec of an update under way
 * (`updatesInFlight`), so an older spec written back by another writer is seen at its commit.
 */
import type { VolumeRecord } from "../cluster/records.ts"
import type { VolumeSpec } from "../volume/labels.ts"

export const blockBytes = 4096
export const sectorBytes = 512

interface BlockState {
  /** The last acknowledged write (undefined: never acknowledged; reads as zeros). */
  acked: Uint8Array | undefined
  /** Acknowledged writes not yet covered by a successful flush, oldest first, with their ack number. */
  unflushed: Array<{ readonly data: Uint8Array; readonly ackIndex: number }>
  /** What the last flush covering this block made durable (undefined: zeros). */
  durable: Uint8Array | undefined
  /** Writes issued after the last acknowledgement and not acknowledged: possibly landed, possibly torn. */
  inflight: Uint8Array[]
  /** Older values a legitimate loss may have brought back. */
  lossAllowed: Uint8Array[]
  /** A master acknowledged the write in flight (its acknowledgement is still on its way to the application). */
  masterAcked: boolean
  /** A legitimate loss came after that acknowledgement: the write may be gone once the application sees it acknowledged. */
  ackedBeforeLoss: boolean
  /**
   * Writes that failed (possibly landed, and a later flush made them durable) before the acknowledged
   * write of ack number `before`, kept until a flush covers that write: a loss may roll back to them.
   */
  failedBefore: Array<{ readonly data: Uint8Array; readonly before: number }>
}

const zeros = new Uint8Array(blockBytes)

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false
  return true
}

/** Whether two specs ask for the same thing (every field a volume update or a creation sets). */
export const sameSpec = (a: VolumeSpec, b: VolumeSpec): boolean =>
  a.replicas === b.replicas && a.failureMode === b.failureMode && a.failureTolerance === b.failureTolerance && a.nocompress === b.nocompress &&
  a.hintMaster === b.hintMaster && a.topologyKey === b.topologyKey && (a.encryption === true) === (b.encryption === true)

/** How a spec reads in a violation. */
export const showSpec = (spec: VolumeSpec): string =>
  `replicas ${spec.replicas}, ${spec.failureMode} (tolerance ${spec.failureTolerance})${spec.nocompress ? ", nocompress" : ""}${spec.hintMaster === undefined ? "" : `, hint ${spec.hintMaster}`}`

export class VolumeModel {
  readonly blocks = new Map<number, BlockState>()
  /** Nodes whose copy holds every acknowledged write (see the module comment). */
  readonly holders = new Set<string>()
  /** The highest epoch whose master acknowledged a write (two masters: an older one acknowledging after it). */
  lastAckEpoch = 0
  /** The last committed record of this volume instance. */
  record: VolumeRecord | undefined
  acknowledged = 0
  /** Specs asked for by `volume update` calls under way (clusterOperations.ts). */
  readonly updatesInFlight: VolumeSpec[] = []
  #ackIndex = 0

  /** `uid`: the volume instance's id (adopted from its first committed record when undefined). */
  /** `sizeBytes` grows when a committed record says the volume grew (online resize). */
  constructor(readonly name: string, public sizeBytes: number, public uid: string | undefined) {}

  get blockCount(): number {
    return this.sizeBytes / blockBytes
  }

  #block(block: number): BlockState {
    let state = this.blocks.get(block)
    if (!state) {
      state = { acked: undefined, unflushed: [], durable: undefined, inflight: [], lossAllowed: [], masterAcked: false, ackedBeforeLoss: false, failedBefore: [] }
      this.blocks.set(block, state)
    }
    return state
  }

  /** A write of `data` to `block` is about to be issued. */
  issue(block: number, data: Uint8Array): void {
    this.#block(block).inflight.push(data)
  }

  /**
   * A master acknowledged a write to `length` bytes at `offset` (clusterWorld.ts `noteAcknowledged`):
   * the blocks' writes in flight are acknowledged writes from now on, though the application has not
   * seen it yet (cluster simulator sweep seed 1171: the master acknowledged a write, its fdatasync
   * then failed and dropped the page cache, and the acknowledgement reached the application after).
   */
  masterAcknowledged(offset: number, length: number): void {
    for (let block = Math.floor(offset / blockBytes); block * blockBytes < offset + length; block++) {
      const state = this.blocks.get(block)
      if (state !== undefined && state.inflight.length > 0) state.masterAcked = true
    }
  }

  /** The write of `data` to `block` was acknowledged: it is now what the block must hold. */
  acknowledge(block: number, data: Uint8Array): void {
    const state = this.#block(block)
    state.acked = data
    const ackIndex = ++this.#ackIndex
    for (const failed of state.inflight) if (failed !== data) state.failedBefore.push({ data: failed, before: ackIndex })
    state.inflight = []
    // Acknowledged by its master before a legitimate loss: the loss may have taken it too.
    if (!state.ackedBeforeLoss) state.lossAllowed = []
    state.masterAcked = false
    state.ackedBeforeLoss = false
    state.unflushed.push({ data, ackIndex })
    this.acknowledged++
  }

  /** A flush is about to be issued: it will cover every write acknowledged so far. */
  flushIssued(): number {
    return this.#ackIndex
  }

  /** The flush issued at `covers` succeeded: what it covered is durable. */
  flushSucceeded(covers: number): void {
    for (const state of this.blocks.values()) {
      let covered = 0
      while (covered < state.unflushed.length && state.unflushed[covered]!.ackIndex <= covers) covered++
      if (covered === 0) continue
      const last = state.unflushed[covered - 1]!
      state.durable = last.data
      state.unflushed.splice(0, covered)
      // A failed write before the flushed one was overwritten by it, on every copy.
      state.failedBefore = state.failedBefore.filter((f) => f.before > last.ackIndex)
    }
  }

  /**
   * The last holder lost its page cache: writes not covered by a flush may roll back to the durable
   * value, and so may a write its master acknowledged whose acknowledgement is still on its way.
   */
  lossOfUnflushed(): void {
    for (const state of this.blocks.values()) {
      if (state.masterAcked) state.ackedBeforeLoss = true
      if (state.unflushed.length === 0 && !state.masterAcked) continue
      // What the last flush made durable: the last flushed acknowledged write, or a failed write
      // after it that landed before a later flush (sweep seed 6594).
      state.lossAllowed.push(state.durable ?? zeros, ...state.failedBefore.map((f) => f.data), ...state.unflushed.map((u) => u.data))
    }
  }

  /** A copy of `node` lost writes (power loss, dropped page cache, wipe, older copy): it no longer holds them. */
  damaged(node: string): "legitimate-loss" | "still-held" | "not-a-holder" {
    if (!this.holders.has(node)) return "not-a-holder"
    if (this.holders.size > 1) {
      this.holders.delete(node)
      return "still-held"
    }
    this.lossOfUnflushed()
    return "legitimate-loss"
  }

  /** Whether `node`'s copy can be wiped or rolled back without destroying the last holder. */
  canDestroy(node: string): boolean {
    return !this.holders.has(node) || this.holders.size > 1
  }

  /** Follows a committed record: holders leave with their role and join when the record makes them in sync. */
  committed(next: VolumeRecord): void {
    const previous = this.record
    this.record = next
    // Grown by a resize: the new blocks hold zeros until written (never written: `problem` wants zeros).
    if (next.sizeBytes > this.sizeBytes) this.sizeBytes = next.sizeBytes
    if (previous === undefined) {
      if (next.master !== undefined) this.holders.add(next.master)
      return
    }
    const roles = new Set<string>(next.replicas.filter((r) => r.state === "in-sync").map((r) => r.node))
    if (next.master !== undefined) roles.add(next.master)
    for (const node of [...this.holders]) if (!roles.has(node)) this.holders.delete(node)
    for (const replica of next.replicas) {
      const before = previous.replicas.find((r) => r.node === replica.node)
      // A promotion lists the lost master as an in-sync replica (records.ts `formerMaster`): it stays a
      // holder if it was one, and a master's sync of it later makes it one; the listing itself does not.
      const listedByPromotion = replica.formerMaster === true && before === undefined
      if (replica.state === "in-sync" && before?.state !== "in-sync" && !listedByPromotion) this.holders.add(replica.node)
    }
  }

  /** Why `bytes` (the contents of `block`) is wrong, or undefined when a correct cluster may show them. */
  problem(block: number, bytes: Uint8Array): string | undefined {
    const state = this.blocks.get(block)
    const acked = state?.acked ?? zeros
    if (sameBytes(bytes, acked)) return undefined
    if (state === undefined) return "holds bytes never written"
    const candidates = [acked, ...state.lossAllowed, ...state.inflight]
    if (candidates.some((c) => sameBytes(bytes, c))) return undefined
    // A write that failed may have landed in part (a torn write): sector by sector it is one of them.
    if (state.inflight.length > 0 && tornOf(bytes, candidates, state.inflight)) return undefined
    return state.acked === undefined ? "holds bytes of no write issued to it" : "lacks its last acknowledged write"
  }
}

/**
 * Sector by sector, one of the candidates; a store's short write may end inside a sector (a
 * partial pwrite stops at any byte), so a sector of the block — one per write in flight, each ends
 * once — may also be a write in flight up to some byte and another candidate after it (cluster simulator sweep seed 7452: a master's torn
 * write to its only copy ended inside a sector).
 */
const tornOf = (bytes: Uint8Array, candidates: ReadonlyArray<Uint8Array>, inflight: ReadonlyArray<Uint8Array>): boolean => {
  let splits = 0
  for (let at = 0; at < bytes.length; at += sectorBytes) {
    const sector = bytes.subarray(at, at + sectorBytes)
    const part = (c: Uint8Array) => c.subarray(at, at + sectorBytes)
    if (candidates.some((c) => sameBytes(sector, part(c)))) continue
    if (++splits > inflight.length || !splitBetween(sector, inflight.map(part), candidates.map(part))) return false
  }
  return true
}

/** `sector` is one of `prefixes` up to some byte and one of `suffixes` from there on. */
const splitBetween = (sector: Uint8Array, prefixes: ReadonlyArray<Uint8Array>, suffixes: ReadonlyArray<Uint8Array>): boolean => {
  const prefixOf = (c: Uint8Array) => {
    let n = 0
    while (n < sector.length && sector[n] === c[n]) n++
    return n
  }
  const suffixFrom = (c: Uint8Array) => {
    let n = sector.length
    while (n > 0 && sector[n - 1] === c[n - 1]) n--
    return n
  }
  const longestPrefix = Math.max(...prefixes.map(prefixOf))
  return suffixes.some((c) => suffixFrom(c) <= longestPrefix)
}
