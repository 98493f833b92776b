/**
 * The cluster simulator's lost-write checker (lib/testing/clusterModel.ts): what a correct cluster
 * may show for a block after a loss, and what it may not. A checker too lenient hides lost writes;
 * one too strict sends the sweep chasing correct behaviour.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { blockBytes, VolumeModel } from "../../../lib/testing/clusterModel.ts"

const test = suite("cluster simulator model")

const bytes = (fill: number) => new Uint8Array(blockBytes).fill(fill)
const zeros = bytes(0)

/** A one-volume model whose only holder is n1 (the master of its first record). */
const soleHolder = () => {
  const model = new VolumeModel("v", 16 * blockBytes, "uid")
  model.holders.add("n1")
  return model
}

test("a flushed write must survive the last holder's power loss; an unflushed one may roll back", () => {
  const model = soleHolder()
  model.issue(1, bytes(1))
  model.acknowledge(1, bytes(1))
  model.flushSucceeded(model.flushIssued())
  model.issue(2, bytes(2))
  model.acknowledge(2, bytes(2))
  assert.is(model.damaged("n1"), "legitimate-loss")
  assert.is(model.problem(1, zeros), "lacks its last acknowledged write")
  assert.is(model.problem(1, bytes(1)), undefined)
  assert.is(model.problem(2, zeros), undefined, "unflushed: rolled back to what the last flush made durable")
})

test("a write its master acknowledged before the page cache was lost may be gone when the acknowledgement arrives", () => {
  const model = soleHolder()
  model.issue(3, bytes(3))
  model.masterAcknowledged(3 * blockBytes, blockBytes)
  model.damaged("n1")
  model.acknowledge(3, bytes(3))
  assert.is(model.problem(3, zeros), undefined)
  assert.is(model.problem(3, bytes(3)), undefined)
})

test("a write acknowledged only after the loss must hold (the master wrote it after its page cache went)", () => {
  const model = soleHolder()
  model.issue(4, bytes(4))
  model.damaged("n1")
  model.masterAcknowledged(4 * blockBytes, blockBytes)
  model.acknowledge(4, bytes(4))
  assert.is(model.problem(4, zeros), "lacks its last acknowledged write")
})

test("the allowance ends with the block's next acknowledged write", () => {
  const model = soleHolder()
  model.issue(5, bytes(5))
  model.masterAcknowledged(5 * blockBytes, blockBytes)
  model.damaged("n1")
  model.acknowledge(5, bytes(5))
  model.issue(5, bytes(6))
  model.acknowledge(5, bytes(6))
  assert.is(model.problem(5, zeros), "lacks its last acknowledged write")
  assert.is(model.problem(5, bytes(5)), "lacks its last acknowledged write")
})

test("a loss on a copy that is not the last holder allows nothing", () => {
  const model = soleHolder()
  model.holders.add("n2")
  model.issue(6, bytes(7))
  model.masterAcknowledged(6 * blockBytes, blockBytes)
  assert.is(model.damaged("n2"), "still-held")
  model.acknowledge(6, bytes(7))
  assert.is(model.problem(6, zeros), "lacks its last acknowledged write")
})

test("a loss may roll back to a failed write that landed and was flushed before a later unflushed write", () => {
  // Sweep seed 6594: a write failed (it had landed), a flush made it durable, a later write was
  // acknowledged and, unflushed, lost with the last holder's power: the block read the failed write.
  const model = soleHolder()
  model.issue(7, bytes(8))
  model.flushSucceeded(model.flushIssued())
  model.issue(7, bytes(9))
  model.acknowledge(7, bytes(9))
  model.damaged("n1")
  assert.is(model.problem(7, bytes(8)), undefined)
  assert.is(model.problem(7, zeros), undefined)
  const flushed = soleHolder()
  flushed.issue(7, bytes(8))
  flushed.issue(7, bytes(9))
  flushed.acknowledge(7, bytes(9))
  flushed.flushSucceeded(flushed.flushIssued())
  flushed.damaged("n1")
  assert.is(flushed.problem(7, bytes(8)), "lacks its last acknowledged write", "the acknowledged write, flushed, overwrote it")
  // The same, then a later unflushed write lost with the power: the block may roll back to the
  // flushed write, never to the failed one the flushed write overwrote on every copy.
  flushed.issue(7, bytes(10))
  flushed.acknowledge(7, bytes(10))
  flushed.damaged("n1")
  assert.is(flushed.problem(7, bytes(9)), undefined, "rolled back to what the flush made durable")
  assert.is(flushed.problem(7, bytes(8)), "lacks its last acknowledged write", "the failed write the flushed one overwrote is not a rollback target")
})

test("a failed write may have landed in part, ending at any byte; never a mix the failed write could not leave", () => {
  const model = soleHolder()
  model.issue(1, bytes(1))
  model.acknowledge(1, bytes(1))
  model.issue(1, bytes(2)) // fails: in flight for good
  const torn = (at: number) => {
    const block = bytes(1)
    block.set(bytes(2).subarray(0, at))
    return block
  }
  assert.is(model.problem(1, torn(1024)), undefined, "torn at a sector boundary")
  assert.is(model.problem(1, torn(1536 + 77)), undefined, "torn inside a sector (a short pwrite)")
  const holed = bytes(1)
  holed.set(bytes(2).subarray(0, 100), 300)
  assert.is(model.problem(1, holed), "lacks its last acknowledged write", "new bytes inside old ones on both sides: no short write leaves that")
  const garbage = torn(600)
  garbage[700] = 9
  assert.is(model.problem(1, garbage), "lacks its last acknowledged write", "a byte of neither")
  const reversed = bytes(2)
  reversed.set(bytes(1).subarray(0, 1613))
  assert.is(model.problem(1, reversed), "lacks its last acknowledged write", "old bytes first, then the failed write's: no short write of it leaves that")
  const twice = torn(100)
  twice.set(bytes(2).subarray(0, 50), 512)
  assert.is(model.problem(1, twice), "lacks its last acknowledged write", "two sectors split: one short write ends once")
  model.issue(1, bytes(3)) // a second write in flight: it may end inside another sector
  assert.is(model.problem(1, twice), undefined, "two writes in flight, each torn once")
})

test.run()
