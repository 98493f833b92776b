/**
 * The etcd ControlStore against a throwaway etcd 3.4 on loopback: the shared compliance suite in
 * real time (lease TTL 1 s, bounded waits), plus what only etcd has — an unreachable server is a
 * typed `unreachable` error, and closing the layer revokes the leases it granted.
 */
import { Effect, Stream } from "effect"
import { Etcd3 } from "etcd3"
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { ControlStore } from "../../lib/control/ControlStore.ts"
import { layerEtcd, leaseTtlSeconds, prefixEnd } from "../../lib/platform/etcdControlStore.ts"
import { registerControlStoreCompliance } from "../support/controlStoreCompliance.ts"
import { startEtcd, type TestEtcd } from "../support/etcd.ts"

let etcd: TestEtcd | undefined
const endpoints = () => {
  if (etcd === undefined) throw new Error("etcd did not start")
  return etcd.endpoints
}

const Compliance = suite("etcd ControlStore compliance")
Compliance.before(async () => void (etcd = await startEtcd()))
Compliance.after(async () => {
  await etcd?.stop()
  etcd = undefined
})
registerControlStoreCompliance(Compliance, {
  name: "etcd",
  layer: () => layerEtcd({ hosts: endpoints() }),
  wrap: (effect) => effect,
  leaseTtlMs: 1_000,
  advance: (ms) => Effect.sleep(ms),
  awaitExpiry: (ttlMs, gone) =>
    Effect.gen(function* () {
      // etcd checks expiry about every 500 ms: allow TTL + 4 s before the test's own assertion.
      const deadline = performance.now() + ttlMs + 4_000
      while (!(yield* gone) && performance.now() < deadline) yield* Effect.sleep(50)
    }),
  pause: Effect.sleep(20),
  testTimeoutMs: 20_000,
})
Compliance.run()

const Etcd = suite("etcd ControlStore")
Etcd.before(async () => void (etcd ??= await startEtcd()))
Etcd.after(async () => {
  await etcd?.stop()
  etcd = undefined
})

Etcd("lease TTLs round up to whole seconds, at least 1; prefix ranges end after the prefix", () => {
  assert.equal([1, 999, 1000, 1001, 2500].map(leaseTtlSeconds), [1, 1, 1, 2, 3])
  assert.equal([...prefixEnd(Buffer.from("a/"))], [...Buffer.from("a0")])
  assert.equal([...prefixEnd(Buffer.from([0x61, 0xff]))], [0x62])
})

Etcd("an unreachable etcd is a typed `unreachable` error, not a hang", async () => {
  const started = performance.now()
  const failure = await Effect.runPromise(
    Effect.flip(ControlStore.use((store) => store.get("k")).pipe(Effect.provide(layerEtcd({ hosts: "http://127.0.0.1:1", requestTimeoutMs: 3_000 })))),
  )
  assert.is(failure.reason, "unreachable")
  assert.ok(failure.message.includes("127.0.0.1:1"), failure.message)
  assert.ok(performance.now() - started < 5_000, "bounded by requestTimeoutMs")
  const watchFailure = await Effect.runPromise(
    Effect.flip(ControlStore.use((store) => Stream.runDrain(store.watch("k/"))).pipe(Effect.provide(layerEtcd({ hosts: "http://127.0.0.1:1", requestTimeoutMs: 1_000 })))),
  )
  assert.is(watchFailure.reason, "unreachable", "a watch that cannot be established fails too")
})

Etcd("closing the layer revokes the leases it granted (etcd3 close() alone would not)", async () => {
  const lease = await Effect.runPromise(Effect.gen(function* () {
    const store = yield* ControlStore
    const id = yield* store.grantLease(60_000)
    yield* store.put("close-test/node", "up", { lease: id })
    return id
  }).pipe(Effect.provide(layerEtcd({ hosts: endpoints() }))))
  const observer = new Etcd3({ hosts: endpoints() })
  try {
    assert.is(await observer.get("close-test/node").string(), null, "the leased key is gone at once, not after 60 s")
    const ttl = await observer.leaseClient.leaseTimeToLive({ ID: lease })
    assert.ok(Number(ttl.TTL) <= 0, `lease ${lease} revoked (TTL ${ttl.TTL})`)
  } finally {
    observer.close()
  }
})

Etcd("a 1 MiB value and a transaction near the byte limit pass through etcd's request limit", () =>
  Effect.runPromise(Effect.gen(function* () {
    const store = yield* ControlStore
    const half = "h".repeat(600 * 1024)
    const result = yield* store.transaction({ compare: [], put: [{ key: "limit/a", value: half }, { key: "limit/b", value: half }] })
    assert.ok(result.succeeded)
    assert.is((yield* store.get("limit/b"))?.value.length, half.length)
  }).pipe(Effect.provide(layerEtcd({ hosts: endpoints() })))))

Etcd.run()
