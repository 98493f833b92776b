/** Copy identity: the full-sync-or-delta decision, row by row, from what a copy proves about itself. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { decideSync, identityOf, type CopyIdentity, type Lineage } from "../../../lib/replication/copyIdentity.ts"

const test = suite("copy identity")
const session: Lineage = { uid: "u1", epoch: 3, generation: "3-a-b" }
const complete: CopyIdentity = { uid: "u1", epoch: 3, generation: "3-a-b", state: "complete" }
const recent: ReadonlyArray<readonly [number, number]> = [[0, 4096]]

test("a copy that followed the same session with a known activity log gets a delta", () => {
  assert.equal(decideSync(complete, recent, session), { kind: "delta" })
  assert.equal(decideSync({ ...complete, state: "incomplete" }, recent, session, true), { kind: "delta" }, "incomplete within its own master's session: that master's bitmap knows what is owed")
})

test("every other answer gets a full sync, zero regions skipped only for an empty copy", () => {
  const rows: Array<[string, CopyIdentity, ReadonlyArray<readonly [number, number]> | "all", Lineage | undefined, boolean]> = [
    ["empty (wiped disk, new copy)", { uid: "u1", epoch: 0, generation: undefined, state: "empty" }, [], session, true],
    ["no record on a copy with history", { uid: undefined, epoch: 0, generation: undefined, state: "unknown" }, "all", session, false],
    ["another volume id (deleted and created again)", { ...complete, uid: "u0" }, recent, session, false],
    ["an older lineage (old master placed again)", { ...complete, epoch: 2, generation: "2-x-y" }, recent, session, false],
    ["same epoch, another master session", { ...complete, generation: "3-c-d" }, recent, session, false],
    ["unknown activity log (restarted) after a failover", complete, "all", session, false],
    ["no lineage to offer", complete, recent, undefined, false],
    ["incomplete in the previous session (another master decides)", { ...complete, state: "incomplete" }, recent, session, false],
  ]
  for (const [why, identity, activity, lineage, skipZeros] of rows) {
    const decision = decideSync(identity, activity, lineage)
    assert.is(decision.kind, "full", why)
    if (decision.kind === "full") assert.is(decision.skipZeros, skipZeros, `${why}: skip zeros`)
  }
})

test("the session's own master may catch up a restarted copy by delta (it tracked every unflushed region)", () => {
  assert.equal(decideSync(complete, "all", session, true), { kind: "delta" })
  assert.is(decideSync({ ...complete, generation: "3-c-d" }, "all", session, true).kind, "full", "but never another session's copy")
})

test("a store without a record is empty only when this open created it", () => {
  assert.is(identityOf(undefined, true).state, "empty")
  assert.is(identityOf(undefined, false).state, "unknown")
  assert.is(identityOf({ volume: "a/b", sizeBytes: 4096, epoch: 2, role: "replica", state: "attached", updatedAtMs: 0 }, false).state, "unknown", "a legacy state proves nothing")
  assert.equal(identityOf({ volume: "a/b", sizeBytes: 4096, epoch: 3, role: "master", state: "complete", updatedAtMs: 0, uid: "u1", generation: "3-a-b" }, false), complete)
})

test.run()
