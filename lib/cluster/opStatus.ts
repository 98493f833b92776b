/**
 * The statuses of planned moves and drains, kept in the control store (records.ts:
 * `replivol/status/moves/<ns>/<name>`, `replivol/status/drains/<node>`) so that every node's API
 * answers for them, not only the node that runs one (the CLI may ask any node, and the runner
 * may be unreachable). The runner writes a status at every change of its state and its sync
 * progress at most every `opStatusWriteMs` (`makeStatusWriter`); a write that fails is tried
 * again (the final one for longer), and the runner's own API shows its own last status.
 *
 * A reader sees a running status whose runner is gone — no node record, or one of another
 * incarnation (the process that ran it stopped; the operation died with it) — as failed, saying
 * so (`readMoveStatus`, `readDrainStatus`): the operation does not resume by itself, the
 * records show how far it got, and running it again goes on from there.
 */
import { Clock, Effect, Schedule } from "effect"
import { ControlStore, type ControlError } from "../control/ControlStore.ts"
import { isCount, isRecord } from "../core/guards.ts"
import { opStatusFinalWriteAttemptsMax, opStatusRetryMs, opStatusWriteAttemptsMax, opStatusWriteMs } from "../core/limits.ts"
import { encode, keys } from "./records.ts"
import { getNode } from "./store.ts"
import type { DrainStatus, MoveStatus } from "./types.ts"

/** What is stored: the status and the incarnation of the runner's process (records.ts NodeRecord). */
type Stored<A> = A & { readonly runnerIncarnation?: number }

const moveStates = new Set(["copying", "handing-over", "done", "failed"])
const drainStates = new Set(["draining", "done", "failed"])

const parse = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return isRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}

const common = (value: Record<string, unknown>): boolean =>
  typeof value.runner === "string" && typeof value.state === "string" && isCount(value.startedAtMs) &&
  (value.runnerIncarnation === undefined || isCount(value.runnerIncarnation)) && (value.error === undefined || typeof value.error === "string")

/** A stored move status, or undefined for a malformed one (read as absent). */
export const decodeMoveStatus = (text: string): Stored<MoveStatus> | undefined => {
  const value = parse(text)
  const ok = value !== undefined && common(value) && moveStates.has(value.state as string) && typeof value.volume === "string" && typeof value.to === "string" &&
    (value.from === undefined || value.from === null || typeof value.from === "string") && typeof value.newCopy === "boolean" && isCount(value.bytesDone) && isCount(value.bytesTotal)
  return ok ? (value as unknown as Stored<MoveStatus>) : undefined
}

/** A stored drain status, or undefined for a malformed one (read as absent). */
export const decodeDrainStatus = (text: string): Stored<DrainStatus> | undefined => {
  const value = parse(text)
  const ok = value !== undefined && common(value) && drainStates.has(value.state as string) && typeof value.node === "string" && isCount(value.volumesTotal) && isCount(value.volumesDone) &&
    (value.current === undefined || (isRecord(value.current) && typeof value.current.volume === "string" && typeof value.current.to === "string"))
  return ok ? (value as unknown as Stored<DrainStatus>) : undefined
}

/** Why the runner of a running status is gone (undefined: it still runs, or the status is final). */
const runnerGone = (status: Stored<{ readonly runner: string; readonly state: string }>) =>
  Effect.map(getNode(status.runner), (node) => {
    if (isFinalState(status.state)) return undefined
    if (node === undefined) return `its node ${status.runner} is down (no node record): the operation stopped with it`
    if (status.runnerIncarnation !== undefined && node.incarnation !== undefined && node.incarnation !== status.runnerIncarnation) {
      return `its node ${status.runner} restarted since (incarnation ${status.runnerIncarnation} → ${node.incarnation}): the operation stopped with the process that ran it`
    }
    return undefined
  })

const read = <A extends { readonly runner: string; readonly state: string }>(key: string, decode: (text: string) => Stored<A> | undefined, failed: A["state"]) =>
  Effect.gen(function* () {
    const control = yield* ControlStore
    const row = yield* control.get(key)
    const stored = row ? decode(row.value) : undefined
    if (stored === undefined) return undefined
    const { runnerIncarnation: _i, ...status } = stored
    const gone = yield* runnerGone(stored)
    return (gone === undefined ? status : { ...status, state: failed, error: `${gone}; run it again (what it finished stays done)` }) as unknown as A
  })

/** The stored status of the volume's running or last move (undefined: none is stored). */
export const readMoveStatus = (volume: string): Effect.Effect<MoveStatus | undefined, ControlError, ControlStore> => read<MoveStatus>(keys.moveStatus(volume), decodeMoveStatus, "failed")

/** The stored status of the node's running or last drain (undefined: none is stored). */
export const readDrainStatus = (node: string): Effect.Effect<DrainStatus | undefined, ControlError, ControlStore> => read<DrainStatus>(keys.drainStatus(node), decodeDrainStatus, "failed")

/**
 * The runner's writer of one operation's status at `key`: each call writes the status when its
 * state changed or `opStatusWriteMs` passed since the last write (calls are sequential: the
 * operation's fiber yields each). A write never fails the operation: it is tried `attemptsMax`
 * times in all, `opStatusRetryMs` apart, then given up (the next change writes again).
 */
export const makeStatusWriter = <A extends { readonly state: string }>(key: string, runnerIncarnation: number) =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    let lastState: string | undefined
    let lastWriteMs = Number.NEGATIVE_INFINITY
    return (status: A, attemptsMax: number = opStatusWriteAttemptsMax): Effect.Effect<void, never, ControlStore> => {
      const nowMs = clock.currentTimeMillisUnsafe()
      if (status.state === lastState && nowMs - lastWriteMs < opStatusWriteMs) return Effect.void
      lastState = status.state
      lastWriteMs = nowMs
      return ControlStore.use((control) => control.put(key, encode({ ...status, runnerIncarnation }))).pipe(
        Effect.retry({ times: Math.max(0, attemptsMax - 1), schedule: Schedule.spaced(opStatusRetryMs) }),
        Effect.ignore,
      )
    }
  })

/** A status that no later write of its run follows (written with `opStatusFinalWriteAttemptsMax` tries). */
export const isFinalState = (state: string): boolean => state === "done" || state === "failed"

/** How many tries a status write gets: a final one many more (nothing after it would correct it). */
export const attemptsFor = (state: string): number => (isFinalState(state) ? opStatusFinalWriteAttemptsMax : opStatusWriteAttemptsMax)
