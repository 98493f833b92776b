/**
 * A master serves only while its node lease was renewed recently (membership.ts `leaseValid`), and
 * that age is measured on the monotonic clock: a wall-clock step in either direction neither keeps
 * a lease "valid" past ¾ of its TTL nor cuts a freshly renewed one short.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Clock, Effect, Stream } from "effect"
import type { ControlStoreShape } from "../../../lib/control/ControlStore.ts"
import { makeMembership, type Membership } from "../../../lib/cluster/membership.ts"

const test = suite("membership lease validity under clock steps")
const leaseTtlMs = 1000

/** A clock whose wall time and monotonic time are set by hand, apart. */
const manualClock = () => {
  const state = { wallMs: 1_700_000_000_000, monotonicMs: 5_000 }
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => state.wallMs,
    currentTimeMillis: Effect.sync(() => state.wallMs),
    currentTimeNanosUnsafe: () => BigInt(state.wallMs) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(state.wallMs) * 1_000_000n),
    monotonicTimeNanosUnsafe: () => BigInt(state.monotonicMs) * 1_000_000n,
    monotonicTimeNanos: Effect.sync(() => BigInt(state.monotonicMs) * 1_000_000n),
    sleep: () => Effect.void,
  }
  return { state, clock }
}

/** A control store that grants and keeps every lease (only what membership's register uses). */
const grantingStore: ControlStoreShape = {
  get: () => Effect.succeed(undefined),
  list: () => Effect.succeed([]),
  put: () => Effect.succeed(1),
  delete: () => Effect.void,
  transaction: () => Effect.succeed({ succeeded: true, revision: 1, responses: [] } as never),
  grantLease: () => Effect.succeed("lease-1"),
  keepAlive: () => Effect.void,
  revokeLease: () => Effect.void,
  watch: () => Stream.empty,
}

const registered = (clock: Clock.Clock): Membership =>
  Effect.runSync(Effect.gen(function* () {
    const membership = yield* makeMembership({
      control: grantingStore, me: "n1", address: { host: "127.0.0.1", port: 5703 }, incarnation: 1,
      leaseTtlMs, tickMs: 100, publish: () => undefined, onLost: () => Effect.void,
    })
    yield* membership.register
    return membership
  }).pipe(Effect.provideService(Clock.Clock, clock)))

test("a wall clock stepped an hour forward, then back, leaves a fresh lease valid", () => {
  const { state, clock } = manualClock()
  const membership = registered(clock)
  assert.ok(membership.leaseValid(), "valid right after registering")
  state.wallMs += 3_600_000
  assert.ok(membership.leaseValid(), "a forward wall step must not fence a healthy master")
  state.wallMs -= 7_200_000
  assert.ok(membership.leaseValid(), "a backward wall step must not fence it either")
})

test("a wall clock stepped back does not keep an old lease valid: ¾ of the TTL of monotonic time ends it", () => {
  const { state, clock } = manualClock()
  const membership = registered(clock)
  state.monotonicMs += leaseTtlMs * 0.75 - 1
  assert.ok(membership.leaseValid(), "still inside ¾ of the TTL")
  state.wallMs -= 3_600_000
  state.monotonicMs += 2
  assert.not.ok(membership.leaseValid(), "past ¾ of the TTL the master must stop serving, whatever the wall clock says")
})

test.run()
