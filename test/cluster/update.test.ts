/**
 * `volume update` on a live volume (a local cluster of 3 nodes, file stores, real TCP) while a
 * writer keeps writing: replicas up (a new copy placed and synced), failure mode changed,
 * replicas down (the in-sync copy kept), compression off — no write fails, nothing acknowledged
 * is lost, and the copies end byte-identical. Invalid changes are refused with a reason and
 * change nothing.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLocalCluster, type LocalClusterHandle } from "../../lib/cli/localCluster.ts"
import type { VolumeInfo } from "../../lib/cluster/clusterNode.ts"

const test = suite("volume update on a live volume")
const volume = "up/v"
const blockBytes = 64 * 1024
const blocks = 1024 // 64 MiB: the added replica's sync takes a while, so writes land during it
const dir = mkdtempSync(join(tmpdir(), "replivol-update-"))
let cluster: LocalClusterHandle

test.before(async () => {
  cluster = await createLocalCluster({ nodes: 3, hostBase: "127.0.46.", port: 27103, dataDir: dir, node: { leaseTtlMs: 1500 } })
})
test.after(async () => {
  await cluster?.close()
  rmSync(dir, { recursive: true, force: true })
})

const pattern = (block: number, round: number) => new Uint8Array(blockBytes).fill((block * 7 + round * 13 + 1) & 0xff)
const waitFor = (what: string, timeoutMs: number, check: (info: VolumeInfo) => boolean) => waitForVolume(volume, what, timeoutMs, check)
const waitForVolume = async (name: string, what: string, timeoutMs: number, check: (info: VolumeInfo) => boolean): Promise<VolumeInfo> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const info = await cluster.inspectVolume(name)
    if (check(info)) return info
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms: ${JSON.stringify(info)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
const digest = (node: string) => createHash("sha256").update(readFileSync(join(dir, node, "copies", `${volume}.img`))).digest("hex")

test("hard mode: replicas up, then failure mode, replicas down and compression change while writes go on: none fails, copies identical", async () => {
  // Hard mode: a raised replica count must not stop IO while the added replica syncs.
  await cluster.createVolume(volume, blocks * blockBytes, { "storageos.com/replicas": "1", "storageos.com/failure.mode": "hard" })
  await cluster.waitHealthy(volume, 30_000)
  const handle = await cluster.openVolume(volume)
  for (let block = 0; block < blocks; block++) await handle.write(block * blockBytes, pattern(block, 0))
  const last = new Map<number, number>()
  const errors: string[] = []
  let round = 0
  let stop = false
  const writer = (async () => {
    while (!stop && round < 10_000) {
      for (let block = 0; block < blocks && !stop; block += 64) {
        await handle.write(block * blockBytes, pattern(block, round)).then(() => void last.set(block, round), (error: Error) => void errors.push(error.message))
      }
      round++
    }
  })()

  const up = await cluster.updateVolume(volume, { setLabels: { "storageos.com/replicas": "2" } })
  assert.is(up.labels["storageos.com/replicas"], "2")
  const synced = await waitFor("a second replica in sync", 60_000, (info) => info.health === "healthy" && info.replicas.filter((r) => r.state === "in-sync").length === 2)
  const soft = await cluster.updateVolume(volume, { setLabels: { "storageos.com/failure.mode": "soft", "storageos.com/nocompress": "true" } })
  assert.is(soft.labels["storageos.com/failure.mode"], "soft")
  assert.is(soft.labels["storageos.com/nocompress"], "true")
  await new Promise((resolve) => setTimeout(resolve, 500))
  const keep = synced.replicas.map((r) => r.node)
  const down = await cluster.updateVolume(volume, { setLabels: { "storageos.com/replicas": "1" } })
  assert.is(down.replicas.length, 1)
  assert.ok(keep.includes(down.replicas[0]!.node), "an in-sync replica was kept")
  await waitFor("healthy with one replica", 30_000, (info) => info.health === "healthy" && info.replicas.length === 1)
  stop = true
  await writer
  await handle.flush()
  assert.equal(errors, [], "no write failed while the volume was updated")
  assert.is(handle.retries(), 0, "no write even paused: the raised count applies once the added replica is in sync")
  assert.ok(round >= 1, "the writer made progress")
  for (const [block, r] of last) assert.equal(Array.from((await handle.read(block * blockBytes, 8))), Array.from(pattern(block, r).subarray(0, 8)), `block ${block}`)
  const info = await cluster.inspectVolume(volume)
  await handle.close()
  assert.is(digest(info.master!), digest(info.replicas[0]!.node), "master and replica copies are byte-identical")
})

test("invalid updates are refused with a reason and change nothing", async () => {
  const before = await cluster.inspectVolume(volume)
  const tooMany = await cluster.updateVolume(volume, { setLabels: { "storageos.com/replicas": "4" } }).then(() => undefined, (e: { reason?: string; message: string }) => e)
  assert.is(tooMany?.reason, "too-few-nodes")
  assert.match(tooMany?.message ?? "", /at most 2 replicas/)
  const badLabel = await cluster.updateVolume(volume, { setLabels: { "storageos.com/failure.mode": "sometimes" } }).then(() => undefined, (e: { _tag?: string; message: string }) => e)
  assert.is(badLabel?._tag, "LabelError")
  assert.match(badLabel?.message ?? "", /allowed hard \| soft \| alwayson/)
  const missing = await cluster.updateVolume("up/nope", { setLabels: { "storageos.com/replicas": "1" } }).then(() => undefined, (e: { reason?: string }) => e)
  assert.is(missing?.reason, "not-found")
  const after = await cluster.inspectVolume(volume)
  assert.equal(after.labels, before.labels)
  assert.ok(after.replicas.length === before.replicas.length, "no replica was dropped")
})

test("no replica is dropped while no master serves; a cordoned replica is not promoted until uncordoned", async () => {
  const name = "up/w"
  await cluster.createVolume(name, 4 * blockBytes, { "storageos.com/replicas": "1" })
  const healthy = await cluster.waitHealthy(name, 30_000)
  const [master, replica] = [healthy.master!, healthy.replicas[0]!.node]
  const node = () => cluster.effect.node(cluster.names.find((n) => n !== master))!
  await Effect.runPromise(node().configureNode(replica, { cordoned: true }))
  await cluster.killNode(master)
  const waiting = await waitForVolume(name, "the volume waits (its only replica is cordoned)", 30_000, (info) => info.health === "unavailable" && /cordoned/.test(info.reason))
  assert.is(waiting.master, master, "the cordoned replica was not promoted")
  const refused = await cluster.updateVolume(name, { setLabels: { "storageos.com/replicas": "0" } }).then(() => undefined, (e: { reason?: string; message: string }) => e)
  assert.is(refused?.reason, "no-master", JSON.stringify(refused))
  assert.match(refused?.message ?? "", /is not serving/)
  assert.is((await cluster.inspectVolume(name)).replicas.length, 1, "the replica was kept")
  await Effect.runPromise(node().configureNode(replica, { cordoned: false }))
  const promoted = await waitForVolume(name, "promotion once uncordoned", 30_000, (info) => info.master === replica)
  assert.ok(promoted.epoch > healthy.epoch)
  await cluster.reviveNode(master)
})

test.run()
