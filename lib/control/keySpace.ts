/**
 * The embedded control store's state machine: keys with etcd-style revisions, leases with
 * deadlines, and the watch events each change produces. Pure and synchronous: time comes in as
 * `nowMs` arguments, so the effectful wrapper (embedded.ts) decides where time comes from
 * (Effect's Clock, hence TestClock in the simulator) and this module is exact to test.
 *
 * Every change (put, delete, transaction, revoke, expiry) bumps the revision once, and every key
 * it touches gets that revision, as in etcd. Operations that change nothing keep the revision.
 */
import { assert } from "../core/assert.ts"
import type { Compare, KeyValue, LeaseId, TxnOp, WatchEvent } from "./ControlStore.ts"
import { expiredLeasesRememberedMax } from "./limits.ts"

interface Entry {
  readonly value: string
  readonly revision: number
  readonly createRevision: number
  readonly lease: LeaseId | undefined
}

interface Lease {
  readonly ttlMs: number
  deadlineMs: number
  readonly keys: Set<string>
}

export type LeaseStatus = "alive" | "expired" | "not-found"

/** What survives a restart: non-leased keys and the counters (leased keys belong to live processes). */
export interface KeySpaceSnapshot {
  readonly revision: number
  readonly leaseSeq: number
  readonly entries: ReadonlyArray<{
    readonly key: string
    readonly value: string
    readonly revision: number
    readonly createRevision: number
  }>
}

/** The result of a change: its events (empty when nothing changed) and whether persisted state changed. */
export interface Change {
  readonly events: ReadonlyArray<WatchEvent>
  readonly durable: boolean
}

const noChange: Change = { events: [], durable: false }

export class KeySpace {
  private revisionNow = 1
  private leaseSeq = 0
  private readonly entries = new Map<string, Entry>()
  private readonly leases = new Map<LeaseId, Lease>()
  private readonly expiredIds: Array<LeaseId> = []
  private readonly expiredSet = new Set<LeaseId>()
  /** Earliest lease deadline, so that the per-operation expiry check is O(1) when nothing is due. */
  private nextDeadlineMs = Number.POSITIVE_INFINITY

  static restore(snapshot: KeySpaceSnapshot): KeySpace {
    const space = new KeySpace()
    space.revisionNow = snapshot.revision
    space.leaseSeq = snapshot.leaseSeq
    for (const entry of snapshot.entries) {
      assert(entry.revision <= snapshot.revision && entry.createRevision <= entry.revision, "snapshot revisions are ordered")
      space.entries.set(entry.key, { value: entry.value, revision: entry.revision, createRevision: entry.createRevision, lease: undefined })
    }
    return space
  }

  get revision(): number {
    return this.revisionNow
  }

  get(key: string): KeyValue | undefined {
    const entry = this.entries.get(key)
    return entry === undefined ? undefined : toKeyValue(key, entry)
  }

