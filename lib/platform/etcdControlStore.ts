/**
 * The ControlStore on etcd v3, through the `etcd3` npm client (1.1.2), for nodes in separate
 * processes or on separate machines.
 *
 * Mapping: revision = etcd mod_revision, createRevision = create_revision; a Compare with
 * revision r is `Mod == r`, with 0 it is `Create == 0` (absent). Lease TTLs are sent in whole
 * seconds, ceil(ms / 1000) and at least 1 (etcd may round a TTL up to its own minimum). Leases are
 * never kept alive automatically: renewal is `keepAlive` (see lib/control/lease.ts), and every
 * lease this client granted and did not revoke is revoked when the layer closes, because
 * `Etcd3#close()` does not stop etcd3's own keep-alives (PLATFORM-NOTES §4).
 *
 * Errors: network and server faults (`isRecoverableError`) and timeouts are `unreachable`;
 * "requested lease not found" is `lease-expired` for a lease this client granted and did not
 * revoke, else `lease-not-found`; etcd's size limits are `too-large`. Every call is bounded by
 * `requestTimeoutMs`. Watches are bridged into a Stream through a bounded queue (a consumer that
 * falls behind fails with `watch-lagged`) and cancelled when the stream's scope ends.
 */
import { Cause, Duration, Effect, Layer, Queue, type Scope, Stream } from "effect"
import { ClientClosedError, EtcdLeaseInvalidError, Etcd3, GRPCResourceExhastedError, isRecoverableError, type IKeyValue, type Watcher } from "etcd3"
import { Buffer } from "node:buffer"
import {
  ControlError,
  ControlStore,
  type ControlStoreShape,
  type KeyValue,
  type LeaseId,
  type Txn,
  type TxnResult,
  type WatchEvent,
} from "../control/ControlStore.ts"
import { checkKey, checkPut, checkTtl, checkTxn, expiredLeasesRememberedMax, watchBufferEventsMax } from "../control/limits.ts"

export interface EtcdOptions {
  readonly hosts: ReadonlyArray<string> | string
  /** Connection attempt bound (default 2000 ms). */
  readonly dialTimeoutMs?: number
  /** Bound on every request, and on establishing a watch (default 5000 ms). */
  readonly requestTimeoutMs?: number
  /** Per-watcher buffer (default `watchBufferEventsMax`). */
  readonly watchBufferEvents?: number
}

export const etcdDefaults = {
  dialTimeoutMs: 2_000,
  requestTimeoutMs: 5_000,
  closeTimeoutMs: 2_000,
  /** Watch stream reconnect backoff: first delay and ceiling. etcd3's default grows to 30 s, which
   * also keeps a process alive that long after a watch on an unreachable etcd was cancelled. */
  watchReconnectBaseMs: 100,
  watchReconnectCeilingMs: 2_000,
} as const

interface Backoff {
  readonly duration: number
  next(context: unknown): Backoff
}

/** Doubling reconnect delays for etcd3's watch manager, capped at `watchReconnectCeilingMs`. */
const watchBackoff = (durationMs: number): Backoff => ({
  duration: durationMs,
  next: () => watchBackoff(Math.min(durationMs * 2, etcdDefaults.watchReconnectCeilingMs)),
})

/** etcd lease TTLs are whole seconds: ceil(ms / 1000), at least 1. */
export const leaseTtlSeconds = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs / 1000))

