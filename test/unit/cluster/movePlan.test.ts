/** Planned moves as pure decisions (movePlan.ts): which requests are refused and why, and the record a hand-over writes. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { drainSteps, handoverRecord, holdsCopies, moveRefusal, type MoveView } from "../../../lib/cluster/movePlan.ts"
import { placeExtraCopy, type ClusterView } from "../../../lib/cluster/placement.ts"
import type { ReplicaRecord, VolumeRecord } from "../../../lib/cluster/records.ts"

const test = suite("move plan")
const record = (master: string | undefined, replicas: ReadonlyArray<ReplicaRecord>, extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  volume: "ns/v", uid: "u1", sizeBytes: 1 << 20, labels: {}, createdAtMs: 0, epoch: 5, master, replicas, rulesApplied: [],
  spec: { replicas: replicas.length, failureMode: "soft", failureTolerance: 1, hintMaster: undefined, nocompress: false }, ...extra,
})
const view: MoveView = { alive: new Set(["a", "b", "c"]), known: new Set(["a", "b", "c", "d"]), cordoned: new Set(["c"]), masterLeased: new Set(["ns/v"]) }
const serving = record("a", [{ node: "b", state: "in-sync" }])

test("refusals name what is wrong: unknown, current master, down, cordoned node; no serving master; a move in progress", () => {
  const reasonOf = (r: VolumeRecord, to: string, v: MoveView = view) => {
    const refused = moveRefusal(r, to, v)
    return refused ? `${refused.reason}: ${refused.message}` : "ok"
  }
  assert.match(reasonOf(serving, "x"), /^not-found: .*node x is not known/)
  assert.match(reasonOf(serving, "a"), /^bad-request: .*already its master/)
  assert.match(reasonOf(serving, "d"), /^bad-request: .*not up/)
  assert.match(reasonOf(serving, "c"), /^bad-request: .*cordoned/)
  assert.match(reasonOf(record(undefined, [{ node: "b", state: "in-sync" }]), "b"), /^no-master: /)
  assert.match(reasonOf(serving, "b", { ...view, masterLeased: new Set() }), /^no-master: /, "a master without its lease does not serve")
  assert.match(reasonOf(record("a", serving.replicas, { move: { to: "b", requestedAtMs: 1 } }), "b"), /^conflict: .*in progress/)
  assert.is(reasonOf(record("a", serving.replicas, { move: { to: "b", requestedAtMs: 1, abandoned: "x" } }), "b"), "ok", "an abandoned move does not block the next")
  assert.is(reasonOf(serving, "b"), "ok")
  for (const to of ["x", "a", "d", "c"]) assert.match(reasonOf(serving, to), /nothing was changed/)
})

test("a hand-over: the target is master at the next epoch, the old master an in-sync replica (or dropped), the move gone", () => {
  const moving = record("a", [{ node: "b", state: "in-sync" }, { node: "c", state: "in-sync" }], { move: { to: "b", requestedAtMs: 1, armed: true } })
  const next = handoverRecord(moving, "a", 42)
  assert.is(next.master, "b")
  assert.is(next.epoch, 6)
  assert.is(next.move, undefined)
  assert.equal(next.handover, { from: "a", epoch: 6 })
  assert.equal(next.replicas, [{ node: "c", state: "in-sync" }, { node: "a", state: "in-sync", syncedEpoch: 6, syncedIncarnation: 42 }])
  const dropped = handoverRecord({ ...moving, move: { to: "b", requestedAtMs: 1, armed: true, dropOld: true } }, "a", 42)
  assert.equal(dropped.replicas.map((r) => r.node), ["c"])
  assert.throws(() => handoverRecord(moving, "b", 1), /no move by b/)
  assert.is(next.promotedFrom, undefined, "a target of no recorded process: nothing a later one can continue")
  const stamped = handoverRecord({ ...moving, replicas: [{ node: "b", state: "in-sync", syncedIncarnation: 17 }], promotedFrom: { node: "a", incarnation: 3, epoch: 5 } }, "a", 42)
  assert.equal(stamped.promotedFrom, { node: "b", incarnation: 17, epoch: 6 }, "the target's process, as a promotion records it (a crash before it serves is proven by continuity)")
})

test("a drain moves the node's masters and replaces its replicas; an extra copy goes to a free, uncordoned node or nowhere", () => {
  const volumes = [record("a", [{ node: "b", state: "in-sync" }]), { ...record("b", [{ node: "a", state: "in-sync" }]), volume: "ns/w" }, { ...record("c", [{ node: "b", state: "in-sync" }]), volume: "ns/x" }]
  assert.equal(drainSteps(volumes, "a"), [{ _tag: "move-master", volume: "ns/v" }, { _tag: "replace-replica", volume: "ns/w" }])
  assert.equal(holdsCopies(volumes, "a"), ["ns/v", "ns/w"])
  const cluster: ClusterView = { nowMs: 0, graceMs: 1, aliveNodes: new Set(["a", "b", "c", "d"]), masterLeased: new Set(), load: new Map(), random: () => 0.5, topology: { cordoned: new Set(["a"]), labelsOf: () => undefined } }
  assert.ok(["c", "d"].includes(placeExtraCopy(volumes[0]!, cluster, new Set(["a"]))!))
  assert.is(placeExtraCopy(volumes[0]!, { ...cluster, topology: { cordoned: new Set(["a", "c", "d"]), labelsOf: () => undefined } }, new Set(["a"])), undefined, "nowhere: every other node holds a copy or is cordoned")
})

test.run()
