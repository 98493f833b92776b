/** Master + 2 replicas in one process over real TCP on 127.0.0.1..3: writes reach every copy. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Layer } from "effect"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import { startNode } from "../../../lib/node/node.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { testPort } from "../../support/ports.ts"

const test = suite("replication over TCP, in one process")
const secret = "test-secret-0123456789"
const port = testPort(25703)

test("writes reach master and both replicas; reads come back; flush completes", async () => {
  const stores = makeMemoryStores()
  const program = Effect.scoped(Effect.gen(function* () {
    const n1 = yield* startNode({ name: "n1", address: { host: "127.0.0.1", port }, dataDir: "/n1", secret })
    const n2 = yield* startNode({ name: "n2", address: { host: "127.0.0.2", port }, dataDir: "/n2", secret })
    const n3 = yield* startNode({ name: "n3", address: { host: "127.0.0.3", port }, dataDir: "/n3", secret })
    const size = 8 << 20
    yield* n2.hostReplica("default/vol", size)
    yield* n3.hostReplica("default/vol", size)
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes: size, labels: { "storageos.com/replicas": "2" },
      replicas: [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }],
    })
    const status = yield* volume.status
    assert.is(status.health, "healthy")
    const data = new Uint8Array(3 << 20).map((_, i) => (i * 31 + 7) & 0xff)
    yield* volume.write(12345, data)
    yield* Effect.forEach([0, 1, 2, 3, 4, 5, 6, 7], (i) => volume.write(1000 + i * 100, new Uint8Array(300).fill(i + 1)), { concurrency: "unbounded" })
    yield* volume.flush
    const back = yield* volume.read(12345 + 5000, 4096)
    assert.equal(Array.from(back.subarray(0, 8)), Array.from(data.subarray(5000, 5008)))
    const digests = ["/n1", "/n2", "/n3"].map((d) => (stores.byPath.get(`${d}/copies/default/vol.img`) as MemoryStore).digest())
    assert.is(digests[1], digests[0])
    assert.is(digests[2], digests[0])
  }))
  await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(layerTcp, stores.layer))))
})

test.run()
