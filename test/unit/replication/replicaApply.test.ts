/**
 * A replica applies one connection's writes in order without waiting for each (a write whose
 * store call is slow does not hold up the next), and every other frame waits for the writes
 * before it: the replica's fdatasync for a Flush starts only once every earlier write completed,
 * and the copies end byte-identical. The replica's store here lands each write when it starts
 * (the BlockStore ordering rule) and completes it later, as a thread-pool write does.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Layer } from "effect"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { makeMemoryStores, Stores } from "../../../lib/store/Stores.ts"
import { wrapStore } from "../../../lib/store/BlockStore.ts"
import { startNode } from "../../../lib/node/node.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { testPort } from "../../support/ports.ts"

const test = suite("replica apply order")
const secret = "test-secret-0123456789"
const port = testPort(25723)

test("slow writes do not hold up later ones; a Flush's fdatasync follows every earlier write", async () => {
  const memory = makeMemoryStores()
  const events: string[] = []
  let running = 0
  let runningMax = 0
  // n2's copy: each write lands at once and completes after a pause (the first ones longest).
  const slowReplica = Stores.of({
    ...memory.service,
    open: (path, sizeBytes) => Effect.map(memory.service.open(path, sizeBytes), (store) => !path.startsWith("/n2/") ? store : wrapStore(store, {
      write: (offset, data) => Effect.suspend(() => {
        running++
        runningMax = Math.max(runningMax, running)
        return Effect.andThen(store.write(offset, data), Effect.sleep(Math.max(1, 40 - running * 5))).pipe(
          Effect.ensuring(Effect.sync(() => {
            running--
            events.push("write-done")
          })))
      }),
      flush: Effect.suspend(() => {
        events.push(`flush-start with ${running} writes running`)
        return store.flush
      }),
    })),
  })
  const program = Effect.scoped(Effect.gen(function* () {
    const n1 = yield* startNode({ name: "n1", address: { host: "127.0.0.1", port }, dataDir: "/n1", secret })
    const n2 = yield* startNode({ name: "n2", address: { host: "127.0.0.2", port }, dataDir: "/n2", secret })
    const size = 8 << 20
    yield* n2.hostReplica("default/vol", size)
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes: size, labels: { "storageos.com/replicas": "1" },
      replicas: [{ node: "n2", address: n2.address }],
    })
    // Overlapping writes at once: the last one of each offset must win on both copies.
    yield* Effect.forEach(Array.from({ length: 24 }, (_, i) => i), (i) => volume.write((i % 6) * 4096, new Uint8Array(8192).fill(i + 1)), { concurrency: "unbounded", discard: true })
    yield* volume.flush
    const digests = ["/n1", "/n2"].map((dir) => (memory.byPath.get(`${dir}/copies/default/vol.img`) as MemoryStore).digest())
    assert.is(digests[1], digests[0], "the copies are byte-identical")
  }))
  await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(layerTcp, Layer.succeed(Stores, slowReplica)))))
  assert.ok(runningMax > 1, `writes overlapped on the replica (at most ${runningMax} at once)`)
  const flushes = events.filter((e) => e.startsWith("flush-start"))
  assert.ok(flushes.length >= 1, "the replica flushed")
  for (const flush of flushes) assert.is(flush, "flush-start with 0 writes running")
})

test.run()
