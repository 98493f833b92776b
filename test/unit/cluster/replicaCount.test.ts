/** A lowered replica count (volumeInfo.ts `withReplicaCount`, `trimmedRecord`): copies not in sync go at once, in-sync ones only by the serving master. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import type { ReplicaRecord, VolumeRecord } from "../../../lib/cluster/records.ts"
import { trimmedRecord, withReplicaCount } from "../../../lib/cluster/volumeInfo.ts"

const test = suite("replica count")
const record = (replicas: ReadonlyArray<ReplicaRecord>, count: number): VolumeRecord => ({
  volume: "ns/v", uid: "u1", sizeBytes: 1 << 20, labels: {}, createdAtMs: 0, epoch: 5, master: "m", replicas, rulesApplied: [],
  spec: { replicas: count, failureMode: "soft", failureTolerance: 0, hintMaster: undefined, nocompress: false },
})
const nodes = (r: VolumeRecord) => r.replicas.map((x) => `${x.node}:${x.state}`)

test("fewer replicas: those not in sync are dropped now; surplus in-sync ones stay, marked for the master", () => {
  const replicas: ReplicaRecord[] = [{ node: "a", state: "syncing" }, { node: "b", state: "in-sync" }, { node: "c", state: "failed" }, { node: "d", state: "in-sync" }]
  const two = withReplicaCount(record(replicas, 2))
  assert.equal(nodes(two), ["b:in-sync", "d:in-sync"])
  assert.is(two.trimReplicas, undefined, "nothing in sync is beyond the count")
  const one = withReplicaCount(record(replicas, 1))
  assert.equal(nodes(one), ["b:in-sync", "d:in-sync"], "the in-sync copies stay until the serving master drops one")
  assert.is(one.trimReplicas, true)
  const trimmed = trimmedRecord(one)
  assert.equal(nodes(trimmed), ["b:in-sync"])
  assert.is(trimmed.trimReplicas, undefined)
  assert.equal(nodes(trimmedRecord(withReplicaCount(record(replicas, 0)))), [], "none: the master alone, once it serves")
})

test("a count raised again before the master dropped them clears the pending drop", () => {
  const pending = withReplicaCount(record([{ node: "b", state: "in-sync" }, { node: "d", state: "in-sync" }], 0))
  assert.is(pending.trimReplicas, true)
  const raised = withReplicaCount({ ...pending, spec: { ...pending.spec, replicas: 2 } })
  assert.equal(nodes(raised), ["b:in-sync", "d:in-sync"])
  assert.is(raised.trimReplicas, undefined)
})

test.run()
