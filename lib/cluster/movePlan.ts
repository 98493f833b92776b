/**
 * Planned master changes and copy relocations (`volume move`, `node drain`), as pure functions of
 * the records: which requests are refused and why (nothing changes then), the record a hand-over
 * writes, and what draining a node asks of each volume on it. Executed by moves.ts (the API side)
 * and handover.ts (the old master's side).
 */
import { vouches } from "./placement.ts"
import { ClusterError, promotedFromOf, type ReplicaRecord, type VolumeRecord } from "./records.ts"

export interface MoveView {
  /** Nodes whose lease is alive. */
  readonly alive: ReadonlySet<string>
  /** Nodes that ever registered (a node record or a node config). */
  readonly known: ReadonlySet<string>
  readonly cordoned: ReadonlySet<string>
  /** Volumes whose master lease exists (a master serves only under it). */
  readonly masterLeased: ReadonlySet<string>
}

/** The volume's master serves: recorded, alive, under its lease, not marked unavailable. */
export const masterServes = (record: VolumeRecord, view: MoveView): boolean =>
  record.master !== undefined && view.alive.has(record.master) && view.masterLeased.has(record.volume) && record.unavailableReason === undefined

const refuse = (reason: ClusterError["reason"], message: string) => new ClusterError({ reason, message: `${message}; nothing was changed` })

/** Why moving `record`'s master to `to` is refused (undefined: it may go ahead). */
export const moveRefusal = (record: VolumeRecord, to: string, view: MoveView): ClusterError | undefined => {
  const v = record.volume
  if (!view.known.has(to)) return refuse("not-found", `cannot move ${v} to ${to}: node ${to} is not known to this cluster (see replivol node ls)`)
  if (record.master === to) return refuse("bad-request", `cannot move ${v} to ${to}: ${to} is already its master`)
  if (!view.alive.has(to)) return refuse("bad-request", `cannot move ${v} to ${to}: node ${to} is not up (its lease expired)`)
  if (view.cordoned.has(to)) return refuse("bad-request", `cannot move ${v} to ${to}: node ${to} is cordoned (no copy is placed on it and no replica on it is promoted; replivol node uncordon ${to})`)
  if (record.move !== undefined && record.move.abandoned === undefined) return refuse("conflict", `cannot move ${v} to ${to}: a move to ${record.move.to} is in progress`)
  if (!masterServes(record, view)) {
    return refuse("no-master", `cannot move ${v}: it has no serving master (${record.master === undefined ? "none recorded" : `${record.master} at epoch ${record.epoch}`}${record.unavailableReason ? `: ${record.unavailableReason}` : ""}), so no copy can be proven in sync to hand over to; try again once it serves (replivol volume inspect ${v})`)
  }
  return undefined
}

/** `to` holds an in-sync copy that vouches (it may become master now). */
export const isInSyncReplica = (record: VolumeRecord, to: string, incarnations: ReadonlyMap<string, number | undefined>): boolean =>
  record.replicas.some((r) => r.node === to && r.state === "in-sync" && vouches(r, incarnations))

/** The record with a new (extra) replica on `node`, to be synced before a hand-over or a drop. */
export const withExtraReplica = (record: VolumeRecord, node: string): VolumeRecord =>
  record.replicas.some((r) => r.node === node) ? record : { ...record, replicas: [...record.replicas, { node, state: "provisioned" }] }

/**
 * The record of a hand-over by master `me` (of incarnation `incarnation`) to `record.move.to`: the
 * target is master at the next epoch; the old master's copy — which after the fence and the drain
 * holds exactly what the target holds — stays as an in-sync replica, unless the move dropped it.
 */
export const handoverRecord = (record: VolumeRecord, me: string, incarnation: number): VolumeRecord => {
  const { move, unavailableReason: _u, handover: _h, promotedFrom: _p, acceptLoss: _a, ...rest } = record
  if (move === undefined || record.master !== me) throw new Error(`handoverRecord: ${record.volume} has no move by ${me}`)
  const target = record.replicas.find((r) => r.node === move.to)
  const replicas: ReplicaRecord[] = record.replicas.filter((r) => r.node !== move.to)
  // In sync at the new epoch already (the new master's "in sync" mark then finds nothing to change).
  if (move.dropOld !== true) replicas.push({ node: me, state: "in-sync", syncedEpoch: record.epoch + 1, syncedIncarnation: incarnation })
  // As a promotion does: a later process of the target continuing this one proves its copy (records.ts `promotedFrom`).
  const promotedFrom = promotedFromOf(target, record.epoch + 1)
  return { ...rest, epoch: record.epoch + 1, master: move.to, replicas, handover: { from: me, epoch: record.epoch + 1 }, ...promotedFrom }
}

/** What draining a node asks of one volume: move its master away, or replace its replica there. */
export type DrainStep =
  | { readonly _tag: "move-master"; readonly volume: string }
  | { readonly _tag: "replace-replica"; readonly volume: string }

export const drainSteps = (volumes: ReadonlyArray<VolumeRecord>, node: string): ReadonlyArray<DrainStep> => {
  const steps: DrainStep[] = []
  for (const v of volumes) {
    if (v.master === node) steps.push({ _tag: "move-master", volume: v.volume })
    else if (v.replicas.some((r) => r.node === node)) steps.push({ _tag: "replace-replica", volume: v.volume })
  }
  return steps
}

/** The volumes that still hold a copy on `node`. */
export const holdsCopies = (volumes: ReadonlyArray<VolumeRecord>, node: string): ReadonlyArray<string> =>
  volumes.filter((v) => v.master === node || v.replicas.some((r) => r.node === node)).map((v) => v.volume)
