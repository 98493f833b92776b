/**
 * The control store contract: the cluster's shared truth (nodes, volumes, masters, replica
 * states, epochs, rules) behind one service with compare-and-swap, leases and watch.
 *
 * Two implementations pass one compliance suite (test/support/controlStoreCompliance.ts):
 * the embedded in-memory store (lib/control/embedded.ts, the default, runs under TestClock) and
 * etcd (lib/platform/etcdControlStore.ts). Nothing above this module knows which one it talks to.
 *
 * Semantics follow etcd v3, the stricter of the two:
 * - revisions are store-wide and strictly increasing; every key changed by one put, delete,
 *   transaction or lease expiry gets the same new revision;
 * - a `Compare` holds iff the key's mod revision equals `revision` (0 = the key is absent);
 * - a key put with a lease is deleted when the lease is revoked or expires; a put without a lease
 *   detaches the key from any lease it had;
 * - a watch sees the events after its stream starts, in revision order, and fails with
 *   `watch-lagged` when its consumer falls more than `watchBufferEventsMax` events behind.
 */
import { Context, Data, type Effect, type Stream } from "effect"

export type LeaseId = string

export interface KeyValue {
  readonly key: string
  readonly value: string
  /** Mod revision: the store-wide revision of the last change to this key. */
  readonly revision: number
  /** The revision at which the key was created (since it was last absent). */
  readonly createRevision: number
  readonly lease: LeaseId | undefined
}

/** Holds iff the key's mod revision equals `revision`; revision 0 means "the key is absent". */
export interface Compare {
  readonly key: string
  readonly revision: number
}

export interface TxnOp {
  readonly key: string
  readonly value: string
  readonly lease?: LeaseId
}

/** Atomic: if every compare holds, every put and delete is applied at one new revision. */
export interface Txn {
  readonly compare: ReadonlyArray<Compare>
  readonly put?: ReadonlyArray<TxnOp>
  readonly delete?: ReadonlyArray<string>
}

export interface TxnResult {
  readonly succeeded: boolean
  /** The store's revision after the transaction (unchanged when it failed or changed nothing). */
  readonly revision: number
}

export type WatchEvent =
  | { readonly type: "put"; readonly kv: KeyValue }
  | { readonly type: "delete"; readonly key: string; readonly revision: number }

export type ControlErrorReason =
  /** The store cannot be reached (etcd down, timed out). Retrying later may succeed. */
  | "unreachable"
  /** The lease was never granted by this store, or was revoked. */
  | "lease-not-found"
  /** The lease's TTL passed without a keepAlive; its keys are gone. */
  | "lease-expired"
  /** A key, value or transaction exceeds its limit (see lib/control/limits.ts). */
  | "too-large"
  /** The store was shut down (its layer's scope closed). */
  | "closed"
  /** Persisted state could not be read back (the message names the file). */
  | "corrupt"
  /** A watcher's consumer fell more than `watchBufferEventsMax` events behind; watch again. */
  | "watch-lagged"

export class ControlError extends Data.TaggedError("ControlError")<{
  readonly reason: ControlErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}

export interface ControlStoreShape {
  readonly get: (key: string) => Effect.Effect<KeyValue | undefined, ControlError>
  /** Every key starting with `prefix`, sorted by key (UTF-16 code unit order, as etcd's bytes for ASCII). */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<KeyValue>, ControlError>
  /** Returns the new revision. */
  readonly put: (
    key: string,
    value: string,
    options?: { readonly lease?: LeaseId },
  ) => Effect.Effect<number, ControlError>
  readonly delete: (key: string) => Effect.Effect<void, ControlError>
  readonly transaction: (txn: Txn) => Effect.Effect<TxnResult, ControlError>
  readonly grantLease: (ttlMs: number) => Effect.Effect<LeaseId, ControlError>
  /** Renews once; fails with `lease-expired` / `lease-not-found` when the lease is gone. */
  readonly keepAlive: (lease: LeaseId) => Effect.Effect<void, ControlError>
  /** Deletes the lease's keys now. Revoking an unknown or expired lease succeeds. */
  readonly revokeLease: (lease: LeaseId) => Effect.Effect<void, ControlError>
  /** Events under `prefix` after the stream starts, in revision order. */
  readonly watch: (prefix: string) => Stream.Stream<WatchEvent, ControlError>
}

export class ControlStore extends Context.Service<ControlStore, ControlStoreShape>()("replivol/ControlStore") {}
