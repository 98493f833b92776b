/**
 * Watch fan-out for the embedded store: a registry of prefix watchers, each with a bounded queue.
 *
 * Publishing never blocks the writer and never grows memory: a watcher whose queue is full is
 * removed and its stream fails with `watch-lagged` (after delivering what it had buffered), so a
 * slow consumer costs at most `bufferEvents` events. Closing fails every stream with `closed`.
 */
import { Cause, Effect, Queue, Stream } from "effect"
import { ControlError, type WatchEvent } from "./ControlStore.ts"

interface Watcher {
  readonly prefix: string
  readonly queue: Queue.Queue<WatchEvent, ControlError | Cause.Done>
}

export interface Watchers {
  readonly publish: (events: ReadonlyArray<WatchEvent>) => void
  /** A stream of the events under `prefix` published after it starts; fails with `closed` once `close` ran. */
  readonly watch: (prefix: string, closedError: () => ControlError) => Stream.Stream<WatchEvent, ControlError>
  readonly close: (error: ControlError) => void
}

const eventKey = (event: WatchEvent): string => (event.type === "put" ? event.kv.key : event.key)

export const makeWatchers = (bufferEvents: number): Watchers => {
  const watchers = new Set<Watcher>()
  let closed = false

  const publish = (events: ReadonlyArray<WatchEvent>) => {
    for (const event of events) {
      const key = eventKey(event)
      for (const watcher of watchers) {
        if (!key.startsWith(watcher.prefix) || Queue.offerUnsafe(watcher.queue, event)) continue
        watchers.delete(watcher)
        Queue.failCauseUnsafe(watcher.queue, Cause.fail(new ControlError({
          reason: "watch-lagged",
          message: `watch on "${watcher.prefix}" fell more than ${bufferEvents} events behind; watch again and re-read`,
        })))
      }
    }
  }

  const watch = (prefix: string, closedError: () => ControlError): Stream.Stream<WatchEvent, ControlError> =>
    Stream.callback<WatchEvent, ControlError>(
      (queue) =>
        Effect.acquireRelease(
          Effect.suspend(() => {
            if (closed) return Effect.fail(closedError())
            const watcher: Watcher = { prefix, queue }
            watchers.add(watcher)
            return Effect.succeed(watcher)
          }),
          (watcher) => Effect.sync(() => watchers.delete(watcher)),
        ),
      { bufferSize: bufferEvents },
    )

  const close = (error: ControlError) => {
    closed = true
    for (const watcher of watchers) Queue.failCauseUnsafe(watcher.queue, Cause.fail(error))
    watchers.clear()
  }

  return { publish, watch, close }
}