/** The smallest key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export const prefixEnd = (prefix: Buffer): Buffer => {
  for (let index = prefix.length - 1; index >= 0; index--) {
    if (prefix[index]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, index + 1))
      end[index] = end[index]! + 1
      return end
    }
  }
  return Buffer.from([0]) // every byte is 0xff (or empty): to the end of the key space
}

const toKeyValue = (kv: IKeyValue): KeyValue => ({
  key: kv.key.toString("utf8"),
  value: kv.value.toString("utf8"),
  revision: Number(kv.mod_revision),
  createRevision: Number(kv.create_revision),
  lease: kv.lease === undefined || String(kv.lease) === "0" ? undefined : String(kv.lease),
})

const messageOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** What this client knows about leases, to tell `lease-expired` from `lease-not-found`. */
class LeaseBook {
  readonly granted = new Set<LeaseId>()
  private readonly revoked: Array<LeaseId> = []
  grant(lease: LeaseId) {
    this.granted.add(lease)
  }
  revoke(lease: LeaseId) {
    this.granted.delete(lease)
    this.revoked.push(lease)
    if (this.revoked.length > expiredLeasesRememberedMax) this.revoked.shift()
  }
  gone(lease: LeaseId): ControlError {
    return this.granted.has(lease) && !this.revoked.includes(lease)
      ? new ControlError({ reason: "lease-expired", message: `lease ${lease} expired: its TTL passed without a keepAlive` })
      : new ControlError({ reason: "lease-not-found", message: `lease ${lease} does not exist in etcd (never granted, or revoked)` })
  }
}

const errorMapper = (hosts: string, leases: LeaseBook) => (what: string, cause: unknown, lease?: LeaseId): ControlError => {
  const message = messageOf(cause)
  // etcd3 turns "etcdserver: requested lease not found" into EtcdLeaseInvalidError; size limits
  // arrive as RESOURCE_EXHAUSTED or as etcdserver messages, which have no class of their own.
  if (cause instanceof EtcdLeaseInvalidError && lease !== undefined) return leases.gone(lease)
  if (cause instanceof GRPCResourceExhastedError || /request is too large|too many operations/i.test(message)) {
    return new ControlError({ reason: "too-large", message: `etcd refused ${what} as too large: ${message}`, cause })
  }
  if (cause instanceof ClientClosedError) {
    return new ControlError({ reason: "closed", message: `etcd client for ${hosts} is closed (${what})`, cause })
  }
  const recoverable = cause instanceof Error && isRecoverableError(cause)
  return new ControlError({
    reason: "unreachable",
    message: `etcd at ${hosts} ${recoverable ? "is unreachable" : "failed"} during ${what}: ${message}`,
    cause,
  })
}

/** Runs one etcd request, bounded; `signal` aborts when the request is interrupted or times out. */
type Call = <A>(what: string, run: (signal: AbortSignal) => Promise<A>, lease?: LeaseId) => Effect.Effect<A, ControlError>

const keyOperations = (client: Etcd3, call: Call) => {
  const toCompare = (compare: Txn["compare"][number]) =>
    compare.revision === 0
      ? { key: Buffer.from(compare.key), target: "Create" as const, result: "Equal" as const, create_revision: 0 }
      : { key: Buffer.from(compare.key), target: "Mod" as const, result: "Equal" as const, mod_revision: compare.revision }
  const putRequest = (key: string, value: string, lease: LeaseId | undefined) =>
    lease === undefined
      ? { key: Buffer.from(key), value: Buffer.from(value) }
      : { key: Buffer.from(key), value: Buffer.from(value), lease }
  const firstLease = (txn: Txn) => txn.put?.find((op) => op.lease !== undefined)?.lease

  return {
    get: (key: string) =>
      Effect.flatMap(checkKey(key), () =>
        Effect.map(call("get", () => client.kv.range({ key: Buffer.from(key) })), (res) => {
          const kv = res.kvs[0]
          return kv === undefined ? undefined : toKeyValue(kv)
        })),
    list: (prefix: string): Effect.Effect<ReadonlyArray<KeyValue>, ControlError> => {
      const key = prefix.length === 0 ? Buffer.from([0]) : Buffer.from(prefix)
      return Effect.map(
        call("list", () => client.kv.range({ key, range_end: prefixEnd(Buffer.from(prefix)), sort_order: "Ascend", sort_target: "Key" })),
        (res) => res.kvs.map(toKeyValue),
      )
    },
    put: (key: string, value: string, options?: { readonly lease?: LeaseId }) =>
      Effect.flatMap(checkPut(key, value), () =>
        Effect.map(
          call("put", () => client.kv.put(putRequest(key, value, options?.lease)), options?.lease),
          (res) => Number(res.header.revision),
        )),
    delete: (key: string) =>
      Effect.flatMap(checkKey(key), () => Effect.asVoid(call("delete", () => client.kv.deleteRange({ key: Buffer.from(key) })))),
    transaction: (txn: Txn): Effect.Effect<TxnResult, ControlError> =>
      Effect.flatMap(checkTxn(txn), () => {
        const success = [
          ...(txn.put ?? []).map((op) => ({ request_put: putRequest(op.key, op.value, op.lease) })),
          ...(txn.delete ?? []).map((key) => ({ request_delete_range: { key: Buffer.from(key) } })),
        ]
        return Effect.map(
          call("transaction", () => client.kv.txn({ compare: txn.compare.map(toCompare), success, failure: [] }), firstLease(txn)),
          (res) => ({ succeeded: res.succeeded, revision: Number(res.header.revision) }),
        )
      }),
  }
}

