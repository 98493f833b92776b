/** The resize records (lib/cluster/resize.ts): a request only grows and only adds the target; a commit needs the master at its epoch and a pending target. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { commitResize, masterCapacityOf, requestResize } from "../../../lib/cluster/resize.ts"
import { decodeVolume, encode, type VolumeRecord } from "../../../lib/cluster/records.ts"
import { validateLabels, type VolumeSpec } from "../../../lib/volume/labels.ts"

const test = suite("cluster resize records")
const MiB = 1 << 20
const spec = validateLabels({}) as VolumeSpec
const record: VolumeRecord = {
  volume: "ns/db", uid: "u1", sizeBytes: 64 * MiB, labels: {}, spec, createdAtMs: 1, epoch: 3, master: "n1",
  replicas: [{ node: "n2", state: "in-sync" }], rulesApplied: [],
}

test("a request adds the target and nothing else; the same size is unchanged; a shrink or a bad size is refused naming what is allowed", () => {
  const asked = requestResize(record, 128 * MiB)
  assert.ok(!(asked instanceof Error) && asked !== "unchanged")
  assert.equal(asked, { ...record, resizeToBytes: 128 * MiB })
  assert.is(requestResize(record, 64 * MiB), "unchanged")
  assert.is(requestResize(asked as VolumeRecord, 128 * MiB), "unchanged")
  assert.equal(requestResize(asked as VolumeRecord, 256 * MiB), { ...record, resizeToBytes: 256 * MiB }, "a bigger target replaces the pending one")
  const under = requestResize(asked as VolumeRecord, 96 * MiB)
  assert.ok(under instanceof Error && under.reason === "shrink" && /allowed: 134217728 bytes or more/.test(under.message), String(under))
  const shrink = requestResize(record, 32 * MiB)
  assert.ok(shrink instanceof Error && shrink.reason === "shrink" && /cannot shrink/.test(shrink.message))
  const odd = requestResize(record, 64 * MiB + 100)
  assert.ok(odd instanceof Error && odd.reason === "bad-size" && /512-byte sectors/.test(odd.message))
  assert.is(masterCapacityOf(asked as VolumeRecord), 128 * MiB)
  assert.is(masterCapacityOf(record), 64 * MiB)
})

test("a commit moves the size only for the master at its epoch with the target pending; a bigger target asked meanwhile stays", () => {
  const asked = requestResize(record, 128 * MiB) as VolumeRecord
  const committed = commitResize(asked, "n1", 3, 128 * MiB)
  assert.equal(committed, { ...record, sizeBytes: 128 * MiB })
  assert.not.ok("resizeToBytes" in (committed as object))
  assert.is(commitResize(asked, "n2", 3, 128 * MiB), "conflict", "another node")
  assert.is(commitResize(asked, "n1", 4, 128 * MiB), "conflict", "another epoch")
  assert.is(commitResize(record, "n1", 3, 128 * MiB), "conflict", "nothing pending")
  assert.is(commitResize(committed as VolumeRecord, "n1", 3, 128 * MiB), "unchanged")
  const raised = requestResize(asked, 512 * MiB) as VolumeRecord
  assert.equal(commitResize(raised, "n1", 3, 128 * MiB), { ...record, sizeBytes: 128 * MiB, resizeToBytes: 512 * MiB })
})

test("records decode with a pending target bigger than the size, and refuse one that is not", () => {
  const asked = requestResize(record, 128 * MiB) as VolumeRecord
  const decoded = decodeVolume("k", encode(asked))
  assert.ok(!(decoded instanceof Error))
  assert.is((decoded as VolumeRecord).resizeToBytes, 128 * MiB)
  const bad = decodeVolume("k", encode({ ...record, resizeToBytes: 32 * MiB }))
  assert.ok(bad instanceof Error && bad.reason === "corrupt-record")
})

test.run()
