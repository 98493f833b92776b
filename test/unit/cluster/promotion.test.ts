/** The controller's promotion choice (placement.ts planVolume): only copies that vouch while the lost master may return, the longest-running first. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { planVolume, type ClusterView } from "../../../lib/cluster/placement.ts"
import type { ReplicaRecord, VolumeRecord } from "../../../lib/cluster/records.ts"

const test = suite("placement: promotion")
const record = (master: string | undefined, replicas: ReadonlyArray<ReplicaRecord>): VolumeRecord => ({
  volume: "ns/v", uid: "u1", sizeBytes: 1 << 20, labels: {}, createdAtMs: 0, epoch: 5, master, replicas, rulesApplied: [],
  spec: { replicas: replicas.length, failureMode: "soft", failureTolerance: 1, hintMaster: undefined, nocompress: false },
})
const view = (incarnations: Record<string, number>, random = 0.99): ClusterView => ({
  nowMs: 1000, graceMs: 30_000, aliveNodes: new Set(Object.keys(incarnations)), masterLeased: new Set(), load: new Map(), random: () => random,
  incarnations: new Map(Object.entries(incarnations)),
})
const inSync = (node: string, syncedIncarnation: number): ReplicaRecord => ({ node, state: "in-sync", syncedEpoch: 5, syncedIncarnation })

test("the longest-running of the replicas that vouch is promoted, whatever the random draw", () => {
  for (const random of [0, 0.5, 0.99]) {
    const plan = planVolume(record("m", [inSync("a", 30), inSync("b", 10), inSync("c", 20)]), view({ a: 30, b: 10, c: 20 }, random))
    assert.is(plan?.record.master, "b", `random ${random}`)
    assert.is(plan?.record.epoch, 6)
  }
})

test("while the lost master may return, a replica that restarted since it was recorded in sync is not promoted", () => {
  const plan = planVolume(record("m", [inSync("a", 30)]), view({ a: 31 }))
  assert.is(plan?.record.master, "m", "no promotion: waiting for the master")
  assert.match(plan?.record.unavailableReason ?? "", "restarted since they were recorded in sync")
  const vouching = planVolume(record("m", [inSync("a", 30), inSync("b", 12)]), view({ a: 31, b: 12 }))
  assert.is(vouching?.record.master, "b", "the one that vouches, not the older-synced one that restarted")
})

test("a promotion records the chosen copy's node and the process it was in sync under; a step-down's promotion replaces it", () => {
  const plan = planVolume(record("m", [inSync("a", 30), inSync("b", 10)]), view({ a: 30, b: 10 }))
  assert.equal(plan?.record.promotedFrom, { node: "b", incarnation: 10, epoch: 6 })
  const again = planVolume({ ...plan!.record, master: undefined, replicas: [inSync("a", 30)] }, view({ a: 30 }))
  assert.equal(again?.record.promotedFrom, { node: "a", incarnation: 30, epoch: 7 })
  const unknown = planVolume(record("m", [{ node: "a", state: "in-sync", syncedEpoch: 5 }]), view({ a: 30 }))
  assert.is(unknown?.record.master, "a")
  assert.is(unknown?.record.promotedFrom, undefined, "no recorded process: nothing a later one can continue")
})

test("a promoted master replaced before it served is listed with the process it was promoted under; one of an earlier promotion is not", () => {
  // Sweep seed 8470: the promoted master was paused before it served, then replaced; it held
  // every acknowledged write, and its agent can prove it by that process (agent.ts continueInSync).
  const first = planVolume(record("m", [inSync("a", 30), inSync("b", 10)]), view({ a: 30, b: 10 }))!.record
  const second = planVolume(first, view({ a: 30 }))!.record
  assert.is(second.master, "a")
  assert.equal(second.replicas.find((r) => r.node === "b"), { node: "b", state: "in-sync", syncedEpoch: 6, syncedIncarnation: 0, formerMaster: true, promotedIncarnation: 10 })
  const served = planVolume({ ...first, promotedFrom: { node: "b", incarnation: 10, epoch: 5 } }, view({ a: 30 }))!.record
  assert.is(served.replicas.find((r) => r.node === "b")?.promotedIncarnation, undefined, "a promotion of another epoch proves nothing")
})

test("an operator's accepted loss lets a replica that does not vouch be promoted, for that epoch only", () => {
  const r = record("m", [inSync("a", 30)])
  assert.is(planVolume(r, view({ a: 31 }))?.record.master, "m", "without it: waiting for the lost master")
  assert.match(planVolume(r, view({ a: 31 }))?.record.unavailableReason ?? "", "replivol volume accept-loss ns/v")
  const givenUp = { epoch: 5, requestedAtMs: 1, nodes: ["m"] }
  assert.is(planVolume({ ...r, acceptLoss: givenUp }, view({ a: 31 }))?.record.master, "a")
  assert.is(planVolume({ ...r, acceptLoss: { ...givenUp, epoch: 4 } }, view({ a: 31 }))?.record.master, "m", "accepted for an earlier epoch")
  assert.is(planVolume({ ...r, acceptLoss: { ...givenUp, nodes: ["x"] } }, view({ a: 31 }))?.record.master, "m", "the lost master was not among the copies given up on")
  assert.is(planVolume({ ...r, acceptLoss: { ...givenUp, incarnation: 7 } }, view({ a: 31 }))?.record.master, "m", "given while the master was up (for its process), not for a promotion")
  assert.equal(planVolume({ ...r, acceptLoss: givenUp }, view({ a: 31 }))?.record.acceptLoss, { epoch: 6, requestedAtMs: 1, nodes: ["m"], incarnation: 31 },
    "carried to the promotion it allowed, for the promoted copy's process: it does not wait again for the master given up on")
  assert.is(planVolume({ ...record("m", [inSync("a", 30)]), acceptLoss: givenUp }, view({ a: 30 }))?.record.acceptLoss, undefined,
    "a promotion of a replica that vouches needed no acceptance: none is carried")
  const serving = planVolume({ ...r, acceptLoss: givenUp }, { ...view({ m: 1, a: 31 }), masterLeased: new Set(["ns/v"]) })
  assert.is(serving?.record.acceptLoss, undefined, "once the master serves, the acceptance ends: a later loss of the same epoch waits again")
})

test("after a step-down (no master recorded) a replica that restarted may be promoted, the longest-running first", () => {
  const plan = planVolume(record(undefined, [inSync("a", 30), inSync("b", 12)]), view({ a: 40, b: 41 }))
  assert.is(plan?.record.master, "a")
})

test("an in-sync replica on a lost node is failed only once the node has been lost two lease TTLs, while the master serves", () => {
  const serving = (lostForMs: number): ClusterView => ({
    ...view({ m: 1, b: 2 }), masterLeased: new Set(["ns/v"]), lostForMs: new Map([["a", lostForMs]]), inSyncFailAfterMs: 2000,
  })
  const r = record("m", [inSync("a", 30), inSync("b", 2)])
  const early = planVolume(r, serving(1999))
  assert.is(early?.record.replicas.find((x) => x.node === "a")?.state ?? "in-sync", "in-sync", "a master that died with it may still hold its lease: not failed yet")
  const late = planVolume(r, serving(2000))
  assert.is(late?.record.replicas.find((x) => x.node === "a")?.state, "failed")
  assert.is(late?.record.replicas.find((x) => x.node === "a")?.reason, "node lost")
  const syncing = planVolume(record("m", [{ node: "a", state: "syncing" }, inSync("b", 2)]), serving(0))
  assert.is(syncing?.record.replicas.find((x) => x.node === "a")?.state, "failed", "a replica not in sync holds nothing to wait for: failed at once")
})

test("the lost master stays listed as an in-sync replica that does not vouch, uncounted, until the new master serves", () => {
  const promoted = planVolume(record("m", [inSync("a", 30), inSync("b", 10)]), view({ a: 30, b: 10 }))
  assert.is(promoted?.record.master, "b")
  const former = promoted?.record.replicas.find((r) => r.node === "m")
  assert.equal(former, { node: "m", state: "in-sync", syncedEpoch: 5, syncedIncarnation: 0, formerMaster: true })
  // Not counted against the replica count: a new replica is placed at once (here: on c).
  const placing = planVolume(promoted!.record, { ...view({ a: 30, b: 10, c: 40 }), masterLeased: new Set() })
  assert.ok(placing?.record.replicas.some((r) => r.node === "c" && r.state === "provisioned"), JSON.stringify(placing?.record.replicas))
  assert.ok(placing?.record.replicas.some((r) => r.node === "m"), "kept while the new master does not serve")
  const serving = planVolume(placing!.record, { ...view({ a: 30, b: 10, c: 40 }), masterLeased: new Set(["ns/v"]) })
  assert.not.ok(serving?.record.replicas.some((r) => r.node === "m"), "dropped once the new master serves")
  assert.ok(serving?.events.some((e) => e.includes("former master m's copy dropped")))
})

test("a former master's copy is dropped once the promoted master has opened its session, not while it merely holds its lease", () => {
  // As promote() lists it: in sync at the epoch before the promotion (the record's is 5).
  const former: ReplicaRecord = { node: "m", state: "in-sync", syncedEpoch: 4, syncedIncarnation: 0, formerMaster: true }
  const promoted = { ...record("a", [former]), spec: { ...record("a", []).spec, replicas: 0 } }
  const leased = (serving: ReadonlyArray<string>, alive = ["a", "m"]): ClusterView => ({
    ...view(Object.fromEntries(alive.map((n) => [n, 1]))), masterLeased: new Set(["ns/v"]), masterServing: new Set(serving),
  })
  const replicasAfter = (v: ClusterView) => (planVolume(promoted, v)?.record ?? promoted).replicas
  assert.equal(replicasAfter(leased([])), [former], "leased, still opening (it may crash before it serves): the former master stays")
  assert.equal(replicasAfter(leased(["ns/v@a@4"])), [former], "a mark of another epoch does not count")
  const opened = planVolume(promoted, leased(["ns/v@a@5"]))
  assert.equal(opened?.record.replicas, [], "it serves: the former master's copy goes")
  const lost = planVolume(promoted, { ...leased([], ["a"]), lostForMs: new Map([["m", 60_000]]), inSyncFailAfterMs: 2000 })
  assert.is(lost?.record.replicas[0]?.state, "failed", "its node lost: failed")
  assert.is(lost?.record.replicas[0]?.formerMaster, true, "and still marked a former master, never counted as a replica")
})

test("a former master's copy the new master synced since is kept as an ordinary in-sync replica, the count lowered by dropping an unsynced one (seed 3439)", () => {
  // Sweep seed 3439: the promoted master synced the former master, then lost power while its lease
  // was still marked serving; dropping the re-synced copy left none with every acknowledged write.
  const resynced: ReplicaRecord = { node: "m", state: "in-sync", syncedEpoch: 5, syncedIncarnation: 7, formerMaster: true }
  const promoted = { ...record("a", [resynced, { node: "c", state: "provisioned" }]), spec: { ...record("a", []).spec, replicas: 1 } }
  const serving: ClusterView = { ...view({ a: 1, m: 7, c: 2 }), masterLeased: new Set(["ns/v"]), masterServing: new Set(["ns/v@a@5"]) }
  const plan = planVolume(promoted, serving)
  assert.equal(plan?.record.replicas, [{ node: "m", state: "in-sync", syncedEpoch: 5, syncedIncarnation: 7 }], JSON.stringify(plan?.record.replicas))
  assert.ok(plan?.events.some((e) => e.includes("former master m's copy kept as an in-sync replica")))
  const notSynced = planVolume({ ...promoted, replicas: [{ ...resynced, syncedEpoch: 4 }, { node: "c", state: "provisioned" }] }, serving)
  assert.equal(notSynced?.record.replicas.map((r) => r.node), ["c"], "synced at the old epoch only: it goes as before")
})

test("a re-synced former master is dropped as before when in-sync replicas fill the count, and a move's extra copy keeps its place", () => {
  const resynced: ReplicaRecord = { node: "m", state: "in-sync", syncedEpoch: 5, syncedIncarnation: 7, formerMaster: true }
  const serving: ClusterView = { ...view({ a: 1, m: 7, b: 2, c: 3 }), masterLeased: new Set(["ns/v"]), masterServing: new Set(["ns/v@a@5"]) }
  const spec = { ...record("a", []).spec, replicas: 1 }
  // replicas=1, b in sync, c a drain's extra copy still provisioned (relocation: one beyond the count).
  const full = { ...record("a", [{ node: "b", state: "in-sync", syncedEpoch: 5 }, { node: "c", state: "provisioned" }, resynced]), spec }
  const plan = planVolume(full, serving)
  assert.equal(plan?.record.replicas.map((r) => r.node), ["b", "c"], JSON.stringify(plan?.record.replicas))
  assert.ok(plan?.events.some((e) => e.includes("former master m's copy dropped")))
  // replicas=2, b in sync, c provisioned: the former master takes c's slot, b is never dropped.
  const short = { ...full, spec: { ...spec, replicas: 2 }, replicas: [{ node: "b", state: "in-sync" as const, syncedEpoch: 5 }, { node: "c", state: "provisioned" as const }, resynced] }
  const kept = planVolume(short, serving)
  assert.equal(kept?.record.replicas.map((r) => r.node), ["b", "m"], JSON.stringify(kept?.record.replicas))
  assert.ok(kept?.events.some((e) => e.includes("replica on c (provisioned) dropped")))
})

test.run()
