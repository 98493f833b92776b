/**
 * One compliance suite for every ControlStore implementation (embedded, etcd).
 *
 * `registerControlStoreCompliance(suite, target)` adds the tests to a uvu suite; the caller adds
 * its own before/after hooks (an etcd server) and calls `suite.run()`. Each test gets a fresh
 * store from `target.layer()` and its own key prefix, so tests stay independent even on one etcd.
 * Time is the target's business: the embedded store runs under TestClock and `advance` adjusts
 * it; etcd runs in real time with a 1 s TTL and bounded waits.
 */
import { Cause, Context, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import type { Test } from "uvu"
import * as assert from "uvu/assert"
import {
  type ControlError,
  ControlStore,
  type LeaseId,
  type WatchEvent,
} from "../../lib/control/ControlStore.ts"
import { withLease } from "../../lib/control/lease.ts"
import { keyBytesMax, txnOpsMax, valueBytesMax } from "../../lib/control/limits.ts"

export interface ComplianceTarget {
  readonly name: string
  /** A fresh store. */
  readonly layer: () => Layer.Layer<ControlStore, ControlError>
  /** Wraps a whole test (the embedded target provides TestClock here). */
  readonly wrap: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** A lease TTL the implementation honours exactly enough for these tests. */
  readonly leaseTtlMs: number
  /** Lets `ms` of the store's time pass. */
  readonly advance: (ms: number) => Effect.Effect<void>
  /** Lets time pass until `gone` holds (bounded; the test then asserts it). */
  readonly awaitExpiry: (
    ttlMs: number,
    gone: Effect.Effect<boolean, ControlError, ControlStore>,
  ) => Effect.Effect<void, ControlError, ControlStore>
  /** A short pause for background work (a watch being established). */
  readonly pause: Effect.Effect<void>
  /** Real-time bound on one test. */
  readonly testTimeoutMs: number
}

type Body<A> = (ns: string) => Effect.Effect<A, ControlError, ControlStore | Scope.Scope>

let testCount = 0

/** Runs an effect, failing (and interrupting it) if it takes longer than `timeoutMs` of real time. */
export const runBounded = <A, E>(effect: Effect.Effect<A, E>, timeoutMs: number): Promise<A> => {
  const fiber = Effect.runFork(effect)
  return new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`test did not finish within ${timeoutMs} ms`))
      Effect.runFork(Fiber.interrupt(fiber))
    }, timeoutMs)
    fiber.addObserver((exit) => {
      clearTimeout(timer)
      if (exit._tag === "Success") resolve(exit.value)
      else reject(new Error(Cause.pretty(exit.cause)))
    })
  })
}

/** Runs one test body against a fresh store under `ns`, bounded in real time. */
const runWith = <A>(target: ComplianceTarget, body: Body<A>): Promise<A> => {
  const ns = `compliance/${process.pid}/${++testCount}/${performance.now().toFixed(0)}/`
  return runBounded(target.wrap(body(ns).pipe(Effect.scoped, Effect.provide(target.layer()))), target.testTimeoutMs)
}

/** The failure reason of an effect that must fail. */
const reasonOf = <A, R>(effect: Effect.Effect<A, ControlError, R>) =>
  Effect.map(Effect.result(effect), (result) => {
    assert.is(result._tag, "Failure", "expected the operation to fail")
    return result._tag === "Failure" ? result.failure.reason : undefined
  })

/** A watch under `prefix`, established (a marker put was seen) before this returns. */
const openWatch = (target: ComplianceTarget, prefix: string) =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const rawPull = yield* Stream.toPull(store.watch(prefix))
    const pull = rawPull.pipe(Effect.catchIf(Cause.isDone, () => Effect.die(new Error(`watch on ${prefix} ended`))))
    const marker = `${prefix}~ready`
    const buffered: Array<WatchEvent> = []
    const first = yield* Effect.forkScoped(pull)
    for (let attempt = 0; attempt < 200 && first.pollUnsafe() === undefined; attempt++) {
      yield* store.put(marker, String(attempt))
      yield* target.pause
    }
    buffered.push(...(yield* Fiber.join(first)))
    const keyOf = (event: WatchEvent) => (event.type === "put" ? event.kv.key : event.key)
    /** The next `count` events, marker events skipped. */
    const take = (count: number) =>
      Effect.gen(function* () {
        const wanted = () => buffered.filter((event) => keyOf(event) !== marker)
        while (wanted().length < count) buffered.push(...(yield* pull))
        const out = wanted().slice(0, count)
        const last = out[out.length - 1]
        buffered.splice(0, last === undefined ? 0 : buffered.indexOf(last) + 1)
        return out
      })
    return { take, keyOf }
  })

