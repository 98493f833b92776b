/**
 * A cluster node's events: kept in a bounded recent list, published to subscribers (sliding: a
 * subscriber too far behind loses the oldest), and passed to the `onClusterEvent` callback.
 */
import { Clock, Effect, PubSub } from "effect"
import type { ClusterEvent, Publish } from "./types.ts"

export const recentEventsMax = 500
/** A condition the agent sees at every tick is published at most this often per key. */
export const throttledEventMs = 5000

export interface EventLog {
  readonly publish: Publish
  /** Publishes at most once every `throttledEventMs` per key (a condition the agent sees at every tick). */
  readonly publishThrottled: (key: string, kind: string, message: string, volume?: string) => void
  readonly recent: () => ReadonlyArray<ClusterEvent>
  readonly hub: PubSub.PubSub<ClusterEvent>
}

export const makeEventLog = (me: string, onClusterEvent: ((event: ClusterEvent) => void) | undefined): Effect.Effect<EventLog> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const events: ClusterEvent[] = []
    // Subscribers that fall more than this many events behind lose the oldest (sliding).
    const hub = yield* PubSub.sliding<ClusterEvent>(recentEventsMax)
    const now = () => clock.currentTimeMillisUnsafe()
    const publish: Publish = (kind, message, volume) => {
      const event: ClusterEvent = { atMs: now(), node: me, kind, message, ...(volume ? { volume } : {}) }
      events.push(event)
      if (events.length > recentEventsMax) events.shift()
      PubSub.publishUnsafe(hub, event)
      onClusterEvent?.(event)
    }
    const lastPublishedMs = new Map<string, number>()
    const publishThrottled = (key: string, kind: string, message: string, volume?: string) => {
      if (now() - (lastPublishedMs.get(key) ?? -Infinity) < throttledEventMs) return
      if (lastPublishedMs.size > recentEventsMax) lastPublishedMs.clear()
      lastPublishedMs.set(key, now())
      publish(kind, message, volume)
    }
    return { publish, publishThrottled, recent: () => [...events], hub }
  })