const leaseOperations = (client: Etcd3, call: Call, leases: LeaseBook) => ({
  grantLease: (ttlMs: number) =>
    Effect.suspend(() => {
      checkTtl(ttlMs)
      return Effect.map(call("grantLease", () => client.leaseClient.leaseGrant({ TTL: leaseTtlSeconds(ttlMs), ID: 0 })), (res) => {
        const lease = String(res.ID)
        leases.grant(lease)
        return lease
      })
    }),
  keepAlive: (lease: LeaseId) =>
    Effect.flatMap(
      call("keepAlive", async (signal) => {
        const stream = await client.leaseClient.leaseKeepAlive()
        try {
          return await new Promise<{ TTL: string }>((resolve, reject) => {
            stream.on("data", resolve)
            stream.on("error", reject)
            signal.addEventListener("abort", () => reject(new Error("keepAlive aborted")))
            stream.write({ ID: lease })
          })
        } finally {
          stream.end()
        }
      }, lease),
      (res) => (Number(res.TTL) > 0 ? Effect.void : Effect.fail(leases.gone(lease))),
    ),
  revokeLease: (lease: LeaseId) =>
    call("revokeLease", () => client.leaseClient.leaseRevoke({ ID: lease }), lease).pipe(
      Effect.catchIf((error) => error.reason === "lease-expired" || error.reason === "lease-not-found", () => Effect.void),
      Effect.tap(() => Effect.sync(() => leases.revoke(lease))),
      Effect.asVoid,
    ),
})

/** Establishes an etcd watch on `prefix` that feeds `queue`; resolves once etcd confirmed it. */
const openWatcher = (
  client: Etcd3,
  prefix: string,
  queue: Queue.Queue<WatchEvent, ControlError | Cause.Done>,
  fail: (error: ControlError) => void,
  signal: AbortSignal,
): Promise<Watcher> => {
  const builder = client.watch()
  const watcher = (prefix.length === 0 ? builder.inRange({ start: Buffer.from([0]), end: Buffer.from([0]) }) : builder.prefix(prefix)).watcher()
  const offer = (event: WatchEvent) => {
    if (Queue.offerUnsafe(queue, event)) return
    fail(new ControlError({ reason: "watch-lagged", message: `watch on "${prefix}" fell behind by more than its buffer; watch again and re-read` }))
  }
  watcher.on("put", (kv) => offer({ type: "put", kv: toKeyValue(kv) }))
  watcher.on("delete", (kv) => offer({ type: "delete", key: kv.key.toString("utf8"), revision: Number(kv.mod_revision) }))
  watcher.on("error", (cause) => fail(new ControlError({ reason: "unreachable", message: `etcd watch on "${prefix}" failed: ${messageOf(cause)}`, cause })))
  return new Promise<Watcher>((resolve, reject) => {
    watcher.once("connected", () => resolve(watcher))
    watcher.once("error", reject)
    // A watch that never connects would retry forever and keep the process alive: cancel it.
    signal.addEventListener("abort", () => {
      void watcher.cancel().catch(() => undefined)
      reject(new Error(`watch on "${prefix}" was not established`))
    })
  })
}

