/**
 * Failure-mode arithmetic: is a volume usable, and how healthy is it, given its replicas' states?
 *
 * StorageOS v1 (seed/replication.md, "Failover"): while a lost replica is replaced and synced the
 * volume is degraded, and its failure mode decides whether IO goes on:
 *   - hard      below the requested replica count the volume is unavailable;
 *   - soft      usable while the missing replicas are at most the failure tolerance;
 *   - alwayson  usable as long as any copy (the master) is available.
 * A replica that is still syncing does not protect data yet, so it counts as missing. With the
 * master unavailable nothing is usable until an in-sync replica is promoted.
 *
 * Pure: the cluster code counts replica states and asks here; nothing is decided elsewhere.
 */
import { assert } from "../core/assert.ts"
import { replicasMax } from "../core/limits.ts"
import type { VolumeSpec } from "./labels.ts"

export type Health = "healthy" | "degraded" | "unavailable"

/**
 * Replica states of one volume, the master excluded. A `provisioned` replica counts as syncing;
 * a replica not placed yet (no node available) counts as failed. Invariant: the three counts are
 * non-negative integers whose sum is at most `spec.replicas`; any shortfall is counted as failed
 * (replicas requested but not accounted for are not protecting anything).
 */
export interface ReplicaCounts {
  readonly inSync: number
  readonly syncing: number
  readonly failed: number
}

export interface Assessment {
  readonly health: Health
  readonly usable: boolean
  /** A human sentence; never parse it (match on `health` and `usable`). */
  readonly reason: string
}

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0

const checkInvariants = (spec: VolumeSpec, counts: ReplicaCounts): void => {
  assert(isCount(spec.replicas) && spec.replicas <= replicasMax, `replicas is an integer 0..${replicasMax}`)
  assert(isCount(spec.failureTolerance) && spec.failureTolerance <= spec.replicas, "failure tolerance is 0..replicas")
  assert(isCount(counts.inSync), "inSync is a non-negative integer")
  assert(isCount(counts.syncing), "syncing is a non-negative integer")
  assert(isCount(counts.failed), "failed is a non-negative integer")
  assert(counts.inSync + counts.syncing + counts.failed <= spec.replicas, "replica counts add up to at most the replicas requested")
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

/** "1 of 3 replicas in sync, 1 syncing, 1 failed" — unplaced replicas are shown as failed. */
const describeCounts = (spec: VolumeSpec, counts: ReplicaCounts): string => {
  const failed = spec.replicas - counts.inSync - counts.syncing
  const parts = [`${counts.inSync} of ${plural(spec.replicas, "replica")} in sync`]
  if (counts.syncing > 0) parts.push(`${counts.syncing} syncing`)
  if (failed > 0) parts.push(`${failed} failed`)
  return parts.join(", ")
}

/** Usability by failure mode, with the master available. */
const usableByMode = (spec: VolumeSpec, missing: number): boolean => {
  switch (spec.failureMode) {
    case "hard":
      return missing === 0
    case "soft":
      return missing <= spec.failureTolerance
    case "alwayson":
      return true
  }
}

/** Usable with `missing` replicas not in sync: nothing missing is usable whatever the mode says, else the mode decides. */
const usableMissing = (spec: VolumeSpec, missing: number): boolean => missing === 0 || usableByMode(spec, missing)

const modeSentence = (spec: VolumeSpec, counts: ReplicaCounts, usable: boolean): string => {
  const described = describeCounts(spec, counts)
  switch (spec.failureMode) {
    case "hard":
      return `hard mode: ${described}, below the requested ${spec.replicas}`
    case "soft":
      return usable
        ? `${described}; soft mode tolerates ${spec.failureTolerance} failed`
        : `soft mode: ${described}; ${spec.replicas - counts.inSync} missing, more than the tolerated ${spec.failureTolerance}`
    case "alwayson":
      return `${described}; alwayson mode stays usable while the master is available`
  }
}

const masterDownSentence = (spec: VolumeSpec, counts: ReplicaCounts): string =>
  spec.replicas === 0
    ? "master unavailable and no replicas requested: unusable until the master returns"
    : counts.inSync > 0
      ? `master unavailable: unusable until one of ${plural(counts.inSync, "in-sync replica")} is promoted (${describeCounts(spec, counts)})`
      : `master unavailable and no in-sync replica to promote (${describeCounts(spec, counts)})`

/**
 * Health and usability of a volume. `masterAvailable` (default true) is false between the loss
 * of the master's node and the promotion of a replica.
 */
export const assessVolume = (spec: VolumeSpec, counts: ReplicaCounts, masterAvailable = true): Assessment => {
  checkInvariants(spec, counts)
  if (!masterAvailable) {
    return { health: "unavailable", usable: false, reason: masterDownSentence(spec, counts) }
  }
  const missing = spec.replicas - counts.inSync
  const usable = usableMissing(spec, missing)
  if (missing === 0) {
    const reason = spec.replicas === 0 ? "no replicas requested; the master holds the only copy" : `${describeCounts(spec, counts)}`
    return { health: "healthy", usable, reason }
  }
  return { health: usable ? "degraded" : "unavailable", usable, reason: modeSentence(spec, counts, usable) }
}

/** `assessVolume(spec, counts).usable` with a serving master, without its sentence (a master asks this on every IO). */
export const usableVolume = (spec: VolumeSpec, counts: ReplicaCounts): boolean => {
  checkInvariants(spec, counts)
  return usableMissing(spec, spec.replicas - counts.inSync)
}

/**
 * Whether the failure mode refuses IO only because replicas are still syncing: some are, and with
 * all of them in sync the volume would be usable. Such a volume is coming up (a new volume's first
 * sync, a replacement placed after a failover, a returning copy catching up), so IO waits for it;
 * a refusal caused by failed or unplaced replicas is not a wait.
 */
export const waitsForSync = (spec: VolumeSpec, counts: ReplicaCounts): boolean =>
  counts.syncing > 0 && assessVolume(spec, { inSync: counts.inSync + counts.syncing, syncing: 0, failed: counts.failed }).usable