  list(prefix: string): Array<KeyValue> {
    const out: Array<KeyValue> = []
    for (const [key, entry] of this.entries) if (key.startsWith(prefix)) out.push(toKeyValue(key, entry))
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  compareHolds(compares: ReadonlyArray<Compare>): boolean {
    return compares.every((compare) => (this.entries.get(compare.key)?.revision ?? 0) === compare.revision)
  }

  leaseStatus(lease: LeaseId): LeaseStatus {
    if (this.leases.has(lease)) return "alive"
    return this.expiredSet.has(lease) ? "expired" : "not-found"
  }

  /** Applies puts then deletes at one new revision. Every lease named must be alive (checked by the caller). */
  apply(puts: ReadonlyArray<TxnOp>, deletes: ReadonlyArray<string>): Change {
    const touched = puts.length > 0 || deletes.some((key) => this.entries.has(key))
    if (!touched) return noChange
    const revision = ++this.revisionNow
    const events: Array<WatchEvent> = []
    let durable = false
    for (const op of puts) {
      const before = this.entries.get(op.key)
      const lease = op.lease
      assert(lease === undefined || this.leases.has(lease), "puts name only live leases")
      if (before?.lease !== undefined && before.lease !== lease) this.leases.get(before.lease)?.keys.delete(op.key)
      if (lease !== undefined) this.leases.get(lease)!.keys.add(op.key)
      const entry: Entry = { value: op.value, revision, createRevision: before?.createRevision ?? revision, lease }
      this.entries.set(op.key, entry)
      durable ||= lease === undefined || (before !== undefined && before.lease === undefined)
      events.push({ type: "put", kv: toKeyValue(op.key, entry) })
    }
    for (const key of deletes) {
      const removed = this.removeKey(key)
      if (removed === undefined) continue
      durable ||= removed.lease === undefined
      events.push({ type: "delete", key, revision })
    }
    return { events, durable }
  }

  grant(ttlMs: number, nowMs: number): LeaseId {
    const lease = String(++this.leaseSeq)
    const deadlineMs = nowMs + ttlMs
    this.leases.set(lease, { ttlMs, deadlineMs, keys: new Set() })
    this.nextDeadlineMs = Math.min(this.nextDeadlineMs, deadlineMs)
    return lease
  }

  /** Renews a live lease; call `expire(nowMs)` first so that a lease past its deadline is gone. */
  keepAlive(lease: LeaseId, nowMs: number): LeaseStatus {
    const state = this.leases.get(lease)
    if (state === undefined) return this.leaseStatus(lease)
    state.deadlineMs = nowMs + state.ttlMs
    return "alive"
  }

  revoke(lease: LeaseId): Change {
    const state = this.leases.get(lease)
    if (state === undefined) return noChange
    this.leases.delete(lease)
    return this.dropKeys(state.keys)
  }

  /** Deletes every lease whose deadline is at or before `nowMs`, with its keys (one revision per lease). */
  expire(nowMs: number): Change {
    if (nowMs < this.nextDeadlineMs) return noChange
    const events: Array<WatchEvent> = []
    let next = Number.POSITIVE_INFINITY
    for (const [lease, state] of [...this.leases]) {
      if (state.deadlineMs > nowMs) {
        next = Math.min(next, state.deadlineMs)
        continue
      }
      this.leases.delete(lease)
      this.rememberExpired(lease)
      events.push(...this.dropKeys(state.keys).events)
    }
    this.nextDeadlineMs = next
    return { events, durable: false }
  }

  snapshot(): KeySpaceSnapshot {
    const entries: Array<KeySpaceSnapshot["entries"][number]> = []
    for (const [key, entry] of this.entries) {
      if (entry.lease !== undefined) continue
      entries.push({ key, value: entry.value, revision: entry.revision, createRevision: entry.createRevision })
    }
    return { revision: this.revisionNow, leaseSeq: this.leaseSeq, entries }
  }

  private dropKeys(keys: ReadonlySet<string>): Change {
    if (keys.size === 0) return noChange
    const revision = ++this.revisionNow
    const events: Array<WatchEvent> = []
    for (const key of [...keys].sort()) {
      if (this.removeKey(key) !== undefined) events.push({ type: "delete", key, revision })
    }
    return { events, durable: false }
  }

  private removeKey(key: string): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    if (entry.lease !== undefined) this.leases.get(entry.lease)?.keys.delete(key)
    return entry
  }

  private rememberExpired(lease: LeaseId): void {
    this.expiredIds.push(lease)
    this.expiredSet.add(lease)
    if (this.expiredIds.length > expiredLeasesRememberedMax) this.expiredSet.delete(this.expiredIds.shift()!)
  }
}

const toKeyValue = (key: string, entry: Entry): KeyValue => ({
  key,
  value: entry.value,
  revision: entry.revision,
  createRevision: entry.createRevision,
  lease: entry.lease,
})
