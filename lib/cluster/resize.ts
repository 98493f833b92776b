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
import { checkResize } from "../replication/resize.ts"
import { ReplicationError } from "../replication/errors.ts"
import type { VolumeRecord } from "./records.ts"

/** The record asking for a resize to `sizeBytes`; `unchanged` when it has that size or already asks for it; or why not (nothing changes). */
export const requestResize = (record: VolumeRecord, sizeBytes: number): VolumeRecord | "unchanged" | ReplicationError => {
  const bad = checkResize(record.volume, record.sizeBytes, sizeBytes)
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

/** The size a copy's master opens it at: the pending target when a resize is under way. */
export const masterCapacityOf = (record: VolumeRecord): number => record.resizeToBytes ?? record.sizeBytes
