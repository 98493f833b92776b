/** Three cluster nodes in one process (embedded control store, real TCP): create, IO, master loss. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { layerMemory } from "../../lib/control/embedded.ts"
import { layerTcp } from "../../lib/platform/tcp.ts"
import { makeMemoryStores } from "../../lib/store/Stores.ts"
import { startClusterNode, type ClusterNode } from "../../lib/cluster/clusterNode.ts"

const test = suite("cluster in one process")
const secret = "cluster-test-secret-0123456789"

test("create → healthy; IO from another node; master lost → promotion, IO resumes, new replica syncs", async () => {
  const stores = makeMemoryStores()
  const program = Effect.gen(function* () {
    const scopes: Scope.Closeable[] = []
    const nodes: ClusterNode[] = []
    for (const i of [1, 2, 3, 4]) {
      const scope = yield* Scope.make()
      scopes.push(scope)
      nodes.push(yield* startClusterNode({ name: `n${i}`, address: { host: `127.0.0.${i}`, port: 35703 }, dataDir: `/d/n${i}`, secret, ackTimeoutMs: 1000, leaseTtlMs: 1000, graceMs: 3000, ...(process.env.DEBUG_CLUSTER ? { onClusterEvent: (e: { node: string; kind: string; message: string }) => console.log(Date.now() % 100000, e.node, e.kind, e.message) } : {}) }).pipe(Scope.provide(scope)))
    }
    const [n1] = nodes as [ClusterNode]
    const streamed = yield* Effect.forkChild(Stream.mergeAll(nodes.map((n) => n.events), { concurrency: "unbounded" }).pipe(Stream.take(3), Stream.runCollect, Effect.timeout("10 seconds")))
    yield* Effect.yieldNow
    const created = yield* n1.createVolume({ volume: "default/v", sizeBytes: 16 << 20, labels: { "storageos.com/replicas": "2" } })
    assert.is(created.replicas.length, 2)
    const healthy = yield* n1.waitHealthy("default/v", 10_000)
    const firstEvents = yield* Fiber.join(streamed)
    assert.is(firstEvents.length, 3, "the event stream delivers events")
    assert.is(healthy.health, "healthy")
    const clientNode = nodes.find((n) => n.name !== healthy.master && !healthy.replicas.some((r) => r.node === n.name))!
    const volume = yield* clientNode.openVolume("default/v")
    const block = (i: number) => new Uint8Array(65536).fill((i * 7 + 1) & 0xff)
    for (let i = 0; i < 20; i++) yield* volume.write(i * 65536, block(i))
    const back = yield* volume.read(5 * 65536, 65536)
    assert.ok(back.every((b) => b === ((5 * 7 + 1) & 0xff)))
    // Lose the master: close its node abruptly.
    const masterIndex = nodes.findIndex((n) => n.name === healthy.master)
    yield* Scope.close(scopes[masterIndex]!, Exit.void)
    const t0 = Date.now()
    yield* volume.write(20 * 65536, block(20))
    const pauseMs = Date.now() - t0
    for (let i = 0; i <= 20; i++) {
      const bytes = yield* volume.read(i * 65536, 65536)
      const expected = (i * 7 + 1) & 0xff
      assert.ok(bytes.every((b) => b === expected), `block ${i} survived the failover`)
    }
    const after = yield* clientNode.waitHealthy("default/v", 15_000)
    assert.is.not(after.master, healthy.master)
    assert.ok(after.epoch > healthy.epoch)
    const seen = nodes.filter((n, i) => i !== masterIndex).flatMap((n) => n.recentEvents())
    assert.ok(seen.some((e) => e.kind === "controller-action" && /promoted/.test(e.message)), "a promotion event was published")
    assert.ok(seen.some((e) => e.kind === "sync-done"), "a sync-done event was published")
    console.log(`\n    failover pause ${pauseMs} ms; new master ${after.master} epoch ${after.epoch}; replicas ${after.replicas.map((r) => `${r.node}:${r.state}`).join(" ")}`)
    for (const [i, scope] of scopes.entries()) if (i !== masterIndex) yield* Scope.close(scope, Exit.void)
  })
  await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(layerTcp, stores.layer, layerMemory))))
})

test.run()
