/**
 * Lease helpers over any ControlStore: keep a lease alive on a schedule, or hold one for the
 * lifetime of a Scope.
 *
 * A holder renews at ttl/3 (as etcd's own clients do), so two renewals can be lost before the
 * lease expires. An `unreachable` renewal is retried a few times within that slack; any other
 * failure (the lease expired or was revoked) ends the keep-alive with that error, which is how
 * a master learns it has lost its lease and must stop acknowledging writes.
 */
import { Effect, Fiber, Schedule, type Scope } from "effect"
import { type ControlError, ControlStore, type LeaseId } from "./ControlStore.ts"

/** Renewals per TTL (renew at ttl/3). */
export const leaseRenewalsPerTtlCount = 3
/** Quick retries of an `unreachable` renewal, spaced ttl/10, before giving up. */
export const leaseRenewalRetriesMax = 5

/** Renews `lease` every ttl/3 of Clock time, forever; fails when the lease is lost. Fork it in a Scope. */
export const keepLeaseAlive = (lease: LeaseId, ttlMs: number): Effect.Effect<never, ControlError, ControlStore> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const renewOnce = store.keepAlive(lease).pipe(
      Effect.retry({
        schedule: Schedule.spaced(Math.max(1, Math.floor(ttlMs / 10))),
        times: leaseRenewalRetriesMax,
        while: (error) => error.reason === "unreachable",
      }),
    )
    yield* Effect.repeat(renewOnce, Schedule.spaced(Math.max(1, Math.floor(ttlMs / leaseRenewalsPerTtlCount))))
    return yield* Effect.never
  })

/** A lease held by a Scope. `lost` fails (with `lease-expired`, …) if the lease is lost before the scope closes. */
export interface ScopedLease {
  readonly id: LeaseId
  readonly ttlMs: number
  readonly lost: Effect.Effect<never, ControlError>
}

/** Grants a lease, keeps it alive in a fiber of the current Scope, and revokes it when the Scope closes. */
export const withLease = (ttlMs: number): Effect.Effect<ScopedLease, ControlError, ControlStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const id = yield* Effect.acquireRelease(store.grantLease(ttlMs), (lease) =>
      store.revokeLease(lease).pipe(Effect.ignore))
    const keeper = yield* Effect.forkScoped(keepLeaseAlive(id, ttlMs).pipe(Effect.provideService(ControlStore, store)))
    return { id, ttlMs, lost: Fiber.join(keeper) }
  })