/** Builds the store in the current scope; closing the scope revokes this client's leases and closes it. */
export const makeEtcd = (options: EtcdOptions): Effect.Effect<ControlStoreShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const hosts = typeof options.hosts === "string" ? options.hosts : options.hosts.join(",")
    const requestTimeout = Duration.millis(options.requestTimeoutMs ?? etcdDefaults.requestTimeoutMs)
    const leases = new LeaseBook()
    const mapError = errorMapper(hosts, leases)
    const openQueues = new Set<Queue.Queue<WatchEvent, ControlError | Cause.Done>>()
    let closed = false
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new Etcd3({ hosts: typeof options.hosts === "string" ? options.hosts : [...options.hosts], dialTimeout: options.dialTimeoutMs ?? etcdDefaults.dialTimeoutMs, faultHandling: { watchBackoff: watchBackoff(etcdDefaults.watchReconnectBaseMs) } })),
      (client) => closeClient(client, leases, () => {
        closed = true
        const error = new ControlError({ reason: "closed", message: `etcd control store for ${hosts} was shut down` })
        for (const queue of openQueues) Queue.failCauseUnsafe(queue, Cause.fail(error))
      }),
    )
    const timedOut = (what: string) => new ControlError({ reason: "unreachable", message: `etcd at ${hosts} did not answer ${what} within ${Duration.toMillis(requestTimeout)} ms` })
    const call: Call = (what, run, lease) =>
      closed
        ? Effect.fail(new ControlError({ reason: "closed", message: `etcd control store for ${hosts} was shut down (${what})` }))
        : Effect.tryPromise({ try: run, catch: (cause) => mapError(what, cause, lease) }).pipe(
          Effect.timeoutOrElse({ duration: requestTimeout, orElse: () => Effect.fail(timedOut(what)) }),
        )

    const watch = (prefix: string): Stream.Stream<WatchEvent, ControlError> =>
      Stream.callback<WatchEvent, ControlError>((queue) => {
        const fail = (error: ControlError) => void Queue.failCauseUnsafe(queue, Cause.fail(error))
        return Effect.acquireRelease(
          Effect.flatMap(call("watch", (signal) => openWatcher(client, prefix, queue, fail, signal)), (watcher) =>
            Effect.sync(() => {
              openQueues.add(queue)
              return watcher
            })),
          (watcher) => Effect.promise(() => watcher.cancel().catch(() => undefined)).pipe(Effect.tap(() => Effect.sync(() => openQueues.delete(queue)))),
        )
      }, { bufferSize: options.watchBufferEvents ?? watchBufferEventsMax })

    return ControlStore.of({ ...keyOperations(client, call), ...leaseOperations(client, call, leases), watch })
  })

/** Revokes every lease this client granted (etcd3 keep-alives would outlive close()), then closes. */
const closeClient = (client: Etcd3, leases: LeaseBook, markClosed: () => void) =>
  Effect.gen(function* () {
    markClosed()
    yield* Effect.forEach(
      [...leases.granted],
      (lease) => Effect.promise(() => client.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined)),
      { concurrency: "unbounded", discard: true },
    ).pipe(Effect.timeoutOrElse({ duration: Duration.millis(etcdDefaults.closeTimeoutMs), orElse: () => Effect.void }))
    yield* Effect.sync(() => client.close())
  })

/** The ControlStore on etcd. Building it does not contact etcd; the first request does. */
export const layerEtcd = (options: EtcdOptions): Layer.Layer<ControlStore> => Layer.effect(ControlStore, makeEtcd(options))
