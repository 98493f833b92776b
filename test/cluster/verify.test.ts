/** ClusterNode.verifyVolume / startVerify / verifyStatus on three in-process nodes (real TCP): asked through any node, clean under writes; a corrupted replica found and repaired. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber } from "effect"
import { startInProcessCluster, type InProcessCluster } from "../support/inprocessCluster.ts"
import type { MemoryStore } from "../../lib/store/memory.ts"

const test = suite("cluster verify")
let cluster: InProcessCluster
const MiB = 1024 * 1024

test.before(async () => {
  cluster = await startInProcessCluster({ count: 3, hostBase: "127.0.15.", port: 36703 })
})

test.after(async () => {
  await cluster?.close()
})

test("verify through a node that is not the master: no difference while a handle writes; a corrupted replica is found and repaired", async () => {
  const result = await cluster.run(Effect.gen(function* () {
    const any = cluster.any()
    yield* any.createVolume({ volume: "default/v", sizeBytes: 16 * MiB, labels: { "storageos.com/replicas": "2" } })
    const healthy = yield* any.waitHealthy("default/v", 15_000)
    const master = cluster.byName(healthy.master!)!
    const replica = healthy.replicas[0]!.node
    const handle = yield* cluster.byName(replica)!.openVolume("default/v")
    let writing = true
    let written = 0
    const writer = yield* Effect.forkChild(Effect.gen(function* () {
      for (let i = 0; writing; i++) {
        yield* handle.write(((i * 7919) % 255) * 64 * 1024, new Uint8Array(64 * 1024).fill(i & 0xff))
        written++
      }
    }))
    const clean = yield* cluster.byName(replica)!.verifyVolume("default/v", { regionBytes: 256 * 1024 })
    writing = false
    yield* Fiber.join(writer)
    yield* handle.flush
    const copy = cluster.stores.byPath.get(`/mem/${replica}/copies/default/v.img`) as MemoryStore
    yield* copy.write(9 * MiB + 77, new Uint8Array([9, 9, 9]))
    const found = yield* master.verifyVolume("default/v")
    const started = yield* any.startVerify("default/v", { repair: true })
    while ((yield* any.verifyStatus("default/v")).state === "running") yield* Effect.sleep(20)
    const repaired = yield* any.verifyStatus("default/v")
    const masterCopy = cluster.stores.byPath.get(`/mem/${master.name}/copies/default/v.img`) as MemoryStore
    return { clean, written, found, started, repaired, replica, equal: copy.digest() === masterCopy.digest() }
  }))
  assert.ok(result.written > 10, `the handle wrote during the verify (${result.written})`)
  assert.is(result.clean.state, "done")
  assert.is(result.clean.copies.length, 2)
  assert.is(result.clean.differencesFound, 0)
  assert.equal(result.found.differences.map((d) => `${d.node}@${d.offset}+${d.length}`), [`${result.replica}@${9 * MiB}+${MiB}`])
  assert.is(result.repaired.startedAtMs, result.started.startedAtMs, "the status is the started verify's")
  assert.is(result.repaired.differingRegions, 0)
  assert.ok(result.repaired.differences.every((d) => d.repaired))
  assert.ok(result.equal, "the repaired replica is byte-identical to the master")
})

test("verify of a volume that does not exist: not-found; status before any verify: not-found", async () => {
  const reasons = await cluster.run(Effect.gen(function* () {
    const any = cluster.any()
    const missing = yield* Effect.flip(any.verifyVolume("default/none"))
    yield* any.createVolume({ volume: "default/fresh", sizeBytes: MiB, labels: { "storageos.com/replicas": "1" } })
    yield* any.waitHealthy("default/fresh", 15_000)
    const none = yield* Effect.flip(any.verifyStatus("default/fresh"))
    return [`${missing._tag}:${(missing as { reason: string }).reason}`, `${none._tag}:${none.reason}`]
  }))
  assert.equal(reasons, ["ClusterError:not-found", "ClusterError:not-found"])
})

test.run()
