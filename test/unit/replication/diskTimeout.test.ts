/**
 * A master whose own disk hangs: an fdatasync that never returns must not hang the application
 * for good. Past the disk timeout the flush fails with a typed error, the master fences itself
 * (`store-failed`: its copy no longer proves what it holds) and later IO is refused, so its node
 * steps down for a replica — also when the disk is too stuck to record the copy incomplete.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { openMasterVolume } from "../../../lib/replication/masterVolume.ts"
import { makeMemoryStore } from "../../../lib/store/memory.ts"
import { parseLabels } from "../../../lib/volume/labels.ts"

const test = suite("master disk timeout")
const diskTimeoutMs = 200

const open = (hangMeta: boolean) => {
  const memory = makeMemoryStore(1 << 20)
  let metaWrites = 0
  const store = {
    ...memory,
    flush: Effect.never,
    writeMeta: (meta: Parameters<typeof memory.writeMeta>[0]) => (hangMeta && metaWrites++ > 0 ? Effect.never : memory.writeMeta(meta)),
  }
  return Effect.flatMap(parseLabels({ "storageos.com/replicas": "0" }), (spec) => openMasterVolume({ volume: "default/hung", spec, epoch: 1, store, nodeName: "n1", replicas: [], connect: () => Effect.die("no replicas"), diskTimeoutMs }))
}

for (const hangMeta of [false, true]) {
  test(`a hung fdatasync fails the flush within the disk timeout and fences the master${hangMeta ? " (the record write hangs too)" : ""}`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const volume = yield* open(hangMeta)
      yield* volume.write(0, new Uint8Array(4096).fill(9))
      const started = performance.now()
      const flushed = yield* Effect.flip(volume.flush)
      const tookMs = performance.now() - started
      assert.is(flushed._tag, "VolumeIoError")
      assert.match(flushed.message, /did not finish within 200 ms/)
      assert.ok(tookMs < diskTimeoutMs * 2 + 500, `the flush failed after ${tookMs.toFixed(0)} ms (disk timeout ${diskTimeoutMs} ms)`)
      assert.is(volume.fencedReason(), "store-failed")
      const later = yield* Effect.flip(volume.write(0, new Uint8Array(4096)))
      assert.is(later._tag, "VolumeUnavailable")
    }))))
}

test.run()
