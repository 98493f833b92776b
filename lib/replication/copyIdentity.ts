/**
 * Copy identity: what a copy of a volume can prove about the bytes it holds, and the master's
 * full-sync-or-delta decision made from that proof (DRBD's generation ids and disk states).
 *
 * Every copy — the master's and every replica's — keeps a durable record beside its data (the
 * store's meta record): the volume's unique id (`uid`, fresh at every create, so a volume deleted
 * and created again under the same name is another volume), the epoch and the master session
 * (`generation`) it last served or followed, and its state:
 *
 * - `empty`: created for this volume and never written: provably all zeros.
 * - `incomplete`: a sync or catch-up is owed (set durably before the first frame of a new
 *   master session is applied, and after any failed write or fdatasync).
 * - `complete`: was in sync with the master of `generation` (set only after an fdatasync of
 *   everything the sync copied, on the master's say-so).
 *
 * A copy that was opened by this process after a restart cannot vouch for its recent writes
 * (unflushed ones may be gone after a power loss): its activity log is "all".
 *
 * The rule (`decideSync`): a delta is enough only for a copy of the same uid that followed the
 * same master session (`uid`, `epoch`, `generation` equal to what the master expects) and whose
 * activity log is known — or, when that session's master is the one deciding, whose possibly
 * lost writes that master tracked itself (every frame not yet acknowledged, every region written
 * since the copy's last acknowledged fdatasync: lib/replication/link/frames.ts). Everything else — empty, unknown, another uid, an older lineage, an
 * unknown activity log — gets a full sync, and zero regions are skipped only for an `empty` copy.
 */
import type { StoreMeta } from "../store/BlockStore.ts"

export type CopyState = "empty" | "complete" | "incomplete"

/** What a copy says about itself (in its OpenAck), from its durable record. */
export interface CopyIdentity {
  readonly uid: string | undefined
  readonly epoch: number
  readonly generation: string | undefined
  /** `unknown`: no record (or an unreadable one) on a copy that was not created empty. */
  readonly state: CopyState | "unknown"
}

/** The lineage a master expects of a copy it may catch up by delta. */
export interface Lineage {
  readonly uid: string
  readonly epoch: number
  readonly generation: string
}

export type SyncDecision =
  | { readonly kind: "delta" }
  | { readonly kind: "full"; readonly skipZeros: boolean; readonly why: string }

const copyStates: ReadonlyArray<string> = ["empty", "complete", "incomplete"]

export const isCopyState = (value: unknown): value is CopyState => typeof value === "string" && copyStates.includes(value)

/** The identity a store's record proves; a store without a record is `empty` only if it was just created. */
export const identityOf = (meta: StoreMeta | undefined, createdEmpty: boolean): CopyIdentity => {
  if (meta === undefined) return { uid: undefined, epoch: 0, generation: undefined, state: createdEmpty ? "empty" : "unknown" }
  return { uid: meta.uid, epoch: meta.epoch, generation: meta.generation, state: isCopyState(meta.state) ? meta.state : "unknown" }
}

/** True when the copy followed exactly this lineage (same volume, same epoch, same master session). */
export const followed = (identity: CopyIdentity, lineage: Lineage): boolean =>
  identity.uid === lineage.uid && identity.epoch === lineage.epoch && identity.generation === lineage.generation

/**
 * Full sync or delta for a copy that answered `identity` with `activity`, when the master expects
 * `lineage` (undefined: the master has no lineage to offer, so only a full sync is safe).
 */
export const decideSync = (
  identity: CopyIdentity,
  activity: ReadonlyArray<readonly [number, number]> | "all",
  lineage: Lineage | undefined,
  /** The master of this very session tracked every region the copy may lack (unacknowledged or not yet fdatasynced). */
  sessionTracked = false,
): SyncDecision => {
  const full = (why: string): SyncDecision => ({ kind: "full", skipZeros: identity.state === "empty", why })
  if (identity.state === "empty") return full("the copy is empty")
  if (identity.state === "unknown") return full("the copy has no identity record")
  if (lineage === undefined) return full("no lineage to catch up from")
  if (identity.uid !== lineage.uid) return full(`the copy belongs to volume id ${identity.uid ?? "(none)"}, not ${lineage.uid}`)
  if (identity.epoch !== lineage.epoch || identity.generation !== lineage.generation)
    return full(`the copy followed epoch ${identity.epoch} session ${identity.generation ?? "(none)"}, not epoch ${lineage.epoch} session ${lineage.generation}`)
  if (activity === "all" && !sessionTracked) return full("the copy's recent writes are unknown (restarted, or a write or fdatasync failed)")
  if (identity.state === "incomplete" && !sessionTracked) return full("the copy was mid-sync in that session; only its own master knew what it still owed")
  return { kind: "delta" }
}
