/**
 * A copy hosted on this node as a replica: its identity record, its activity log (DRBD's "AL"),
 * and what a failed write or fdatasync does to it. Pure state and its durable record; the
 * connection that applies a master's frames is serve.ts.
 */
import { Clock, Effect } from "effect"
import type { BlockStore } from "../../store/BlockStore.ts"
import type { Connection } from "../../net/connection.ts"
import { isCount, isRecord } from "../../core/guards.ts"
import { inflightWritesPerReplicaMax } from "../../core/limits.ts"
import { followed, type CopyIdentity, type CopyState } from "../copyIdentity.ts"
import { ReplicationError } from "../errors.ts"
import type { OpenRequest } from "../protocol.ts"
import { syncWindowChunks } from "../master/writePipeline.ts"

/**
 * Writes remembered per hosted volume for the activity log (DRBD's "AL"): a new master reconciles
 * these regions. A write can differ between copies only while it is unacknowledged by some copy;
 * a master has at most `inflightWritesPerReplicaMax` writes plus `syncWindowChunks` sync chunks
 * unacknowledged, and every copy applies them in order, so the last that many applied writes
 * cover every possible difference. Twice that, for margin.
 */
export const activityWritesMax = 2 * (inflightWritesPerReplicaMax + syncWindowChunks)
/** Ranges sent in an OpenAck; beyond this the replica answers "all" and the master compares everything. */
export const activityRangesMax = 2048

export interface Hosted {
  /** What the copy's durable record says (copyIdentity.ts); changed only after the record is written. */
  identity: CopyIdentity
  /**
   * The activity log is incomplete: this host (re)opened a copy with history (after a restart the
   * ring is empty, but the copy may hold writes its peers lack, or have lost unflushed ones), or a
   * write or fdatasync failed. It answers "all" until a master opens it and syncs everything.
   */
  activityUnknown: boolean
  /** A write or fdatasync failed since the last Open: this copy may not claim Complete in this session. */
  damagedSinceOpen: boolean
  /**
   * A write or fdatasync failed since the copy was last recorded complete by a master's sync: it
   * may have lost writes it acknowledged (a failed fdatasync can drop the page cache), so it must
   * not count as in sync whatever the volume record says (`damaged`; cluster/agent.ts).
   */
  damagedSinceComplete: boolean
  /** Ring of the last `activityWritesMax` applied writes, as [offset, length]. */
  readonly activity: Array<readonly [number, number]>
  activityNext: number
  readonly volume: string
  readonly id: bigint
  /** Its size is the copy's (`store.sizeBytes`): grown by a Resize or by an Open of a bigger size. */
  readonly store: BlockStore
  epoch: number
  owner: Connection | undefined
  master: string | undefined
  writesApplied: number
  bytesApplied: number
}

const storeError = (entry: Hosted, what: string) => (cause: { readonly message: string }) =>
  new ReplicationError({ reason: "store", volume: entry.volume, message: `cannot record the identity of ${entry.volume}'s copy (${what}): ${cause.message}`, cause })

/** Writes the copy's identity record (durable, atomic), then adopts it in memory. */
export const persistIdentity = (entry: Hosted, identity: CopyIdentity): Effect.Effect<void, ReplicationError> =>
  Effect.gen(function* () {
    const state: CopyState = identity.state === "unknown" ? "incomplete" : identity.state
    const updatedAtMs = yield* Clock.currentTimeMillis
    yield* entry.store.writeMeta({
      volume: entry.volume, sizeBytes: entry.store.sizeBytes, epoch: identity.epoch, role: "replica", state, updatedAtMs,
      ...(identity.uid === undefined ? {} : { uid: identity.uid }),
      ...(identity.generation === undefined ? {} : { generation: identity.generation }),
    }).pipe(Effect.mapError(storeError(entry, state)))
    entry.identity = { ...identity, state }
  })

/**
 * After a failed write or fdatasync the copy cannot vouch for what it holds: its activity log
 * becomes unknown (the next master session syncs it in full) and its record says incomplete.
 */
export const markDamaged = (entry: Hosted) =>
  Effect.gen(function* () {
    entry.activityUnknown = true
    entry.damagedSinceOpen = true
    entry.damagedSinceComplete = true
    if (entry.identity.state !== "incomplete") yield* Effect.ignore(persistIdentity(entry, { ...entry.identity, state: "incomplete" }))
  })

/**
 * The identity a copy takes when `request` opens it: a reconnect of the session it follows keeps
 * its state; any other session (or a copy that cannot vouch for its recent writes) is owed a sync.
 */
export const identityOnOpen = (entry: Hosted, request: OpenRequest): CopyIdentity => {
  const lineage = { uid: request.uid ?? entry.identity.uid ?? "", epoch: request.epoch, generation: request.generation ?? "" }
  if (!entry.activityUnknown && followed(entry.identity, lineage)) return entry.identity
  return { uid: request.uid ?? entry.identity.uid, epoch: request.epoch, generation: request.generation, state: "incomplete" }
}

/** Decodes the body of a Complete frame: the session the master says the copy now holds in full. */
export const decodeComplete = (body: Uint8Array): { uid: string; epoch: number; generation: string } | undefined => {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(body))
    if (isRecord(value) && typeof value.uid === "string" && typeof value.generation === "string" && isCount(value.epoch))
      return { uid: value.uid, epoch: value.epoch, generation: value.generation }
  } catch {
    // fall through
  }
  return undefined
}

/** The activity log as sorted, merged ranges; "all" when it does not fit an OpenAck. */
export const activityRanges = (entry: Hosted): Array<[number, number]> | "all" => {
  if (entry.activityUnknown) return "all"
  const sorted = [...entry.activity].sort((a, b) => a[0] - b[0])
  const merged: Array<[number, number]> = []
  for (const [offset, length] of sorted) {
    const last = merged[merged.length - 1]
    if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + length - last[0])
    else merged.push([offset, length])
  }
  return merged.length > activityRangesMax ? "all" : merged
}

/** A write that starts on the copy enters the activity log at once (a ring of `activityWritesMax`). */
export const noteActivity = (entry: Hosted, offset: number, length: number) => {
  if (entry.activity.length < activityWritesMax) entry.activity.push([offset, length])
  else entry.activity[entry.activityNext] = [offset, length]
  entry.activityNext = (entry.activityNext + 1) % activityWritesMax
}
