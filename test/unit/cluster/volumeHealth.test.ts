/** A volume's health as `volume inspect` reports it (volumeInfo.ts): healthy only while its master serves. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import type { VolumeRecord } from "../../../lib/cluster/records.ts"
import { volumeInfo } from "../../../lib/cluster/volumeInfo.ts"

const test = suite("volume health")
const record: VolumeRecord = {
  volume: "ns/v", uid: "u1", sizeBytes: 1 << 20, labels: {}, createdAtMs: 0, epoch: 5, master: "m", replicas: [{ node: "a", state: "in-sync" }], rulesApplied: [],
  spec: { replicas: 1, failureMode: "hard", failureTolerance: 0, hintMaster: undefined, nocompress: false },
}
const alive = new Set(["m", "a"])

test("a master that is up but holds no master lease for the epoch (opening, or waiting) is not serving: not healthy, and the reason says so", () => {
  assert.is(volumeInfo(record, alive, { lease: { node: "m", epoch: 5, serving: true } }).health, "healthy")
  const waiting = volumeInfo(record, alive, { lease: undefined })
  assert.is.not(waiting.health, "healthy")
  assert.match(waiting.reason, "master m is not serving yet")
  assert.is.not(volumeInfo(record, alive, { lease: { node: "m", epoch: 4, serving: true } }).health, "healthy", "a lease of an older epoch")
  assert.is.not(volumeInfo(record, alive, { lease: { node: "a", epoch: 5, serving: true } }).health, "healthy", "another node's lease")
  assert.is(volumeInfo(record, alive).health, "healthy", "without the lease read, the record alone decides (as before)")
  assert.match(volumeInfo(record, new Set(["a"]), { lease: undefined }).reason, "master m is not available")
})

test("a master that took the lease but is still opening its session is not healthy (cluster simulator seed 83 of the power-loss + isolate + latency mix)", () => {
  const opening = volumeInfo(record, alive, { lease: { node: "m", epoch: 5 } })
  assert.is.not(opening.health, "healthy")
  assert.match(opening.reason, "still opening its session")
})

test.run()
