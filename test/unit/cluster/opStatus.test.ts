/** Move and drain statuses in the control store (lib/cluster/opStatus.ts): written on state changes and at intervals, read by anyone; a gone runner's running status reads as failed. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { ControlStore } from "../../../lib/control/ControlStore.ts"
import { layerMemory } from "../../../lib/control/embedded.ts"
import { decodeDrainStatus, decodeMoveStatus, makeStatusWriter, readDrainStatus, readMoveStatus } from "../../../lib/cluster/opStatus.ts"
import { encode, keys, type NodeRecord } from "../../../lib/cluster/records.ts"
import type { DrainStatus, MoveStatus } from "../../../lib/cluster/types.ts"

const test = suite("move and drain statuses in the control store")
const run = <A, E>(effect: Effect.Effect<A, E, ControlStore>) => Effect.runPromise(effect.pipe(Effect.provide([layerMemory, TestClock.layer()])))
const node = (name: string, incarnation: number): NodeRecord => ({ name, host: "127.0.0.1", port: 5703, startedAtMs: 1, incarnation })
const move: MoveStatus = { volume: "ns/v", runner: "n2", from: "n1", to: "n3", state: "copying", newCopy: true, bytesDone: 0, bytesTotal: 100, startedAtMs: 5 }

test("any reader sees what the runner wrote; progress is written at most every opStatusWriteMs, a change of state at once", async () => {
  const seen = await run(Effect.gen(function* () {
    const control = yield* ControlStore
    yield* control.put(keys.node("n2"), encode(node("n2", 7)))
    const write = yield* makeStatusWriter<MoveStatus>(keys.moveStatus("ns/v"), 7)
    yield* write(move)
    const first = yield* readMoveStatus("ns/v")
    yield* write({ ...move, bytesDone: 50 })
    const throttled = yield* readMoveStatus("ns/v")
    yield* TestClock.adjust("600 millis")
    yield* write({ ...move, bytesDone: 60 })
    const later = yield* readMoveStatus("ns/v")
    yield* write({ ...move, bytesDone: 60, state: "handing-over" })
    const changed = yield* readMoveStatus("ns/v")
    return { first, throttled, later, changed }
  }))
  assert.equal(seen.first, move, "the stored status, without the runner's incarnation")
  assert.is(seen.throttled?.bytesDone, 0, "progress within opStatusWriteMs is not written")
  assert.is(seen.later?.bytesDone, 60)
  assert.is(seen.changed?.state, "handing-over", "a change of state is written at once")
})

test("a running status whose runner is down or restarted reads as failed, saying why; a finished one stays as it was", async () => {
  const seen = await run(Effect.gen(function* () {
    const control = yield* ControlStore
    const drain: DrainStatus = { node: "n1", runner: "n3", state: "draining", volumesTotal: 2, volumesDone: 1, startedAtMs: 9 }
    yield* Effect.flatMap(makeStatusWriter<DrainStatus>(keys.drainStatus("n1"), 4), (write) => write(drain))
    const down = yield* readDrainStatus("n1")
    yield* control.put(keys.node("n3"), encode(node("n3", 11)))
    const restarted = yield* readDrainStatus("n1")
    yield* control.put(keys.node("n3"), encode(node("n3", 4)))
    const running = yield* readDrainStatus("n1")
    yield* control.delete(keys.node("n3"))
    yield* Effect.flatMap(makeStatusWriter<DrainStatus>(keys.drainStatus("n1"), 4), (write) => write({ ...drain, state: "done", volumesDone: 2 }))
    const done = yield* readDrainStatus("n1")
    return { down, restarted, running, done }
  }))
  assert.is(seen.down?.state, "failed")
  assert.match(seen.down?.error ?? "", /its node n3 is down .*run it again/)
  assert.is(seen.restarted?.state, "failed")
  assert.match(seen.restarted?.error ?? "", /restarted since \(incarnation 4 → 11\)/)
  assert.is(seen.running?.state, "draining", "the runner of that incarnation is up: it still runs")
  assert.is(seen.done?.state, "done", "a finished status is not judged by its runner")
})

test("malformed stored statuses read as absent; no status is not-found for the caller", async () => {
  assert.is(decodeMoveStatus("{"), undefined)
  assert.is(decodeMoveStatus(encode({ ...move, state: "flying" })), undefined)
  assert.is(decodeMoveStatus(encode({ ...move, runner: 3 })), undefined)
  assert.is(decodeDrainStatus(encode({ node: "n1", runner: "n2", state: "draining", volumesTotal: -1, volumesDone: 0, startedAtMs: 1 })), undefined)
  assert.ok(decodeDrainStatus(encode({ node: "n1", runner: "n2", state: "done", volumesTotal: 1, volumesDone: 1, startedAtMs: 1 })) !== undefined)
  const absent = await run(Effect.gen(function* () {
    yield* (yield* ControlStore).put(keys.moveStatus("ns/w"), "not json")
    return [yield* readMoveStatus("ns/w"), yield* readMoveStatus("ns/none"), yield* readDrainStatus("n9")]
  }))
  assert.equal(absent, [undefined, undefined, undefined])
})

test.run()
