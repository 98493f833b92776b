/**
 * The embedded store's pure state machine, at exact times: what a snapshot keeps, how a lease
 * expiry and a revoke change revisions, and when keepAlive says expired versus not-found.
 */
import { test } from "uvu"
import * as assert from "uvu/assert"
import { KeySpace } from "../../../lib/control/keySpace.ts"

test("a snapshot keeps non-leased keys and counters; restoring it gives the same reads", () => {
  const space = new KeySpace()
  const lease = space.grant(1_000, 0)
  space.apply([{ key: "nodes/a", value: "up", lease }, { key: "volumes/v1", value: "{}" }], [])
  space.apply([{ key: "volumes/v2", value: "{}" }], ["volumes/none"])
  const snapshot = space.snapshot()
  assert.equal(snapshot.entries.map((entry) => entry.key), ["volumes/v1", "volumes/v2"])
  const restored = KeySpace.restore(snapshot)
  assert.equal(restored.list("volumes/"), space.list("volumes/"))
  assert.is(restored.get("nodes/a"), undefined)
  assert.is(restored.revision, space.revision)
  assert.not.equal(restored.grant(1_000, 0), lease, "lease ids are not reused after a restart")
})

test("an expiry deletes all of a lease's keys at one revision and only at its deadline", () => {
  const space = new KeySpace()
  const lease = space.grant(100, 0)
  space.apply([{ key: "a", value: "1", lease }, { key: "b", value: "2", lease }, { key: "c", value: "3" }], [])
  const before = space.revision
  assert.equal(space.expire(99).events, [])
  const change = space.expire(100)
  assert.equal(change.events, [{ type: "delete", key: "a", revision: before + 1 }, { type: "delete", key: "b", revision: before + 1 }])
  assert.is(change.durable, false, "leased keys are not persisted, so their expiry needs no write")
  assert.is(space.keepAlive(lease, 100), "expired")
  assert.is(space.keepAlive("999", 100), "not-found")
  assert.equal(space.list("").map((kv) => kv.key), ["c"])
})

test("a put without a lease detaches the key from its lease; a no-op delete keeps the revision", () => {
  const space = new KeySpace()
  const lease = space.grant(100, 0)
  space.apply([{ key: "k", value: "leased", lease }], [])
  const detached = space.apply([{ key: "k", value: "plain" }], [])
  assert.is(detached.durable, true)
  space.expire(1_000)
  assert.is(space.get("k")?.value, "plain", "no longer deleted with the lease")
  const revision = space.revision
  assert.equal(space.apply([], ["missing"]).events, [])
  assert.is(space.revision, revision)
})

test.run()