const describe = (event: WatchEvent) => (event.type === "put" ? `put ${event.kv.key}=${event.kv.value}` : `delete ${event.key}`)

export function registerControlStoreCompliance(suite: Test, target: ComplianceTarget): void {
  const it = <A>(name: string, body: Body<A>) => suite(`${target.name}: ${name}`, () => runWith(target, body).then(() => undefined))
  registerKeyTests(it)
  registerTxnTests(it)
  registerLeaseTests(it, target)
  registerWatchTests(it, target)
  registerLimitTests(it, target)
}

type It = <A>(name: string, body: Body<A>) => void

function registerKeyTests(it: It) {
  it("put/get round-trips values; get of a missing key is undefined", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      yield* store.put(`${ns}volume`, "{\"size\":1024,\"name\":\"ünïcödé ✓\"}")
      const kv = yield* store.get(`${ns}volume`)
      assert.is(kv?.value, "{\"size\":1024,\"name\":\"ünïcödé ✓\"}")
      assert.is(kv?.lease, undefined)
      assert.is(yield* store.get(`${ns}missing`), undefined)
    }))

  it("list returns the keys under a prefix, sorted by key, and nothing else", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      for (const name of ["c", "a", "b/2", "b/1"]) yield* store.put(`${ns}vol/${name}`, name)
      yield* store.put(`${ns}volx`, "not under vol/")
      yield* store.put(`${ns}node/a`, "node")
      const listed = yield* store.list(`${ns}vol/`)
      assert.equal(listed.map((kv) => kv.key), ["a", "b/1", "b/2", "c"].map((name) => `${ns}vol/${name}`))
      assert.equal(listed.map((kv) => kv.value), ["a", "b/1", "b/2", "c"])
      assert.equal(yield* store.list(`${ns}nothing/`), [])
    }))

  it("revisions strictly increase; createRevision stays until the key is deleted", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const r1 = yield* store.put(`${ns}k`, "1")
      const r2 = yield* store.put(`${ns}other`, "x")
      const r3 = yield* store.put(`${ns}k`, "2")
      assert.ok(r1 < r2 && r2 < r3, `revisions ${r1} < ${r2} < ${r3}`)
      const kv = yield* store.get(`${ns}k`)
      assert.equal({ revision: kv?.revision, createRevision: kv?.createRevision, value: kv?.value }, { revision: r3, createRevision: r1, value: "2" })
      yield* store.delete(`${ns}k`)
      assert.is(yield* store.get(`${ns}k`), undefined)
      const r4 = yield* store.put(`${ns}k`, "3")
      assert.ok(r4 > r3)
      assert.is((yield* store.get(`${ns}k`))?.createRevision, r4, "a re-created key has a new createRevision")
      yield* store.delete(`${ns}never-existed`) // deleting a missing key succeeds
    }))
}

