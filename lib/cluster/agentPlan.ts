/**
 * The node agent's decisions, as pure functions of what it read (the volume record, its master
 * lease, this node's lease, the state of its open copy and links): which actions make this node's
 * copies match the records. `agent.ts` gathers the facts and executes the actions, as the
 * controller does with `planVolume` (placement.ts).
 *
 * Per volume, in order: `planPresence` (release a stale master lease; open or close the copy),
 * `planCopy` (the copy's role: replica, serving master, or a claim of the master role),
 * `stepDownDecision` (a claim: serve, wait, or give the volume up to an in-sync replica), and
 * `planLinks` (a serving master's links against its record's replicas).
 */
import type { StoreMeta } from "../store/BlockStore.ts"
import { vouches } from "./placement.ts"
import { inSyncAway, lossAccepted, uidOf, type MasterLease, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import type { Versioned } from "./store.ts"

/** A failed link is revived at most this often, and a syncing link's progress recorded at most this often. */
export const linkRetryMs = 1000

export interface PresencePlan {
  /** This node holds the volume's master lease but the record names another master: release it. */
  readonly releaseLease: boolean
  /** Close the copy (and remove its file if `remove`) or make sure it is open. */
  readonly copy: { readonly _tag: "close"; readonly remove: boolean } | { readonly _tag: "ensure" }
}

export const planPresence = (record: VolumeRecord, me: string, held: Versioned<MasterLease> | undefined, lease: string | undefined, hasCopy: boolean): PresencePlan => {
  const isMaster = record.master === me
  const isReplica = record.replicas.some((r) => r.node === me)
  // A master lease this node took from a stale view (it re-registered after a pause and read
  // itself master) goes once the record says otherwise: kept alive with the node's lease, it
  // stopped the recorded master from ever serving and the controller from promoting
  // (cluster simulator seed 451: the promoted master never served, a replica provisioned for good).
  const releaseLease = !isMaster && held !== undefined && lease !== undefined && held.lease === lease
  return { releaseLease, copy: !isMaster && !isReplica ? { _tag: "close", remove: hasCopy } : { _tag: "ensure" } }
}

/** The open copy as the agent sees it. */
export interface CopyFacts {
  /** Epoch of its master role, if it has one. */
  readonly masterEpoch: number | undefined
  /** Its master role's volume: still opening, serving, or fenced (absent without a role). */
  readonly masterState: "opening" | "serving" | "fenced" | undefined
  readonly fencedReason: string | undefined
  /** The serving master's spec differs from the record's (a volume update). */
  readonly specDiffers: boolean
  /** The record asks for a size the serving master does not serve yet (a resize, lib/cluster/resize.ts). */
  readonly resizePending: boolean
  readonly hostsReplica: boolean
  /** The hosted replica copy's own write or fdatasync failed since a master's sync last completed it (replicaHost.ts `damaged`). */
  readonly replicaDamaged: boolean
}

export interface LeaseFacts {
  readonly lease: string | undefined
  readonly leaseValid: boolean
  readonly held: Versioned<MasterLease> | undefined
  readonly incarnations: ReadonlyMap<string, number | undefined>
}

export type CopyAction =
  | { readonly _tag: "set-recorded-in-sync"; readonly value: boolean }
  | { readonly _tag: "close-master"; readonly why: string }
  | { readonly _tag: "host-replica" }
  | { readonly _tag: "update-spec" }
  /** Grow every copy to the record's `resizeToBytes` and commit it (resize.ts `resizeStep`), in the background. */
  | { readonly _tag: "resize" }
  | { readonly _tag: "reconcile-links" }
  /** Mark this node's master lease serving (masterRole.ts `noteServing`): its first attempt, right after the open, did not land. */
  | { readonly _tag: "note-serving" }
  /** Drop the in-sync replicas a lowered replica count left over (records.ts `trimReplicas`); only a serving master does. */
  | { readonly _tag: "trim-replicas" }
  | { readonly _tag: "mark-suspect" }
  /**
   * This replica's own write or fdatasync failed and the record still counts it in sync (its
   * master could not record the failure: cut off from the control store, or lost): record it
   * failed by compare-and-swap, so it is neither promoted nor stepped down for.
   */
  | { readonly _tag: "record-own-failure" }
  /** Become master: decide on stepping down first (`stepDownDecision`), then take the master lease if `takeLease`, then open. */
  | { readonly _tag: "claim"; readonly takeLease: boolean }
  /** A move names this replica's node: watch the record and mark the move armed (handover.ts). */
  | { readonly _tag: "arm" }
  /** A move of this serving master: fence, drain and hand over once armed (handover.ts). */
  | { readonly _tag: "hand-over" }

export const planCopy = (record: VolumeRecord, me: string, copy: CopyFacts, facts: LeaseFacts): ReadonlyArray<CopyAction> => {
  const actions: CopyAction[] = []
  if (record.master !== me) {
    const mine = record.replicas.find((r) => r.node === me)
    const listedInSync = mine?.state === "in-sync"
    actions.push({ _tag: "set-recorded-in-sync", value: !copy.replicaDamaged && listedInSync && vouches(mine, facts.incarnations) })
    if (copy.replicaDamaged && listedInSync) actions.push({ _tag: "record-own-failure" })
    if (copy.masterState !== undefined) actions.push({ _tag: "close-master", why: `the record names ${record.master ?? "no node"} as master at epoch ${record.epoch}` })
    if (!copy.hostsReplica) actions.push({ _tag: "host-replica" })
    if (record.move?.to === me && record.move.abandoned === undefined) actions.push({ _tag: "arm" })
    return actions
  }
  let masterState = copy.masterState
  if (masterState !== undefined && copy.masterEpoch !== record.epoch) {
    actions.push({ _tag: "close-master", why: `epoch moved to ${record.epoch}` })
    masterState = undefined
  }
  if (masterState === "serving") {
    // A volume update: the serving master applies the record's spec at once (failure mode, tolerance, compression).
    if (copy.specDiffers) actions.push({ _tag: "update-spec" })
    if (record.trimReplicas === true) actions.push({ _tag: "trim-replicas" })
    actions.push({ _tag: "reconcile-links" })
    const held = facts.held
    if (held && held.lease === facts.lease && held.value.node === me && held.value.epoch === record.epoch && held.value.serving !== true) actions.push({ _tag: "note-serving" })
    // After the links: a replica added or revived this tick is opened at the grown size anyway.
    if (copy.resizePending) actions.push({ _tag: "resize" })
    if (record.move !== undefined && record.move.abandoned === undefined) actions.push({ _tag: "hand-over" })
    return actions
  }
  if (masterState === "fenced") {
    // A copy whose own write or fdatasync failed is suspect even if its record could not say so (a full disk).
    if (copy.fencedReason === "store-failed") actions.push({ _tag: "mark-suspect" })
    actions.push({ _tag: "close-master", why: "it was fenced" })
    return actions
  }
  if (masterState === "opening") return actions
  if (!facts.leaseValid || facts.lease === undefined) return actions
  const held = facts.held
  if (held && held.lease !== facts.lease) return actions // an older incarnation's or another node's lease must expire first
  actions.push({ _tag: "claim", takeLease: !held || held.value.epoch !== record.epoch })
  return actions
}

/**
 * The record's promotion chose this node's copy while an earlier process of the node held it in
 * sync (records.ts `promotedFrom`), and this process continues that one (it crashed, the machine
 * stayed up: lib/store/continuity.ts `continuedFrom`): the copy holds every acknowledged write, as
 * a replica's re-stamp proves (agent.ts `continueInSync`). The claim counts it recorded in sync.
 */
export const provenByPromotion = (record: VolumeRecord, me: string, copy: { readonly own: StoreMeta | undefined; readonly suspect: boolean; readonly continuedFrom: ReadonlyArray<number> | undefined }): boolean => {
  const from = record.promotedFrom
  if (from === undefined || from.node !== me || from.epoch !== record.epoch || copy.suspect || copy.continuedFrom === undefined) return false
  return copy.continuedFrom.includes(from.incarnation) && copy.own !== undefined && copy.own.uid === uidOf(record)
}

/** What a claim of the master role knows about its copy and the cluster. */
export interface StepDownFacts {
  readonly me: string
  /** The copy's own record (undefined: none, or unreadable). */
  readonly own: StoreMeta | undefined
  readonly suspect: boolean
  readonly createdEmpty: boolean
  readonly recordedInSync: boolean
  /** The copy's recent writes are known (a promoted replica's activity log, or this process served it). */
  readonly recentKnown: boolean
  /** Alive nodes' process incarnations. */
  readonly incarnations: ReadonlyMap<string, number | undefined>
  /** This process's incarnation. */
  readonly incarnation: number
  /** From this process's start to when the agent's view of the records began to be read. */
  readonly sinceStartMs: number
  /**
   * For how long this agent has seen each alive node under its current process (monotonic);
   * a node missing counts as seen since this process started (`sinceStartMs`).
   */
  readonly seenForMs?: ReadonlyMap<string, number>
  readonly leaseTtlMs: number
  /** The controller's grace period for a lost node (the longest a claim waits for an in-sync replica that is away). */
  readonly graceMs: number
}

export type StepDownDecision =
  | { readonly _tag: "serve" }
  | { readonly _tag: "step-down" }
  /** Not now; `refusal` is the (throttled) event saying why, when there is one to say. */
  | { readonly _tag: "wait"; readonly refusal?: string }

/**
 * A copy that cannot prove its recent writes waits for `others` (copies back under a new process
 * that may hold writes it lost and have not proven it yet) while any of them has been seen back
 * for less than the grace period (`seenForMs`; a copy re-stamps within a tick or two of its
 * return, agent.ts `continueInSync`); undefined: nothing to wait for. Timed from its own start
 * instead, a copy that had waited long for an away replica served in the moment between that
 * replica's return and its re-stamp (review of the seed-8470 fix).
 */
const waitForCopyThatMayHoldMore = (record: VolumeRecord, facts: StepDownFacts, others: ReadonlyArray<string>, where: string): StepDownDecision | undefined =>
  !facts.recentKnown && others.some((node) => (facts.seenForMs?.get(node) ?? facts.sinceStartMs) < facts.graceMs)
    ? { _tag: "wait", refusal: `${facts.me} waits up to ${Math.round(facts.graceMs / 1000)} s before serving ${record.volume}: its copy cannot prove it holds every acknowledged write (its process restarted without proof it kept them), and ${where} and may hold more` }
    : undefined

/**
 * An in-sync replica a copy that cannot prove its recent writes steps down for: one recorded in
 * sync under its node's current process (synced by a master since that process started, or
 * re-stamped by its agent because the process continued one that crashed while the machine stayed
 * up: agent.ts `continueInSync`), or one of no recorded process whose process has run since before
 * this one started (a re-registration after a lost lease does not count as a start). Not one that
 * restarted since it was recorded: it may have lost power too. A replica that crashed after this
 * copy's process started and proved its continuity counts (cluster simulator seeds 31 and 92 of
 * the crash + power-loss mix: asking every replica to have started first, the master that had
 * lost power served and synced its copy over the one that held every acknowledged write).
 */
const holdsEveryAcknowledgedWrite = (r: ReplicaRecord, facts: StepDownFacts): boolean => {
  const current = facts.incarnations.get(r.node)
  if (r.syncedIncarnation !== undefined) return current === r.syncedIncarnation
  return (current ?? Infinity) < facts.incarnation
}

/**
 * A copy that cannot prove it holds every acknowledged write must not serve while an in-sync
 * replica can: after a restart its unflushed writes may be gone (power loss), after a failed
 * fdatasync or write its record says incomplete. It steps down so an in-sync replica is promoted.
 * It waits while a copy that may hold more is away or unproven (`decideClaim`) — unless an
 * operator accepted the loss for this epoch (records.ts `acceptLoss`, `volume accept-loss`):
 * then a copy of this volume serves what it holds instead of waiting.
 */
export const stepDownDecision = (record: VolumeRecord, facts: StepDownFacts): StepDownDecision => decideClaim(record, facts, lossAccepted(record, facts.incarnation))

/** How to run `volume accept-loss` for `record`, for refusals that wait for a copy that is away. */
const acceptLossHint = (record: VolumeRecord) => `; to serve what this copy holds now (losing what only the copies away hold), run: replivol volume accept-loss ${record.volume}`

/** `accepted`: the away copies an operator gave up on for this process (`lossAccepted`); it ends only waits for those. */
const decideClaim = (record: VolumeRecord, facts: StepDownFacts, accepted: ReadonlySet<string>): StepDownDecision => {
  const inSync = record.replicas.filter((r: ReplicaRecord) => r.state === "in-sync" && facts.incarnations.has(r.node))
  const own = facts.own
  const complete = own?.state === "complete" && (own.uid === undefined || own.uid === uidOf(record)) && !facts.suspect
  const empty = facts.createdEmpty || own?.state === "empty"
  if (inSync.length === 0) {
    // The only candidate. A copy that cannot prove anything must not serve (and then sync
    // its emptiness over every returning copy) once the volume has history: it waits.
    // History is a replica that got past provisioned, or a master change since the creation (records.ts
    // `createdEpoch`): the promotion's in-sync copies may all be gone from the record by now (cluster
    // simulator sweep seed 6415: the former master's copy was dropped while the promoted master, which
    // had crashed while opening, still held its lease; it came back with a wiped disk and served zeros).
    const history = record.replicas.some((r) => r.state !== "provisioned") || (record.createdEpoch !== undefined && record.epoch > record.createdEpoch)
    // A copy promoted from an in-sync replica that vouches holds every acknowledged write
    // whatever its own record says: a new master that crashed while opening it leaves it
    // `incomplete` for a session that never acknowledged anything (found by the cluster
    // simulator, seed 83: the volume then waited for good).
    // Except the recorded master's own copy of this volume, incomplete because its own write or
    // fdatasync failed, when no copy is recorded in sync at all: it holds every write up to its
    // last good flush, which is all a failed flush promised; no other copy can hold more (a
    // failed or syncing replica holds less), so waiting only kept the volume down for good
    // (cluster simulator seed 1295: a master fenced by a failed fdatasync while its replicas
    // were syncing or failed). It serves once it is past the grace period from its start.
    const bestLeft = own?.state === "incomplete" && own.uid === uidOf(record) && !record.replicas.some((r) => r.state === "in-sync")
    if (bestLeft && !facts.recordedInSync && facts.sinceStartMs >= facts.graceMs) return { _tag: "serve" }
    // An accepted loss lets a copy of this volume that holds data serve what it holds (never an empty one: the volume has history).
    // Only when every in-sync copy that is away is one the operator gave up on.
    const awayNow = inSyncAway(record, (n) => facts.incarnations.has(n))
    const acceptedHere = awayNow.length > 0 && awayNow.every((n) => accepted.has(n)) && !empty && own !== undefined && own.uid === uidOf(record)
    if (!complete && !(empty && !history) && !facts.recordedInSync && !acceptedHere) {
      return { _tag: "wait", refusal: `${facts.me} does not serve ${record.volume}: its copy is ${own?.state ?? "without a record"} and no in-sync replica is up; the volume waits for a copy that can prove it holds every acknowledged write${awayNow.length > 0 ? acceptLossHint(record) : ""}` }
    }
    // A copy promoted from a replica that vouched, or an empty one (the checks above), has nothing to wait for.
    return (empty || (facts.recordedInSync && !facts.suspect) ? undefined : waitForAway(record, facts, accepted)) ?? { _tag: "serve" }
  }
  // Step down only for a replica that still vouches (`holdsEveryAcknowledgedWrite`); else this
  // copy, which held every acknowledged write, serves: after a restart of every node, one of
  // them must serve.
  // A former master's copy that is back but has not proven itself yet (records.ts `formerMaster`:
  // its agent re-stamps it within a tick) is waited for, as one that is away is (seed 783).
  const unproven = inSync.filter((r) => r.formerMaster === true && !vouches(r, facts.incarnations)).map((r) => r.node)
  const waitForUnproven = waitForCopyThatMayHoldMore(record, facts, unproven, `the former master ${unproven.join(", ")} is back`)
  if (waitForUnproven) return waitForUnproven
  // A copy promoted from an in-sync replica that vouched holds every acknowledged write whatever
  // its own record says (a replica's says incomplete mid-session), as in the branch above: it
  // stepped down for a replica that had lost power, which was promoted (sweep seed 3271).
  const vouchedFor = facts.recordedInSync && !facts.suspect
  const down = (!complete && !vouchedFor) || (!facts.recentKnown && inSync.some((r) => holdsEveryAcknowledgedWrite(r, facts)))
  // Not yet in the first lease TTL of this process: a node whose process died before this one
  // started still looks alive (and vouching) until its lease expires. Stepping down for it
  // dropped this copy, the only one left with every acknowledged write, and the dead
  // replica's node returned to serve a copy that had lost power (cluster simulator seed 439).
  if (down && facts.sinceStartMs < facts.leaseTtlMs) return { _tag: "wait" }
  if (down) return { _tag: "step-down" }
  // About to serve with no proof of its own: an in-sync replica back under a new process that has
  // not re-stamped its entry yet is waited for too, up to the grace period (its agent re-stamps it
  // within a tick when its machine stayed up: agent.ts `continueInSync`). Serving at once synced
  // this copy, which had lost power, over the one holding every acknowledged write (sweep seed
  // 2578: the view was read just before the replica's re-stamp committed).
  const restarted = vouchedFor ? [] : inSync.filter((r) => !vouches(r, facts.incarnations)).map((r) => r.node)
  return waitForCopyThatMayHoldMore(record, facts, restarted, `the in-sync replica on ${restarted.join(", ")} restarted and has not proven its copy yet`) ??
    (vouchedFor ? undefined : waitForAway(record, facts, accepted)) ?? { _tag: "serve" }
}

/**
 * A copy that cannot prove its recent writes (its machine lost power: no continuity) does not
 * serve while an in-sync replica is listed but away: that replica may hold writes this copy lost,
 * and serving would sync them away when it returns (cluster simulator seed 276). It waits until
 * that copy is back (it then proves itself or not within a tick, `waitForCopyThatMayHoldMore`),
 * however long that is, as DRBD's wait-for-connection does, or until an operator accepts the loss
 * (`lossAccepted`). Serving after a grace period instead lost the writes only the away copy held
 * whenever it stayed away longer (cluster simulator sweep seed 8470, mix seeds 40 and 112).
 */
const waitForAway = (record: VolumeRecord, facts: StepDownFacts, accepted: ReadonlySet<string>): StepDownDecision | undefined => {
  const away = inSyncAway(record, (n) => facts.incarnations.has(n)).filter((n) => !accepted.has(n))
  if (facts.recentKnown || away.length === 0) return undefined
  return { _tag: "wait", refusal: `${facts.me} does not serve ${record.volume} yet: its copy cannot prove it holds every acknowledged write (its process restarted without proof it kept them), and the in-sync replica on ${away.join(", ")} is away and may hold more; it serves once that copy is back${acceptLossHint(record)}` }
}

/** A serving master's link to one replica, as the agent sees it. */
export interface LinkFacts {
  readonly node: string
  readonly address: { readonly host: string; readonly port: number }
  readonly state: "syncing" | "in-sync" | "failed" | string
  readonly completed: boolean
}

export type Target = { readonly node: string; readonly address: { readonly host: string; readonly port: number } }

export type LinkAction =
  | { readonly _tag: "add"; readonly target: Target }
  /** A failed link dialling an address its node no longer has: dropped now, added again next tick. */
  | { readonly _tag: "drop-moved"; readonly node: string }
  | { readonly _tag: "revive"; readonly node: string }
  | { readonly _tag: "mark-in-sync"; readonly node: string }
  | { readonly _tag: "record-progress"; readonly node: string }
  /** A link to a node the record no longer lists. */
  | { readonly _tag: "remove"; readonly node: string }

export interface LinkTimes {
  readonly nowMs: number
  readonly reviveAtMs: ReadonlyMap<string, number>
  readonly progressAtMs: number
}

/**
 * Updates `seen` (MasterRole `seenUnfailed`) from this tick's record (at mod revision
 * `revision`) and links: a replica is in it once its entry was seen not failed while its link's
 * session runs (any state but `failed`), with the newest record revision it was seen so at; a
 * failed or missing link forgets it. So a replica-state change by this master replaces the state it
 * expects: a "failed" entry it replaces (with syncing, in sync) is one from before the session (its
 * own record of the link's failure, or one from before it opened), never one written since.
 */
export const noteSession = (record: VolumeRecord, revision: number, links: ReadonlyArray<LinkFacts>, seen: Map<string, number>): void => {
  for (const node of seen.keys()) {
    if (!links.some((l) => l.node === node && l.state !== "failed")) seen.delete(node)
  }
  for (const link of links) {
    const entry = record.replicas.find((r) => r.node === link.node)
    if (link.state !== "failed" && entry !== undefined && entry.state !== "failed") noteSeen(seen, link.node, revision)
  }
}

/** Notes that `node`'s entry was not failed in the record at mod revision `revision` (the newest such is kept). */
export const noteSeen = (seen: Map<string, number>, node: string, revision: number): void => {
  seen.set(node, Math.max(seen.get(node) ?? 0, revision))
}

/**
 * A "failed" entry, in the record at mod revision `revision`, written during its link's session
 * by someone else (`noteSession`): it recorded its own store failure while its error was still on
 * the wire, or the controller gave up on its node. A record newer than the one the entry was last
 * seen not failed in: a read that left before this master's own in-sync write committed shows the
 * old failure, and is not one (sweep seed 2467). Never replaced by this master: the
 * compare-and-swap of its in-sync and syncing marks refuses it, and the link is failed too
 * (masterRole.ts `markInSession`), so it is revived and the copy's answer decides delta or full sync.
 */
export const overruled = (entry: ReplicaRecord, revision: number, seen: ReadonlyMap<string, number>): boolean => {
  const seenAt = seen.get(entry.node)
  return entry.state === "failed" && seenAt !== undefined && revision > seenAt
}

/** Keeps an open master's links in line with its record, and the record with its links. */
export const planLinks = (record: VolumeRecord, links: ReadonlyArray<LinkFacts>, targetOf: (node: string) => Target | undefined, times: LinkTimes): ReadonlyArray<LinkAction> => {
  const actions: LinkAction[] = []
  let progressAtMs = times.progressAtMs
  for (const r of record.replicas) {
    const link = links.find((l) => l.node === r.node)
    const target = targetOf(r.node)
    if (!link) {
      if (target) actions.push({ _tag: "add", target })
      continue
    }
    // A link made while its node was not registered (placeholder address 0.0.0.0:0, see
    // openMaster) or before the node moved dials the old address forever: a revive would
    // never reach it. Drop it; the next tick adds it at the node's address (a full sync).
    // Found by the cluster simulator (seed 2: a replica wiped and away while its master opened).
    if (link.state === "failed" && target && (link.address.host !== target.address.host || link.address.port !== target.address.port)) {
      actions.push({ _tag: "drop-moved", node: r.node })
      continue
    }
    if (link.state === "failed" && target && times.nowMs - (times.reviveAtMs.get(r.node) ?? -Infinity) >= linkRetryMs) {
      actions.push({ _tag: "revive", node: r.node })
    } else if (link.completed && r.state !== "in-sync") {
      actions.push({ _tag: "mark-in-sync", node: r.node })
    } else if (link.state === "syncing" && (r.state === "provisioned" || r.state === "failed" || times.nowMs - progressAtMs >= linkRetryMs)) {
      progressAtMs = times.nowMs
      actions.push({ _tag: "record-progress", node: r.node })
    }
  }
  for (const link of links) {
    if (!record.replicas.some((r) => r.node === link.node)) actions.push({ _tag: "remove", node: link.node })
  }
  return actions
}
