/**
 * Membership: the node registers `replivol/nodes/<name>` under a lease it keeps alive; a node
 * whose lease expires is lost. A master serves IO only while its lease renewals are recent
 * (`leaseValid`), and fences itself when a renewal fails (`onLost`, called before anything else
 * happens on the node).
 */
import { Clock, Effect } from "effect"
import type { ControlError, ControlStoreShape } from "../control/ControlStore.ts"
import { encode, keys, type NodeRecord } from "./records.ts"
import type { Publish } from "./types.ts"

export interface MembershipOptions {
  readonly control: ControlStoreShape
  readonly me: string
  readonly address: { readonly host: string; readonly port: number }
  readonly incarnation: number
  readonly api?: string
  readonly leaseTtlMs: number
  readonly tickMs: number
  readonly publish: Publish
  /** Called when the lease is lost, before the node registers again: every master must fence. */
  readonly onLost: (why: string) => Effect.Effect<void>
}

export interface Membership {
  /** Registers the node under a fresh lease. */
  readonly register: Effect.Effect<void, ControlError>
  /** Renews the lease for ever (registering again after a loss); run it in a fiber. */
  readonly keepAlive: Effect.Effect<never>
  /** The node's current lease (undefined while it is lost). */
  readonly lease: () => string | undefined
  /** The lease was renewed recently enough for a master to serve (¾ of its TTL, monotonic clock). */
  readonly leaseValid: () => boolean
  /** Gives the lease up (a node stopping cleanly), or forgets it (a crash: it must expire). */
  readonly leave: (revoke: boolean) => Effect.Effect<void>
}

export const makeMembership = (options: MembershipOptions): Effect.Effect<Membership> =>
  Effect.gen(function* () {
    const { control, me, address, incarnation, leaseTtlMs, tickMs, publish } = options
    const clock = yield* Clock.Clock
    let lease: string | undefined
    let lastRenewOkMs = -Infinity
    // Lease ages are measured on the monotonic clock: a wall-clock step neither extends nor cuts them.
    const monotonicMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
    const leaseValid = () => lease !== undefined && monotonicMs() - lastRenewOkMs < leaseTtlMs * 0.75

    // Register under a lease and keep it alive; on loss, fence every master first.
    const register = Effect.gen(function* () {
      const grantStartedMs = monotonicMs()
      const granted = yield* control.grantLease(leaseTtlMs)
      const startedAtMs = clock.currentTimeMillisUnsafe()
      const record: NodeRecord = { name: me, host: address.host, port: address.port, startedAtMs, incarnation, ...(options.api ? { api: options.api } : {}) }
      yield* control.put(keys.node(me), encode(record), { lease: granted })
      lease = granted
      lastRenewOkMs = grantStartedMs
      publish("node-registered", `${me} joined at ${address.host}:${address.port}`)
    })
    const keepAlive = Effect.gen(function* () {
      for (;;) {
        if (lease === undefined) {
          const result = yield* Effect.result(register)
          if (result._tag === "Failure") yield* Effect.sleep(tickMs)
          continue
        }
        yield* Effect.sleep(Math.max(10, Math.floor(leaseTtlMs / 3)))
        const startedMs = monotonicMs()
        const result = yield* Effect.result(control.keepAlive(lease))
        if (result._tag === "Success") lastRenewOkMs = startedMs
        else if (result.failure.reason === "lease-expired" || result.failure.reason === "lease-not-found" || !leaseValid()) {
          publish("lease-lost", `${me} lost its lease (${result.failure.message}); fencing its masters`)
          lease = undefined
          yield* options.onLost("the node's lease was lost")
        }
      }
    })
    const leave = (revoke: boolean) =>
      Effect.gen(function* () {
        if (lease !== undefined && revoke) yield* Effect.ignore(control.revokeLease(lease))
        lease = undefined
      })
    return { register, keepAlive, lease: () => lease, leaseValid, leave }
  })
