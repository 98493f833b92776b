/**
 * Online resize in the control store: a request, then a commit, each one compare-and-swap of the
 * volume record (pure functions of the record here; the API and the master's agent apply them).
 *
 * 1. Request (`replivol volume resize`, any node): the record gets `resizeToBytes`, the target.
 *    Nothing else changes; IO goes on at `sizeBytes`.
 * 2. The master (its agent, every tick) grows every copy to the target (MasterVolume.resize:
 *    its own, then every in-sync and syncing replica in stream order, acknowledged), and then
 *    commits: `sizeBytes` becomes the target and `resizeToBytes` goes, in one compare-and-swap
 *    that holds only while it is still the master at its epoch. Only after the commit does IO
 *    reach the new bytes. A master that opens while a resize is pending grows its copy to the
 *    target first (so its replicas are opened at the target, never asked to be smaller) and
 *    serves at `sizeBytes` until it committed.
 *
 * So a crash anywhere leaves the volume at the old size (before the commit: copies grown past
 * it hold only zeros there, as nothing wrote past the old end) or at the new one (after it: every
 * copy that was in sync has the new size, the others get it at their next Open), and a pending
 * resize is always completed, never rolled back: no copy is ever truncated.
 */
import { Clock, Effect } from "effect"
import type { ControlError, ControlStore } from "../control/ControlStore.ts"
import { checkResize } from "../replication/resize.ts"
import { ReplicationError, type VolumeError } from "../replication/errors.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"
import type { BlockStore, StoreError } from "../store/BlockStore.ts"
import { ClusterError, type VolumeRecord } from "./records.ts"
import { pollUntil } from "./poll.ts"
import { getVolume, updateVolume } from "./store.ts"

/** How long the admin API waits for a requested resize to be done before it answers with it still under way. */
export const resizeWaitMsDefault = 10_000

/** The record asking for a resize to `sizeBytes`; `unchanged` when it has that size or already asks for it; or why not (nothing changes). */
export const requestResize = (record: VolumeRecord, sizeBytes: number): VolumeRecord | "unchanged" | ReplicationError => {
  const bad = checkResize(record.volume, record.sizeBytes, sizeBytes, undefined, record.encryption?.unitBytes)
  if (bad) return bad
  const pending = record.resizeToBytes
  if (sizeBytes === record.sizeBytes && pending === undefined) return "unchanged"
  if (pending !== undefined && sizeBytes === pending) return "unchanged"
  if (pending !== undefined && sizeBytes < pending)
    return new ReplicationError({ reason: "shrink", volume: record.volume, message: `volume ${record.volume} is growing to ${pending} bytes already; it cannot be made ${sizeBytes} bytes: a volume only grows (allowed: ${pending} bytes or more); nothing was changed` })
  return { ...record, resizeToBytes: sizeBytes }
}

/**
 * The record with the resize to `sizeBytes` committed by `master` at `epoch`: `sizeBytes` moves
 * to it, and `resizeToBytes` goes unless a bigger size was asked for meanwhile. `conflict` when
 * `master` is no longer the master at `epoch` or no resize to at least `sizeBytes` is pending;
 * `unchanged` when the record has that size already.
 */
export const commitResize = (record: VolumeRecord, master: string, epoch: number, sizeBytes: number): VolumeRecord | "unchanged" | "conflict" => {
  if (record.master !== master || record.epoch !== epoch) return "conflict"
  if (record.sizeBytes >= sizeBytes) return "unchanged"
  if (record.resizeToBytes === undefined || record.resizeToBytes < sizeBytes) return "conflict"
  const { resizeToBytes, ...rest } = record
  return resizeToBytes > sizeBytes ? { ...rest, sizeBytes, resizeToBytes } : { ...rest, sizeBytes }
}

/** The size a copy's master opens it at, and grows every copy to: the pending target when a resize is under way. */
export const masterCapacityOf = (record: VolumeRecord): number => Math.max(record.resizeToBytes ?? 0, record.sizeBytes)

/**
 * `replivol volume resize`, first half: records the request (compare-and-swap; a refusal changes
 * nothing). Returns the record as it is now, and whether this call added or raised the target.
 */
export const recordResize = (volume: string, sizeBytes: number): Effect.Effect<{ readonly record: VolumeRecord; readonly asked: boolean }, ReplicationError | ClusterError | ControlError, ControlStore> =>
  Effect.gen(function* () {
    let refusal: ReplicationError | undefined
    let asked = false
    const record = yield* updateVolume(volume, (current) => {
      const next = requestResize(current, sizeBytes)
      if (next instanceof ReplicationError) refusal = next
      asked = !(next instanceof ReplicationError) && next !== "unchanged"
      return next instanceof ReplicationError || next === "unchanged" ? undefined : next
    })
    if (refusal) return yield* refusal
    if (!record) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
    return { record, asked }
  })

/** The second half: waits up to `waitMs` for the volume to have `sizeBytes`; the record as it is then. */
export const awaitResize = (volume: string, sizeBytes: number, waitMs: number, pollMs: number): Effect.Effect<VolumeRecord, ClusterError | ControlError, ControlStore> =>
  pollUntil(
    Effect.flatMap(getVolume(volume), (found) => (found ? Effect.succeed(found.value) : Effect.fail(new ClusterError({ reason: "not-found", message: `volume ${volume} was deleted while it was being resized` })))),
    (record) => record.sizeBytes >= sizeBytes,
    waitMs,
    pollMs,
  ).pipe(Effect.map(({ value }) => value))

/** What the master's agent runs for the record's pending resize. */
export interface ResizeStep {
  readonly run: Effect.Effect<void, VolumeError | ReplicationError | ClusterError | ControlError, ControlStore>
}

/**
 * The agent's step for a serving master (`me` at the record's epoch): grow every copy to the
 * pending target, then commit it (`commitResize`); undefined when no resize is pending.
 */
export const resizeStep = (master: MasterVolume, record: VolumeRecord, me: string): ResizeStep | undefined => {
  // Also a size already committed: a session opened from a record read before the commit serves
  // the old size until it grows too (its commit then changes nothing).
  const target = masterCapacityOf(record)
  if (master.sizeBytes >= target) return undefined
  const commit = updateVolume(record.volume, (current) => {
    const next = commitResize(current, me, record.epoch, target)
    if (next === "conflict") return new ClusterError({ reason: "conflict", message: `volume ${record.volume}: ${me} is no longer its master at epoch ${record.epoch}, or no resize to ${target} bytes is pending; the resize is not committed` })
    return next === "unchanged" ? undefined : next
  })
  return { run: master.resize(target, Effect.asVoid(commit)) }
}

/**
 * Before a master opens a copy while a resize is pending, the copy is grown to the target: its
 * replicas are then opened at the target, so one grown by the previous master is never asked to
 * be smaller. IO stays at the record's `sizeBytes` until the resize is committed.
 */
export const growForMaster = (store: BlockStore, record: VolumeRecord): Effect.Effect<void, StoreError> =>
  store.sizeBytes < masterCapacityOf(record) ? store.grow(masterCapacityOf(record)) : Effect.void