function registerTxnTests(it: It) {
  it("transaction: create-if-absent (revision 0) succeeds once, then conflicts", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const key = `${ns}volume/v1/master`
      const first = yield* store.transaction({ compare: [{ key, revision: 0 }], put: [{ key, value: "node-a" }] })
      assert.ok(first.succeeded)
      assert.is((yield* store.get(key))?.revision, first.revision)
      const second = yield* store.transaction({ compare: [{ key, revision: 0 }], put: [{ key, value: "node-b" }] })
      assert.is(second.succeeded, false)
      assert.is(second.revision, first.revision, "a failed transaction changes nothing")
      assert.is((yield* store.get(key))?.value, "node-a")
    }))

  it("transaction: compare-and-swap on mod revision; a stale revision conflicts", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const key = `${ns}volume/v1/epoch`
      const r1 = yield* store.put(key, "1")
      const swap = yield* store.transaction({ compare: [{ key, revision: r1 }], put: [{ key, value: "2" }] })
      assert.ok(swap.succeeded)
      const stale = yield* store.transaction({ compare: [{ key, revision: r1 }], put: [{ key, value: "3" }] })
      assert.is(stale.succeeded, false)
      assert.is((yield* store.get(key))?.value, "2")
      const absentButExists = yield* store.transaction({ compare: [{ key, revision: 0 }], delete: [key] })
      assert.is(absentButExists.succeeded, false)
      assert.is((yield* store.get(key))?.value, "2")
    }))

  it("transaction: multi-key puts and deletes apply atomically at one revision, or not at all", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const rEpoch = yield* store.put(`${ns}epoch`, "1")
      yield* store.put(`${ns}old-master`, "node-a")
      const ok = yield* store.transaction({
        compare: [{ key: `${ns}epoch`, revision: rEpoch }, { key: `${ns}new-master`, revision: 0 }],
        put: [{ key: `${ns}epoch`, value: "2" }, { key: `${ns}new-master`, value: "node-b" }],
        delete: [`${ns}old-master`],
      })
      assert.ok(ok.succeeded)
      const listed = yield* store.list(ns)
      assert.equal(listed.map((kv) => [kv.key.slice(ns.length), kv.value]), [["epoch", "2"], ["new-master", "node-b"]])
      assert.ok(listed.every((kv) => kv.revision === ok.revision), "every key of one transaction has its revision")
      const failed = yield* store.transaction({
        compare: [{ key: `${ns}epoch`, revision: ok.revision }, { key: `${ns}new-master`, revision: 0 }],
        put: [{ key: `${ns}epoch`, value: "3" }, { key: `${ns}third`, value: "x" }],
        delete: [`${ns}new-master`],
      })
      assert.is(failed.succeeded, false, "one false compare fails the whole transaction")
      assert.equal((yield* store.list(ns)).map((kv) => [kv.key.slice(ns.length), kv.value]), [["epoch", "2"], ["new-master", "node-b"]])
    }))
}

function registerLeaseTests(it: It, target: ComplianceTarget) {
  const ttl = target.leaseTtlMs
  it("lease: grant, keepAlive, revoke deletes its keys; the revoked lease is gone", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const lease = yield* store.grantLease(ttl)
      yield* store.put(`${ns}node/a`, "alive", { lease })
      yield* store.put(`${ns}volume`, "durable")
      assert.is((yield* store.get(`${ns}node/a`))?.lease, lease)
      yield* store.keepAlive(lease)
      yield* store.revokeLease(lease)
      assert.is(yield* store.get(`${ns}node/a`), undefined)
      assert.is((yield* store.get(`${ns}volume`))?.value, "durable")
      assert.is(yield* reasonOf(store.keepAlive(lease)), "lease-not-found")
      assert.is(yield* reasonOf(store.put(`${ns}node/a`, "again", { lease })), "lease-not-found")
      yield* store.revokeLease(lease) // revoking twice is harmless
    }))

  it("lease: keepAlive extends the lease past its TTL", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const lease = yield* store.grantLease(ttl)
      yield* store.put(`${ns}node/a`, "alive", { lease })
      for (let round = 0; round < 3; round++) {
        yield* target.advance(ttl * 0.6)
        yield* store.keepAlive(lease)
      }
      assert.is((yield* store.get(`${ns}node/a`))?.value, "alive", "still there after 1.8 TTLs of keepAlives")
    }))

  it("lease: expiry deletes its keys; keepAlive and put then fail with lease-expired", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const lease = yield* store.grantLease(ttl)
      yield* store.put(`${ns}node/a`, "alive", { lease })
      yield* store.put(`${ns}volume`, "durable")
      yield* target.awaitExpiry(ttl, Effect.map(store.get(`${ns}node/a`), (kv) => kv === undefined))
      assert.is(yield* store.get(`${ns}node/a`), undefined, "the leased key is gone")
      assert.is((yield* store.get(`${ns}volume`))?.value, "durable")
      assert.is(yield* reasonOf(store.keepAlive(lease)), "lease-expired")
      assert.is(yield* reasonOf(store.put(`${ns}node/a`, "again", { lease })), "lease-expired")
    }))

  it("withLease keeps the lease alive for the scope, then revokes it", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const lease: LeaseId = yield* Effect.scoped(Effect.gen(function* () {
        const held = yield* withLease(ttl)
        yield* store.put(`${ns}node/a`, "alive", { lease: held.id })
        yield* target.advance(ttl * 0.9)
        yield* target.advance(ttl * 0.9)
        assert.is((yield* store.get(`${ns}node/a`))?.value, "alive", "kept alive across 1.8 TTLs")
        return held.id
      }))
      assert.is(yield* store.get(`${ns}node/a`), undefined, "revoked when the scope closed")
      assert.is(yield* reasonOf(store.keepAlive(lease)), "lease-not-found")
    }))

  it("withLease: `lost` fails when the lease is revoked behind the holder's back", () =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const held = yield* withLease(ttl)
      yield* store.revokeLease(held.id)
      yield* target.advance(ttl * 0.5)
      assert.is(yield* reasonOf(held.lost), "lease-not-found")
    }))
}

