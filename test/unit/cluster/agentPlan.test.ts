/** The node agent's pure decisions (agentPlan.ts): which copy roles, master claims, step-downs and link actions a node's view leads to. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { noteSession, overruled, planCopy, planLinks, planPresence, type LinkFacts, provenByPromotion, stepDownDecision, type CopyFacts, type LeaseFacts, type StepDownFacts } from "../../../lib/cluster/agentPlan.ts"
import type { ReplicaRecord, VolumeRecord } from "../../../lib/cluster/records.ts"

const test = suite("agent plan")
const record = (master: string | undefined, replicas: ReadonlyArray<ReplicaRecord>, epoch = 5): VolumeRecord => ({
  volume: "ns/v", uid: "u1", sizeBytes: 1 << 20, labels: {}, createdAtMs: 0, epoch, master, replicas, rulesApplied: [],
  spec: { replicas: replicas.length, failureMode: "soft", failureTolerance: 1, hintMaster: undefined, nocompress: false },
})
const noRole: CopyFacts = { masterEpoch: undefined, masterState: undefined, fencedReason: undefined, specDiffers: false, resizePending: false, hostsReplica: false, replicaDamaged: false }
const leased: LeaseFacts = { lease: "L1", leaseValid: true, held: undefined, incarnations: new Map([["me", 1], ["a", 2]]) }
const tags = (actions: ReadonlyArray<{ readonly _tag: string }>) => actions.map((a) => a._tag)

test("a node no record places a copy on closes its copy; a stale master lease it holds is released", () => {
  const held = { value: { node: "me", epoch: 4 }, revision: 9, lease: "L1" }
  assert.equal(planPresence(record("a", [{ node: "b", state: "in-sync" }]), "me", held, "L1", true), { releaseLease: true, copy: { _tag: "close", remove: true } })
  assert.equal(planPresence(record("a", [{ node: "me", state: "in-sync" }]), "me", undefined, "L1", false), { releaseLease: false, copy: { _tag: "ensure" } })
})

test("a replica whose own write or fdatasync failed does not count itself in sync and records itself failed while the record says in sync", () => {
  const r = record("m", [{ node: "me", state: "in-sync", syncedIncarnation: 1 }])
  const damaged = { ...noRole, hostsReplica: true, replicaDamaged: true }
  assert.equal(planCopy(r, "me", damaged, leased), [{ _tag: "set-recorded-in-sync", value: false }, { _tag: "record-own-failure" }])
  assert.equal(planCopy(r, "me", { ...damaged, replicaDamaged: false }, leased), [{ _tag: "set-recorded-in-sync", value: true }])
  const failed = record("m", [{ node: "me", state: "failed" }])
  assert.equal(planCopy(failed, "me", damaged, leased), [{ _tag: "set-recorded-in-sync", value: false }], "already failed: nothing to record")
})

test("a replica closes a master role it still has and hosts the copy; it notes whether it is recorded in sync", () => {
  const actions = planCopy(record("a", [{ node: "me", state: "in-sync" }]), "me", { ...noRole, masterEpoch: 4, masterState: "serving" }, leased)
  assert.equal(tags(actions), ["set-recorded-in-sync", "close-master", "host-replica"])
  assert.equal(actions[0], { _tag: "set-recorded-in-sync", value: true })
})

test("a master claims only with a valid lease and no other holder's master lease; a moved epoch closes the old session first", () => {
  const r = record("me", [{ node: "a", state: "in-sync" }])
  assert.equal(planCopy(r, "me", noRole, leased), [{ _tag: "claim", takeLease: true }])
  assert.equal(planCopy(r, "me", noRole, { ...leased, leaseValid: false }), [])
  assert.equal(planCopy(r, "me", noRole, { ...leased, held: { value: { node: "x", epoch: 5 }, revision: 3, lease: "L0" } }), [])
  assert.equal(planCopy(r, "me", noRole, { ...leased, held: { value: { node: "me", epoch: 5 }, revision: 3, lease: "L1" } }), [{ _tag: "claim", takeLease: false }])
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 4, masterState: "serving" }, leased)), ["close-master", "claim"])
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "serving", specDiffers: true }, leased)), ["update-spec", "reconcile-links"])
  // A resize asked for (or committed by an earlier session): grown after the links are reconciled.
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "serving", resizePending: true }, leased)), ["reconcile-links", "resize"])
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "opening", resizePending: true }, leased)), [], "not while it opens")
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "fenced", fencedReason: "store-failed" }, leased)), ["mark-suspect", "close-master"])
  // A serving master whose lease is not marked serving yet marks it (volume health counts it only then).
  const serving = { ...noRole, masterEpoch: 5, masterState: "serving" as const }
  assert.equal(tags(planCopy(r, "me", serving, { ...leased, held: { value: { node: "me", epoch: 5 }, revision: 3, lease: "L1" } })), ["reconcile-links", "note-serving"])
  assert.equal(tags(planCopy(r, "me", serving, { ...leased, held: { value: { node: "me", epoch: 5, serving: true }, revision: 4, lease: "L1" } })), ["reconcile-links"])
  assert.equal(tags(planCopy(r, "me", serving, { ...leased, held: { value: { node: "me", epoch: 5 }, revision: 3, lease: "L0" } })), ["reconcile-links"], "not a lease of an older incarnation")
})

test("a lowered replica count's surplus in-sync replicas are dropped by the serving master only (not while it opens or is fenced, never by a replica)", () => {
  const r: VolumeRecord = { ...record("me", [{ node: "a", state: "in-sync" }, { node: "b", state: "in-sync" }]), spec: { ...record("me", []).spec, replicas: 1 }, trimReplicas: true }
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "serving" }, leased)), ["trim-replicas", "reconcile-links"])
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "opening" }, leased)), [])
  assert.equal(tags(planCopy(r, "me", { ...noRole, masterEpoch: 5, masterState: "fenced", fencedReason: "closed" }, leased)), ["close-master"])
  assert.not.ok(tags(planCopy({ ...r, master: "a", replicas: [{ node: "me", state: "in-sync" }] }, "me", noRole, leased)).includes("trim-replicas"))
})

const stepFacts: StepDownFacts = {
  me: "me", own: { volume: "ns/v", sizeBytes: 1 << 20, epoch: 5, role: "master", state: "complete", updatedAtMs: 0, uid: "u1" },
  suspect: false, createdEmpty: false, recordedInSync: false, recentKnown: true,
  incarnations: new Map([["me", 20], ["a", 10]]), incarnation: 20, sinceStartMs: 5000, leaseTtlMs: 1000, graceMs: 30_000,
}

test("a copy that cannot prove it holds every acknowledged write steps down for an in-sync replica, or waits without one", () => {
  const r = record("me", [{ node: "a", state: "in-sync" }])
  assert.equal(stepDownDecision(r, stepFacts), { _tag: "serve" })
  assert.equal(stepDownDecision(r, { ...stepFacts, suspect: true }), { _tag: "step-down" })
  assert.equal(stepDownDecision(r, { ...stepFacts, recentKnown: false }), { _tag: "step-down" }, "restarted: an older replica that vouches takes over")
  assert.equal(stepDownDecision(r, { ...stepFacts, recentKnown: false, sinceStartMs: 500 }), { _tag: "wait" }, "not in the first lease TTL")
  const alone = stepDownDecision(record("me", [{ node: "a", state: "failed" }]), { ...stepFacts, suspect: true })
  assert.is(alone._tag, "wait")
  assert.match(alone._tag === "wait" ? alone.refusal ?? "" : "", "waits for a copy that can prove")
})

test("an empty copy serves a volume never served, and waits once the volume's epoch moved past its creation", () => {
  const wiped = { ...stepFacts, own: undefined, createdEmpty: true, recentKnown: true }
  const fresh = { ...record("me", [{ node: "a", state: "provisioned" }], 7), createdEpoch: 7 }
  assert.equal(stepDownDecision(fresh, wiped), { _tag: "serve" }, "created, never served: its copy is the volume")
  const promoted = { ...fresh, epoch: 8 }
  const decision = stepDownDecision(promoted, wiped)
  assert.is(decision._tag, "wait", "promoted since creation: the volume held data, an empty copy is not it")
  assert.match(decision._tag === "wait" ? decision.refusal ?? "" : "", "waits for a copy that can prove")
  const { createdEpoch: _absent, ...older } = promoted
  assert.equal(stepDownDecision(older, wiped), { _tag: "serve" }, "a record made before createdEpoch existed keeps the old rule")
})

test("a copy that cannot prove its recent writes steps down for a replica recorded in sync under its current process, even one started after it", () => {
  const later = { ...stepFacts, recentKnown: false, incarnations: new Map([["me", 20], ["a", 30]]) }
  const continued = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 30 }])
  assert.equal(stepDownDecision(continued, later), { _tag: "step-down" }, "re-stamped by its agent after a crash (continuity), it holds every acknowledged write")
  const restarted = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 10 }])
  assert.is(stepDownDecision(restarted, later)._tag, "wait", "restarted since it was recorded: it may re-stamp its entry within a tick")
  assert.equal(stepDownDecision(restarted, { ...later, sinceStartMs: 30_000 }), { _tag: "serve" }, "past the grace period: it may have lost power too")
  const unknown = record("me", [{ node: "a", state: "in-sync" }])
  assert.equal(stepDownDecision(unknown, later), { _tag: "serve" }, "of no recorded process, only one running since before this copy's process counts")
})

test("a master fenced by its own failed fdatasync serves again after the grace period when no copy is recorded in sync; never while one is", () => {
  const failed = { ...stepFacts, suspect: true, own: { ...stepFacts.own!, state: "incomplete" as const }, incarnations: new Map([["me", 20], ["a", 10]]) }
  const noneInSync = record("me", [{ node: "a", state: "syncing" }, { node: "b", state: "failed" }])
  assert.is(stepDownDecision(noneInSync, { ...failed, sinceStartMs: 1000 })._tag, "wait", "within the grace period")
  assert.equal(stepDownDecision(noneInSync, { ...failed, sinceStartMs: 30_000 }), { _tag: "serve" }, "the best copy left: it holds every write up to its last good flush")
  const awayInSync = record("me", [{ node: "c", state: "in-sync" }, { node: "b", state: "failed" }])
  assert.is(stepDownDecision(awayInSync, { ...failed, sinceStartMs: 30_000 })._tag, "wait", "an in-sync replica listed (away) may hold more: wait for it")
  const otherVolume = { ...failed, own: { ...failed.own, uid: "another" } }
  assert.is(stepDownDecision(noneInSync, { ...otherVolume, sinceStartMs: 30_000 })._tag, "wait", "a copy of another volume id never serves")
})

test("a copy promoted from an in-sync replica that vouched does not step down for a replica that restarted since it was recorded (seed 3271)", () => {
  const r = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 10 }])
  const promoted = { ...stepFacts, own: { ...stepFacts.own!, role: "replica" as const, state: "incomplete" as const }, recordedInSync: true, recentKnown: false, incarnations: new Map([["me", 20], ["a", 31]]) }
  assert.equal(stepDownDecision(r, promoted), { _tag: "serve" }, "a lost power since: it may hold less")
  assert.equal(stepDownDecision(r, { ...promoted, recordedInSync: false }), { _tag: "step-down" }, "an incomplete copy with no proof steps down as before")
  assert.equal(stepDownDecision(r, { ...promoted, suspect: true }), { _tag: "step-down" }, "a suspect copy steps down")
})

test("a copy that cannot prove its recent writes waits for an in-sync replica that is away until it is back, or until an operator accepts the loss", () => {
  // Sweep seed 8470: serving after the grace period lost the writes only the away copy held.
  const r = record("me", [{ node: "a", state: "in-sync" }])
  const away = { ...stepFacts, incarnations: new Map([["me", 20]]) }
  const waiting = stepDownDecision(r, { ...away, recentKnown: false })
  assert.is(waiting._tag, "wait")
  assert.match(waiting._tag === "wait" ? waiting.refusal ?? "" : "", "the in-sync replica on a is away")
  assert.match(waiting._tag === "wait" ? waiting.refusal ?? "" : "", "replivol volume accept-loss ns/v")
  assert.is(stepDownDecision(r, { ...away, recentKnown: false, sinceStartMs: 3_600_000 })._tag, "wait", "however long it is away")
  const accepted = { ...r, acceptLoss: { epoch: 5, requestedAtMs: 1, nodes: ["a"], incarnation: 20 } }
  assert.equal(stepDownDecision(accepted, { ...away, recentKnown: false }), { _tag: "serve" }, "the operator gave up on a for this process and epoch")
  assert.is(stepDownDecision({ ...r, acceptLoss: { epoch: 4, requestedAtMs: 1, nodes: ["a"], incarnation: 20 } }, { ...away, recentKnown: false })._tag, "wait", "an acceptance of an earlier epoch")
  assert.is(stepDownDecision(accepted, { ...away, recentKnown: false, incarnation: 21 })._tag, "wait", "a later process of the master (it served, then lost power again) waits again")
  const awayLater = record("me", [{ node: "a", state: "in-sync" }, { node: "b", state: "in-sync", syncedIncarnation: 3 }])
  const lateAccepted = { ...awayLater, acceptLoss: { epoch: 5, requestedAtMs: 1, nodes: ["a"], incarnation: 20 } }
  assert.is(stepDownDecision(lateAccepted, { ...away, recentKnown: false })._tag, "wait", "a copy that went away after the acceptance was not given up on")
  assert.is(stepDownDecision(accepted, { ...away, recentKnown: false, own: { ...stepFacts.own!, uid: "another" } })._tag, "wait", "never a copy of another volume id")
  const alsoRestarted = record("me", [{ node: "a", state: "in-sync" }, { node: "b", state: "in-sync", syncedIncarnation: 3 }])
  assert.is(stepDownDecision(alsoRestarted, { ...away, recentKnown: false, sinceStartMs: 3_600_000, incarnations: new Map([["me", 20], ["b", 30]]) })._tag, "wait",
    "a replica back but unproven does not end the wait for the one away")
  const promoted = { ...away, recentKnown: false, recordedInSync: true, own: { ...stepFacts.own!, state: "incomplete" as const } }
  assert.equal(stepDownDecision(r, promoted), { _tag: "serve" }, "a copy promoted from a replica that vouched holds every acknowledged write: it does not wait")
  assert.equal(stepDownDecision(r, away), { _tag: "serve" }, "a copy whose recent writes are known (it served before its crash) does not wait")
  assert.equal(stepDownDecision(record("me", [{ node: "a", state: "failed" }]), { ...away, recentKnown: false }), { _tag: "serve" }, "a failed replica is not waited for")
})

test("a copy that cannot prove its recent writes waits for a former master that is back but not proven yet", () => {
  const r = record("me", [{ node: "a", state: "in-sync", syncedEpoch: 4, syncedIncarnation: 0, formerMaster: true }])
  const waiting = stepDownDecision(r, { ...stepFacts, recentKnown: false })
  assert.is(waiting._tag, "wait")
  assert.match(waiting._tag === "wait" ? waiting.refusal ?? "" : "", "the former master a is back")
  assert.equal(stepDownDecision(r, stepFacts), { _tag: "serve" }, "a copy whose recent writes are known serves")
  const proven = record("me", [{ node: "a", state: "in-sync", syncedEpoch: 4, syncedIncarnation: 10, formerMaster: true }])
  assert.equal(stepDownDecision(proven, { ...stepFacts, recentKnown: false }), { _tag: "step-down" }, "proven (re-stamped), it takes over")
})

test("a copy that lost power waits for an in-sync replica that restarted and has not re-stamped its entry yet, then steps down for it", () => {
  // Sweep seed 2578: the master's node lost power, the replica's process crashed (its machine
  // stayed up); the master read the record before the replica's re-stamp committed and served.
  const restarted = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 3 }])
  const waiting = stepDownDecision(restarted, { ...stepFacts, recentKnown: false })
  assert.is(waiting._tag, "wait")
  assert.match(waiting._tag === "wait" ? waiting.refusal ?? "" : "", "the in-sync replica on a restarted and has not proven its copy yet")
  assert.equal(stepDownDecision(restarted, { ...stepFacts, recentKnown: false, sinceStartMs: 30_000 }), { _tag: "serve" }, "after the grace period the best copy left serves")
  const restamped = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 10 }])
  assert.equal(stepDownDecision(restamped, { ...stepFacts, recentKnown: false }), { _tag: "step-down" })
})

test("a promoted copy whose process crashed before it served is proven by a process continuing the one it was promoted under (seed 9346)", () => {
  // Sweep seed 9346: the promoted replica's process had crashed (its lease not expired yet), its
  // machine stayed up. Back as the recorded master it could not prove its copy, stepped down for
  // the former master (which had lost power), and the controller promoted that one.
  const promoted = { ...record("me", [{ node: "a", state: "in-sync" as const, syncedEpoch: 5, syncedIncarnation: 0, formerMaster: true as const }], 6), promotedFrom: { node: "me", incarnation: 17, epoch: 6 } }
  const own = { ...stepFacts.own!, role: "replica" as const, state: "incomplete" as const }
  const copy = { own, suspect: false, continuedFrom: [17] }
  assert.ok(provenByPromotion(promoted, "me", copy))
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, continuedFrom: [] }), "a process that lost power continues nothing")
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, continuedFrom: undefined }), "no continuity marker")
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, continuedFrom: [16] }), "it continues another process")
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, suspect: true }), "a suspect copy")
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, own: { ...own, uid: "another" } }), "a copy of another volume id")
  assert.not.ok(provenByPromotion(promoted, "me", { ...copy, own: undefined }), "a copy without its record")
  assert.not.ok(provenByPromotion({ ...promoted, epoch: 7 }, "me", copy), "a promotion of an earlier epoch")
  assert.not.ok(provenByPromotion(promoted, "b", copy), "another node's promotion")
  const facts = { ...stepFacts, own, recentKnown: false, incarnations: new Map([["me", 18], ["a", 40]]), incarnation: 18 }
  assert.equal(stepDownDecision(promoted, { ...facts, recordedInSync: true, recentKnown: true }), { _tag: "serve" }, "proven: it serves, the former master that lost power is synced from it")
  assert.is(stepDownDecision(promoted, { ...facts, sinceStartMs: 30_000 })._tag, "step-down", "unproven and incomplete, it gives the volume up (the bug)")
})

test("the wait for a copy back but unproven is timed from its return, not from the waiting copy's start", () => {
  // Review of the seed-8470 fix: a copy that had waited an hour for an away replica served in the
  // moment between that replica's return and its re-stamp.
  const back = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 3 }])
  const longWaiting = { ...stepFacts, recentKnown: false, sinceStartMs: 3_600_000 }
  assert.is(stepDownDecision(back, { ...longWaiting, seenForMs: new Map([["a", 200]]) })._tag, "wait", "just back: it may re-stamp within a tick")
  assert.equal(stepDownDecision(back, { ...longWaiting, seenForMs: new Map([["a", 30_000]]) }), { _tag: "serve" }, "back a grace period without proving anything: it lost power too")
})

test("an accepted loss ends only the waits for copies that are away", () => {
  const accepted = (r: VolumeRecord) => ({ ...r, acceptLoss: { epoch: r.epoch, requestedAtMs: 1, nodes: ["a", "b"], incarnation: 20 } })
  const unproven = { ...stepFacts, recentKnown: false }
  const backUnproven = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 3 }])
  assert.is(stepDownDecision(accepted(backUnproven), unproven)._tag, "wait", "a copy back but unproven is still waited for (it proves itself within a tick)")
  const vouching = record("me", [{ node: "a", state: "in-sync", syncedIncarnation: 10 }])
  assert.equal(stepDownDecision(accepted(vouching), { ...unproven, sinceStartMs: 500 }), { _tag: "wait" }, "the first lease TTL rule stays")
  assert.equal(stepDownDecision(accepted(vouching), unproven), { _tag: "step-down" }, "a replica that vouches is still preferred")
  const away = record("me", [{ node: "b", state: "in-sync" }])
  const wiped = { ...unproven, own: undefined, createdEmpty: true }
  const withHistory = { ...accepted(away), createdEpoch: 2 }
  assert.is(stepDownDecision(withHistory, wiped)._tag, "wait", "a wiped copy never serves a volume with history, accepted or not")
  const damaged = { ...unproven, suspect: true, own: { ...stepFacts.own!, state: "incomplete" as const } }
  const refused = stepDownDecision(away, damaged)
  assert.is(refused._tag, "wait")
  assert.match(refused._tag === "wait" ? refused.refusal ?? "" : "", "replivol volume accept-loss ns/v", "the damaged copy's refusal says how to end the wait")
  assert.equal(stepDownDecision(accepted(away), damaged), { _tag: "serve" }, "accepted: the damaged copy of this volume serves what it holds")
  const noneAway = accepted(record("me", [{ node: "a", state: "failed" }]))
  assert.is(stepDownDecision(noneAway, { ...damaged, sinceStartMs: 1000 })._tag, "wait", "no copy away any more: the acceptance ends nothing (the seed-1295 rule decides)")
})

test("links: missing ones added, failed ones revived at most once a second, moved ones dropped, unlisted ones removed", () => {
  const r = record("me", [{ node: "a", state: "provisioned" }, { node: "b", state: "failed" }, { node: "c", state: "syncing" }, { node: "d", state: "syncing" }])
  const at = (port: number) => ({ host: "127.0.0.1", port })
  const targetOf = (n: string) => ({ node: n, address: at(n === "b" ? 2 : 1) })
  const links = [
    { node: "b", address: at(2), state: "failed", completed: false },
    { node: "c", address: at(1), state: "syncing", completed: false },
    { node: "d", address: at(1), state: "syncing", completed: true },
    { node: "x", address: at(1), state: "in-sync", completed: true },
  ]
  const actions = planLinks(r, links, targetOf, { nowMs: 5000, reviveAtMs: new Map(), progressAtMs: 0 })
  assert.equal(actions.map((a) => `${a._tag}:${"node" in a ? a.node : a.target.node}`), ["add:a", "revive:b", "record-progress:c", "mark-in-sync:d", "remove:x"])
  const soon = planLinks(r, links, targetOf, { nowMs: 5000, reviveAtMs: new Map([["b", 4500]]), progressAtMs: 4500 })
  assert.equal(soon.map((a) => a._tag), ["add", "mark-in-sync", "remove"])
  const moved = planLinks(r, [{ ...links[0]!, address: at(9) }], targetOf, { nowMs: 5000, reviveAtMs: new Map(), progressAtMs: 0 })
  assert.ok(moved.some((a) => a._tag === "drop-moved" && a.node === "b"))
})

test("links: a failure someone else recorded during the link's session is never replaced by this master", () => {
  const at = { host: "127.0.0.1", port: 5703 }
  const targetOf = (n: string) => ({ node: n, address: at })
  const times = { nowMs: 5000, reviveAtMs: new Map<string, number>(), progressAtMs: 5000 }
  const tags = (r: ReturnType<typeof record>, links: ReadonlyArray<LinkFacts>) => planLinks(r, links, targetOf, times).map((a) => a._tag)
  const syncing = [{ node: "b", address: at, state: "syncing", completed: false }]
  const complete = [{ node: "b", address: at, state: "in-sync", completed: true }]
  const seen = new Map<string, number>()
  // The master's own failure record came before this session: a fast resync completes and marks it in sync over it.
  const failedBefore = record("me", [{ node: "b", state: "failed", reason: "ack timeout" }])
  noteSession(failedBefore, 10, complete, seen)
  assert.equal(tags(failedBefore, complete), ["mark-in-sync"])
  assert.not.ok(overruled(failedBefore.replicas[0]!, 10, seen))
  // Seen syncing, then in sync, during the session (record revisions 11 and 12).
  noteSession(record("me", [{ node: "b", state: "syncing" }]), 11, syncing, seen)
  assert.is(seen.get("b"), 11)
  noteSession(record("me", [{ node: "b", state: "in-sync" }]), 12, complete, seen)
  // A stale read (an older revision) that still shows the failure from before the session is not overruled.
  assert.not.ok(overruled(failedBefore.replicas[0]!, 10, seen), "a record older than the one seen not failed")
  noteSession(failedBefore, 10, complete, seen)
  assert.is(seen.get("b"), 12, "a stale record does not move the revision back")
  // Then its own agent records its store failure (its error still on the wire): the link fails, never marked in sync over it.
  const failedSince = record("me", [{ node: "b", state: "failed", reason: "its own write or fdatasync failed" }])
  noteSession(failedSince, 13, complete, seen)
  assert.equal(tags(failedSince, complete), ["mark-in-sync"], "planned, and then refused by its compare-and-swap, which fails the link")
  assert.ok(overruled(failedSince.replicas[0]!, 13, seen), "the mark-in-sync compare-and-swap refuses it")
  // The controller failing it mid-sync is not recorded syncing over either: the progress mark is refused the same way.
  assert.equal(tags(failedSince, syncing), ["record-progress"])
  assert.equal(tags(failedSince, [{ ...syncing[0]!, state: "connecting" }]), [], "a link still connecting is left to attach first")
  // A failed link ends the session: its revive starts afresh, and its completed resync replaces the failure.
  const failedLink = [{ ...complete[0]!, state: "failed", completed: false }]
  noteSession(failedSince, 14, failedLink, seen)
  assert.not.ok(seen.has("b"))
  noteSession(failedSince, 14, complete, seen)
  assert.equal(tags(failedSince, complete), ["mark-in-sync"])
  assert.not.ok(overruled(failedSince.replicas[0]!, 14, seen), "and its compare-and-swap replaces the failure")
  noteSession(failedSince, 15, [], seen)
  assert.not.ok(seen.has("b"), "a link that is gone forgets it")
})

test.run()
