/**
 * What the cluster API says about a volume, from its record alone (any node or client can
 * answer): health counted against the requested replicas; and which replicas a lowered replica
 * count keeps, and who drops them (copies not in sync: the update itself; in-sync ones: the
 * serving master, so no copy holding acknowledged writes goes while the master may be dead).
 */
import { assessVolume } from "../volume/health.ts"
import { inSyncAway, type MasterLease, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import type { VolumeInfo } from "./types.ts"

/** In-sync copies on lost nodes a waiting master may be waiting for, and how to stop waiting for them. */
const awayHint = (record: VolumeRecord, alive: ReadonlySet<string>): string => {
  const away = inSyncAway(record, (n) => alive.has(n))
  if (away.length === 0 || away.every((n) => record.acceptLoss?.epoch === record.epoch && record.acceptLoss.nodes.includes(n))) return ""
  return `; in sync but away: ${away.join(", ")} (if ${away.length === 1 ? "it does" : "they do"} not return: replivol volume accept-loss ${record.volume} --yes, losing what only ${away.length === 1 ? "it holds" : "they hold"})`
}

/**
 * Health of a volume as its record says (usable by every node, not only the master's). With
 * `masterLease` (the volume's master lease as read, undefined when there is none), the master
 * counts as available only while it holds the lease for the record's epoch and has marked it
 * serving: a master that is up but opening, or waiting for a copy that can prove it holds every
 * acknowledged write, serves nothing.
 */
export const volumeInfo = (record: VolumeRecord, alive: ReadonlySet<string>, masterLease?: { readonly lease: MasterLease | undefined }): VolumeInfo => {
  // Counted against the requested replicas: copies on lost nodes and slots not placed yet are failed.
  const requested = record.spec.replicas
  const countOf = (states: ReadonlyArray<ReplicaRecord["state"]>) => record.replicas.filter((r) => states.includes(r.state) && alive.has(r.node)).length
  const inSync = Math.min(countOf(["in-sync"]), requested)
  const syncing = Math.min(countOf(["syncing", "provisioned"]), requested - inSync)
  const masterUp = record.master !== undefined && alive.has(record.master) && record.unavailableReason === undefined
  const leaseOfThisEpoch = masterLease?.lease?.node === record.master && masterLease?.lease?.epoch === record.epoch
  const leased = masterLease === undefined || (leaseOfThisEpoch && masterLease.lease?.serving === true)
  const masterAvailable = masterUp && leased
  const assessment = assessVolume(record.spec, { inSync, syncing, failed: requested - inSync - syncing }, masterAvailable)
  const notAvailable = masterUp
    ? leaseOfThisEpoch
      ? `master ${record.master} is not serving yet (it holds the master lease for epoch ${record.epoch} and is still opening its session: its replicas are being reached; its events say why)`
      : `master ${record.master} is not serving yet (it holds no master lease for epoch ${record.epoch}: waiting for its node's lease, or for a copy that can prove it holds every acknowledged write; its events say why)${awayHint(record, alive)}`
    : `master ${record.master ?? "(none)"} is not available`
  return {
    volume: record.volume, sizeBytes: record.sizeBytes, labels: record.labels, epoch: record.epoch, master: record.master,
    health: assessment.health, usable: assessment.usable,
    reason: record.unavailableReason ?? (masterAvailable ? assessment.reason : `${notAvailable}; ${assessment.reason}`),
    replicas: record.replicas.map((r) => ({
      node: r.node, state: r.state,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.bytesDone === undefined ? {} : { bytesDone: r.bytesDone, bytesTotal: r.bytesTotal ?? 0 }),
    })),
    rulesApplied: record.rulesApplied,
    ...(record.resizeToBytes === undefined ? {} : { resizingToBytes: record.resizeToBytes }),
  }
}

/** Replicas kept when a volume's count goes down: in-sync ones first, then syncing, then the rest. */
const keepRank: Readonly<Record<ReplicaRecord["state"], number>> = { "in-sync": 0, syncing: 1, provisioned: 2, failed: 3 }
export const replicasKept = (replicas: ReadonlyArray<ReplicaRecord>, count: number): ReadonlyArray<ReplicaRecord> =>
  replicas.length <= count ? replicas : [...replicas].sort((a, b) => keepRank[a.state] - keepRank[b.state]).slice(0, count)

/**
 * The record of a volume update that asks for `record.spec.replicas`: the replicas beyond the
 * count that are not in sync are dropped now; in-sync ones beyond it stay, with `trimReplicas`
 * set, until the serving master drops them (`trimmedRecord`). Dropping them here lost
 * acknowledged writes when the master had just lost power, its lease not yet expired: the
 * dropped replicas were the only copies that held them (cluster simulator: seeds 8 and 67 of the
 * operations mix with a 6 s fault phase; the scenario "replicas lowered while the master had just
 * lost power"). A count raised again clears a pending drop.
 */
export const withReplicaCount = (record: VolumeRecord): VolumeRecord => {
  const { trimReplicas: _pending, ...rest } = record
  const kept = replicasKept(record.replicas, record.spec.replicas)
  const surplusInSync = record.replicas.some((r) => r.state === "in-sync" && !kept.includes(r))
  if (!surplusInSync) return { ...rest, replicas: kept }
  return { ...rest, replicas: record.replicas.filter((r) => r.state === "in-sync"), trimReplicas: true }
}

/** The serving master's drop of a lowered count's surplus: in-sync replicas kept first, the mark cleared. */
export const trimmedRecord = (record: VolumeRecord): VolumeRecord => {
  const { trimReplicas: _pending, ...rest } = record
  return { ...rest, replicas: replicasKept(record.replicas, record.spec.replicas) }
}
