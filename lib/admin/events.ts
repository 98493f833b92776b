/**
 * The cluster's recent events, numbered, for the admin API's `GET /v1/events?since=N` (the CLI
 * and scripts poll it and print what is new). Bounded: only the last `eventLogMax` are kept; a
 * reader that fell further behind sees the oldest kept one next. Pure.
 */
import type { ClusterEvent } from "../cluster/clusterNode.ts"

/** Events kept for readers of `/v1/events`. */
export const eventLogMax = 1000

export interface NumberedEvent extends ClusterEvent {
  readonly seq: number
}

export interface EventLog {
  readonly push: (event: ClusterEvent) => number
  /** Events with `seq > since`, oldest first, and the seq to ask from next. */
  readonly since: (since: number) => { readonly events: ReadonlyArray<NumberedEvent>; readonly next: number }
}

export const makeEventLog = (max = eventLogMax): EventLog => {
  const kept: NumberedEvent[] = []
  let seq = 0
  return {
    push: (event) => {
      seq++
      kept.push({ ...event, seq })
      if (kept.length > max) kept.shift()
      return seq
    },
    since: (since) => ({ events: kept.filter((e) => e.seq > since), next: seq }),
  }
}
