/**
 * Delta catch-up: a replica's node stops for a few seconds while 1 % of the volume is rewritten;
 * when it comes back it is caught up by sending only the dirty regions (printed: bytes rewritten
 * vs bytes sent), and its copy is byte-identical to the master's.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { startInProcessCluster, type InProcessCluster } from "../support/inprocessCluster.ts"
import { mulberry, patternBytes } from "../support/pattern.ts"

const test = suite("delta catch-up")
let cluster: InProcessCluster | undefined
test.after(async () => { await cluster?.close() })

test("a returning replica receives only what was written while it was away", async () => {
  cluster = await startInProcessCluster({ count: 3, hostBase: "127.0.3.", port: 5703, node: { graceMs: 30_000 } })
  const c = cluster
  const volume = "default/delta"
  const sizeBytes = 64 << 20
  const info = await c.run(Effect.gen(function* () {
    yield* c.any().createVolume({ volume, sizeBytes, labels: { "storageos.com/replicas": "2" } })
    return yield* c.any().waitHealthy(volume, 20_000)
  }))
  const master = c.byName(info.master!)!
  // Fill the volume so a full copy would be expensive.
  await c.run(Effect.gen(function* () {
    const handle = yield* master.openVolume(volume)
    for (let at = 0; at < sizeBytes; at += 1 << 20) yield* handle.write(at, patternBytes(1, at, 1 << 20))
    yield* handle.flush
  }))
  const away = info.replicas[0]!.node
  const awayIndex = Number(away.slice(1)) - 1
  await c.crash(awayIndex)
  // Rewrite 1 % of the volume in 64 KiB pieces at random 4 KiB-aligned offsets.
  const random = mulberry(77)
  let rewritten = 0
  await c.run(Effect.gen(function* () {
    const handle = yield* master.openVolume(volume)
    while (rewritten < sizeBytes / 100) {
      const offset = Math.floor(random() * ((sizeBytes - 65536) / 4096)) * 4096
      yield* handle.write(offset, patternBytes(2, offset, 65536))
      rewritten += 65536
    }
    yield* handle.flush
  }))
  const link = () => master.node.masters().get(volume)!.links().find((l) => l.target.node === away)!
  const sentBefore = link().syncBytesSent()
  await new Promise((r) => setTimeout(r, 2000))
  await c.restart(awayIndex)
  const healthy = await c.run(master.waitHealthy(volume, 30_000))
  assert.is(healthy.health, "healthy")
  const sent = link().syncBytesSent() - sentBefore
  console.log(`\n    rewritten ${rewritten} bytes while ${away} was away; the catch-up sent ${sent} bytes (${(sent / rewritten).toFixed(2)}×); a full copy is ${sizeBytes}`)
  assert.ok(sent > 0, "something was sent")
  assert.ok(sent <= rewritten * 2, `the catch-up sent at most twice what was rewritten (${sent} vs ${rewritten})`)
  const masterCopy = c.stores.byPath.get(`/mem/${info.master}/copies/${volume}.img`)!
  const replicaCopy = c.stores.byPath.get(`/mem/${away}/copies/${volume}.img`)!
  assert.is(replicaCopy.digest(), masterCopy.digest(), "the returned replica is byte-identical")
})

test.run()
