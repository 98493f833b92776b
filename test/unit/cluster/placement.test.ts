/**
 * Placement with cordons and failure domains (lib/cluster/placement.ts), table by table: a
 * cordoned node gets no new copy and no promotion; copies spread across distinct values of the
 * topology key when the nodes allow it, with a warning when they do not; nothing changes for
 * nodes without labels.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { ClusterError, type VolumeRecord } from "../../../lib/cluster/records.ts"
import { noTopology, placeVolume, planVolume, type ClusterView, type NodeTopology, type Placement } from "../../../lib/cluster/placement.ts"
import { validateLabels, type VolumeSpec } from "../../../lib/volume/labels.ts"

const test = suite("placement: cordons and failure domains")

const specOf = (labels: Record<string, string>): VolumeSpec => {
  const spec = validateLabels(labels)
  if ("_tag" in spec) throw new Error(spec.message)
  return spec
}
const topologyOf = (labels: Record<string, Record<string, string>>, cordoned: string[] = []): NodeTopology => ({ cordoned: new Set(cordoned), labelsOf: (node) => labels[node] })
const lcg = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const place = (spec: VolumeSpec, nodes: string[], topology: NodeTopology, seed = 1): Placement => {
  const placed = placeVolume("ns/vol", spec, nodes, new Map(), lcg(seed), topology)
  if (placed instanceof ClusterError) throw new Error(placed.message)
  return placed
}
const zones = (entries: Record<string, string>, key = "topology.kubernetes.io/zone") => Object.fromEntries(Object.entries(entries).map(([node, zone]) => [node, { [key]: zone }]))

test("a cordoned node gets no copy; too few uncordoned nodes is refused, naming the cordon", () => {
  const topology = topologyOf({}, ["n3"])
  for (let seed = 1; seed <= 50; seed++) {
    const placed = place(specOf({ "storageos.com/replicas": "1" }), ["n1", "n2", "n3"], topology, seed)
    assert.not.ok([placed.master, ...placed.replicas].includes("n3"), `seed ${seed}: ${JSON.stringify(placed)}`)
  }
  const refused = placeVolume("ns/vol", specOf({ "storageos.com/replicas": "2" }), ["n1", "n2", "n3"], new Map(), lcg(1), topology)
  assert.ok(refused instanceof ClusterError)
  assert.is(refused.reason, "too-few-nodes")
  assert.match(refused.message, /only 2 nodes are available \(1 more is cordoned\)/)
  const hinted = place(specOf({ "storageos.com/replicas": "1", "storageos.com/hint.master": "n3" }), ["n1", "n2", "n3"], topology)
  assert.is.not(hinted.master, "n3", "hint.master on a cordoned node is not honoured")
})

test("copies spread across distinct zones whenever the nodes allow it", () => {
  const topology = topologyOf(zones({ n1: "a", n2: "a", n3: "b", n4: "c", n5: "c" }))
  for (let seed = 1; seed <= 100; seed++) {
    const placed = place(specOf({ "storageos.com/replicas": "2" }), ["n1", "n2", "n3", "n4", "n5"], topology, seed)
    const used = [placed.master, ...placed.replicas].map((n) => topology.labelsOf(n)!["topology.kubernetes.io/zone"])
    assert.is(new Set(used).size, 3, `seed ${seed}: ${JSON.stringify(placed)} in zones ${used}`)
    assert.is(placed.warning, undefined)
  }
})

test("the volume's storageos.com/topology-key, and StorageOS v1's iaas/failure-domain on nodes without the zone", () => {
  const racks = topologyOf(zones({ n1: "r1", n2: "r1", n3: "r2" }, "example.com/rack"))
  for (let seed = 1; seed <= 30; seed++) {
    const placed = place(specOf({ "storageos.com/replicas": "1", "storageos.com/topology-key": "example.com/rack" }), ["n1", "n2", "n3"], racks, seed)
    assert.ok([placed.master, ...placed.replicas].includes("n3"), `seed ${seed}: ${JSON.stringify(placed)}`)
  }
  const legacy = topologyOf(zones({ n1: "d1", n2: "d1", n3: "d2" }, "iaas/failure-domain"))
  for (let seed = 1; seed <= 30; seed++) {
    const placed = place(specOf({ "storageos.com/replicas": "1" }), ["n1", "n2", "n3"], legacy, seed)
    assert.ok([placed.master, ...placed.replicas].includes("n3"), `seed ${seed}: ${JSON.stringify(placed)}`)
  }
})

test("too few domains: placed anyway, with a warning naming the key; no labels at all: no warning", () => {
  const placed = place(specOf({ "storageos.com/replicas": "2" }), ["n1", "n2", "n3"], topologyOf(zones({ n1: "a", n2: "a", n3: "b" })))
  assert.is(placed.replicas.length, 2)
  assert.match(placed.warning ?? "", /could not each get their own topology\.kubernetes\.io\/zone/)
  assert.is(place(specOf({ "storageos.com/replicas": "2" }), ["n1", "n2", "n3"], noTopology).warning, undefined)
  assert.is(place(specOf({ "storageos.com/replicas": "0" }), ["n1", "n2", "n3"], topologyOf(zones({ n1: "a" }))).warning, undefined)
})

test("a malformed topology key is refused at creation", () => {
  const refused = validateLabels({ "storageos.com/topology-key": "not a key!" })
  assert.ok("_tag" in refused && refused.reason === "malformed-value", JSON.stringify(refused))
})

const record = (spec: VolumeSpec, master: string | undefined, replicas: VolumeRecord["replicas"]): VolumeRecord => ({
  volume: "ns/vol", uid: "u1", sizeBytes: 1 << 20, labels: {}, spec, createdAtMs: 0, epoch: 3, master, replicas, rulesApplied: [],
})
const view = (alive: string[], topology: NodeTopology): ClusterView => ({
  nowMs: 10_000, aliveNodes: new Set(alive), masterLeased: new Set(), load: new Map(), graceMs: 1_000, random: lcg(7), topology,
})

test("no promotion to a cordoned node: the volume waits, saying why", () => {
  const spec = specOf({ "storageos.com/replicas": "1" })
  const plan = planVolume(record(spec, "n1", [{ node: "n2", state: "in-sync" }]), view(["n2", "n3"], topologyOf({}, ["n2"])))
  assert.ok(plan)
  assert.is(plan.record.master, "n1", "the cordoned in-sync replica was not promoted")
  assert.match(plan.record.unavailableReason ?? "", /n2 in-sync \(cordoned\)/)
  const uncordoned = planVolume(record(spec, "n1", [{ node: "n2", state: "in-sync" }]), view(["n2", "n3"], noTopology))
  assert.is(uncordoned?.record.master, "n2")
})

test("a replacement replica goes to an uncordoned node in a zone the volume is not in yet", () => {
  const spec = specOf({ "storageos.com/replicas": "2" })
  const topology = topologyOf(zones({ n1: "a", n2: "b", n3: "b", n4: "c", n5: "c" }), ["n5"])
  for (let seed = 1; seed <= 30; seed++) {
    const plan = planVolume(record(spec, "n1", [{ node: "n2", state: "in-sync" }]), { ...view(["n1", "n2", "n3", "n4", "n5"], topology), random: lcg(seed) })
    assert.equal(plan?.record.replicas.map((r) => r.node), ["n2", "n4"], `seed ${seed}`)
  }
})

test.run()
