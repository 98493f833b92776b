/**
 * Polling the control store until a record says what a caller waits for: a lowered replica
 * count's surplus dropped, a resize committed, a volume healthy. Bounded by `waitMs`; the caller
 * decides what running out of time means (answer with the record as it is, or fail).
 */
import { Clock, Effect } from "effect"

/** The last value read, and whether it satisfied the wait before the time ran out. */
export interface Polled<A> {
  readonly value: A
  readonly settled: boolean
}

/** Runs `read` every `pollMs` until `settled(value)` holds or `waitMs` passed (always at least one read). */
export const pollUntil = <A, E, R>(read: Effect.Effect<A, E, R>, settled: (value: A) => boolean, waitMs: number, pollMs: number): Effect.Effect<Polled<A>, E, R> =>
  Effect.gen(function* () {
    const deadlineMs = (yield* Clock.currentTimeMillis) + waitMs
    for (;;) {
      const value = yield* read
      if (settled(value)) return { value, settled: true }
      if ((yield* Clock.currentTimeMillis) >= deadlineMs) return { value, settled: false }
      yield* Effect.sleep(pollMs)
    }
  })