function registerWatchTests(it: It, target: ComplianceTarget) {
  it("watch sees puts and deletes under its prefix, in revision order", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const watch = yield* openWatch(target, `${ns}vol/`)
      const r1 = yield* store.put(`${ns}vol/a`, "1")
      yield* store.put(`${ns}other`, "not watched")
      yield* store.put(`${ns}vol/b`, "2")
      yield* store.delete(`${ns}vol/a`)
      const txn = yield* store.transaction({ compare: [], put: [{ key: `${ns}vol/c`, value: "3" }], delete: [`${ns}vol/b`] })
      const events = yield* watch.take(5)
      assert.equal(events.map(describe), [`put ${ns}vol/a=1`, `put ${ns}vol/b=2`, `delete ${ns}vol/a`, `put ${ns}vol/c=3`, `delete ${ns}vol/b`])
      const revisions = events.map((event) => (event.type === "put" ? event.kv.revision : event.revision))
      assert.ok(revisions.every((revision, index) => index === 0 || revision >= revisions[index - 1]!), `in revision order: ${revisions}`)
      assert.is(revisions[0], r1)
      assert.is(revisions[3], txn.revision)
      assert.is(revisions[4], txn.revision)
    }))

  it("watch sees the deletes of a revoked lease", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const watch = yield* openWatch(target, `${ns}nodes/`)
      const lease = yield* store.grantLease(target.leaseTtlMs)
      yield* store.put(`${ns}nodes/a`, "up", { lease })
      yield* store.revokeLease(lease)
      assert.equal((yield* watch.take(2)).map(describe), [`put ${ns}nodes/a=up`, `delete ${ns}nodes/a`])
    }))

  it("operations on a closed store fail with `closed`", (ns) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(Layer.fresh(target.layer()), scope)
      const store = Context.get(context, ControlStore)
      yield* store.put(`${ns}k`, "v")
      yield* Scope.close(scope, Exit.void)
      assert.is(yield* reasonOf(store.get(`${ns}k`)), "closed")
      assert.is(yield* reasonOf(store.put(`${ns}k`, "w")), "closed")
    }))
}

function registerLimitTests(it: It, _target: ComplianceTarget) {
  it("too-large keys, values and transactions are refused with `too-large`; the limits themselves fit", (ns) =>
    Effect.gen(function* () {
      const store = yield* ControlStore
      const longKey = `${ns}${"k".repeat(keyBytesMax)}`
      assert.is(yield* reasonOf(store.put(longKey, "v")), "too-large")
      assert.is(yield* reasonOf(store.get(longKey)), "too-large")
      assert.is(yield* reasonOf(store.put(`${ns}big`, "v".repeat(valueBytesMax + 1))), "too-large")
      assert.is(yield* reasonOf(store.put(`${ns}big`, "é".repeat(valueBytesMax / 2 + 1))), "too-large", "limits count UTF-8 bytes")
      const puts = Array.from({ length: txnOpsMax + 1 }, (_, index) => ({ key: `${ns}t/${index}`, value: "x" }))
      assert.is(yield* reasonOf(store.transaction({ compare: [], put: puts })), "too-large")
      assert.equal(yield* store.list(ns), [], "nothing was written")
      const maxValue = "v".repeat(valueBytesMax)
      yield* store.put(`${ns}big`, maxValue)
      assert.is((yield* store.get(`${ns}big`))?.value.length, valueBytesMax)
    }))
}
