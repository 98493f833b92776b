/**
 * `volume resize` on a live volume (a local cluster of 3 nodes, file stores, real TCP): a writer
 * keeps writing through a handle while the volume grows, and none of its writes fails; the handle
 * then writes past the old end; a replica away during the resize gets the new size when it
 * returns; a resize asked while the master is down is completed by the promoted master; the
 * copies end byte-identical at the new size. Shrinks and malformed sizes are refused, changing nothing.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLocalCluster, type LocalClusterHandle } from "../../lib/cli/localCluster.ts"
import type { VolumeInfo } from "../../lib/cluster/clusterNode.ts"

const test = suite("volume resize on a live volume")
const MiB = 1024 * 1024
const blockBytes = 64 * 1024
const dir = mkdtempSync(join(tmpdir(), "replivol-resize-"))
let cluster: LocalClusterHandle

test.before(async () => {
  cluster = await createLocalCluster({ nodes: 3, hostBase: "127.0.47.", port: 27113, dataDir: dir, node: { leaseTtlMs: 1500 }, ...(process.env.DEBUG_RESIZE ? { onEvent: (e) => e.volume === process.env.DEBUG_RESIZE && console.log(e.atMs % 100000, e.node, e.kind, e.message) } : {}) })
})
test.after(async () => {
  await cluster?.close()
  rmSync(dir, { recursive: true, force: true })
})

const pattern = (block: number, round: number) => new Uint8Array(blockBytes).fill((block * 7 + round * 13 + 1) & 0xff)
const waitFor = async (name: string, what: string, timeoutMs: number, check: (info: VolumeInfo) => boolean): Promise<VolumeInfo> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const info = await cluster.inspectVolume(name)
    if (check(info)) return info
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms: ${JSON.stringify(info)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
const copyPath = (node: string, name: string) => join(dir, node, "copies", `${name}.img`)
const digest = (node: string, name: string) => createHash("sha256").update(readFileSync(copyPath(node, name))).digest("hex")
/** Every copy of the volume: the new size on disk, and the same bytes. */
const assertCopies = async (name: string, sizeBytes: number) => {
  const info = await waitFor(name, "healthy with every replica in sync", 60_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  const nodes = [info.master!, ...info.replicas.map((r) => r.node)]
  for (const node of nodes) assert.is(statSync(copyPath(node, name)).size, sizeBytes, `${node}'s copy is ${sizeBytes} bytes`)
  const sums = nodes.map((node) => digest(node, name))
  assert.is(new Set(sums).size, 1, `copies differ: ${nodes.map((n, i) => `${n}=${sums[i]}`).join(" ")}`)
}

test("hard mode: grows while a writer writes through a handle, none of its writes fails; the handle then writes past the old end", async () => {
  const name = "rs/live"
  await cluster.createVolume(name, 16 * MiB, { "storageos.com/replicas": "2", "storageos.com/failure.mode": "hard" })
  await cluster.waitHealthy(name, 30_000)
  const handle = await cluster.openVolume(name)
  const errors: string[] = []
  let round = 0
  let stop = false
  const blocks = (16 * MiB) / blockBytes
  const writer = (async () => {
    while (!stop) {
      for (let block = 0; block < blocks && !stop; block += 8) await handle.write(block * blockBytes, pattern(block, round)).catch((error: Error) => void errors.push(error.message))
      round++
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 200))
  const beyond = await handle.write(16 * MiB, pattern(0, 0)).then(() => undefined, (e: { _tag?: string }) => e)
  assert.is(beyond?._tag, "OutOfRange", "past the end before the resize")
  const grown = await cluster.resizeVolume(name, 48 * MiB)
  assert.is(grown.sizeBytes, 48 * MiB)
  await handle.write(48 * MiB - blockBytes, pattern(1, 1))
  assert.equal([...(await handle.read(48 * MiB - blockBytes, 4))], [...pattern(1, 1).subarray(0, 4)])
  assert.is(handle.sizeBytes, 48 * MiB, "the handle learned the new size")
  stop = true
  await writer
  await handle.flush()
  assert.equal(errors, [], "no write failed while the volume grew")
  assert.ok(round >= 1, "the writer made progress")
  await handle.close()
  await assertCopies(name, 48 * MiB)
})

test("a replica away during the resize gets the new size when it returns, and the copies converge", async () => {
  const name = "rs/away"
  await cluster.createVolume(name, 8 * MiB, { "storageos.com/replicas": "2", "storageos.com/failure.mode": "soft" })
  const healthy = await cluster.waitHealthy(name, 30_000)
  const away = healthy.replicas[0]!.node
  const handle = await cluster.openVolume(name, { via: healthy.master! })
  await cluster.killNode(away)
  await waitFor(name, `the replica on ${away} failed`, 30_000, (v) => v.replicas.some((r) => r.node === away && r.state === "failed"))
  const grown = await cluster.resizeVolume(name, 24 * MiB)
  assert.is(grown.sizeBytes, 24 * MiB)
  assert.is(statSync(copyPath(away, name)).size, 8 * MiB, "the away copy still has its old size")
  await handle.write(24 * MiB - blockBytes, pattern(2, 2))
  await handle.write(0, pattern(3, 3))
  await cluster.reviveNode(away)
  await handle.flush()
  await handle.close()
  await assertCopies(name, 24 * MiB)
})

test("a resize asked while the master is down is completed by the promoted master", async () => {
  const name = "rs/failover"
  await cluster.createVolume(name, 8 * MiB, { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft" })
  const healthy = await cluster.waitHealthy(name, 30_000)
  const handle = await cluster.openVolume(name, { via: healthy.replicas[0]!.node })
  await handle.write(0, pattern(4, 4))
  await cluster.killNode(healthy.master!)
  const asked = await cluster.resizeVolume(name, 16 * MiB)
  const grown = asked.sizeBytes === 16 * MiB ? asked : await waitFor(name, "the resize completed", 30_000, (v) => v.sizeBytes === 16 * MiB)
  assert.ok(grown.master !== healthy.master, `promoted: ${grown.master}`)
  await handle.write(16 * MiB - blockBytes, pattern(5, 5))
  assert.equal([...(await handle.read(0, 4))], [...pattern(4, 4).subarray(0, 4)], "the write before the failover is there")
  await cluster.reviveNode(healthy.master!)
  await handle.flush()
  await handle.close()
  await assertCopies(name, 16 * MiB)
})

test("from 1 MiB to past 4 TiB online (the dirty bitmaps coarsen to 128 KiB regions): no reopen, no full sync, the replica in sync and sparse", async () => {
  const name = "rs/far"
  const TiB = 1024 * 1024 * MiB
  await cluster.createVolume(name, 1 * MiB, { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft" })
  await cluster.waitHealthy(name, 30_000)
  const handle = await cluster.openVolume(name)
  await handle.write(0, pattern(6, 6))
  const grown = await cluster.resizeVolume(name, 4 * TiB + 1 * MiB, 30_000)
  assert.is(grown.sizeBytes, 4 * TiB + 1 * MiB)
  await handle.write(4 * TiB, pattern(7, 7))
  assert.equal([...(await handle.read(0, 4))], [...pattern(6, 6).subarray(0, 4)])
  assert.equal([...(await handle.read(4 * TiB, 4))], [...pattern(7, 7).subarray(0, 4)])
  await handle.flush()
  await handle.close()
  const info = await waitFor(name, "healthy", 30_000, (v) => v.health === "healthy")
  assert.is(info.epoch, grown.epoch, "the same master session")
  for (const node of [info.master!, info.replicas[0]!.node]) {
    const stat = statSync(copyPath(node, name))
    assert.is(stat.size, 4 * TiB + 1 * MiB)
    assert.ok(stat.blocks * 512 < 64 * MiB, `${node}'s copy stays sparse (${stat.blocks * 512} bytes allocated)`)
  }
})

test("shrink, a size of no whole sector, one above 64 TiB and an unknown volume are refused with a reason; nothing changes", async () => {
  const name = "rs/live"
  const before = await cluster.inspectVolume(name)
  const refusal = (size: number, volume = name) => cluster.resizeVolume(volume, size).then(() => undefined, (e: { _tag?: string; reason?: string; message: string }) => e)
  const shrink = await refusal(16 * MiB)
  assert.is(shrink?.reason, "shrink")
  assert.match(shrink?.message ?? "", /only grows \(allowed: 48 MiB/)
  assert.is((await refusal(48 * MiB + 1))?.reason, "bad-size")
  assert.is((await refusal(2 ** 47))?.reason, "bad-size")
  assert.is((await refusal(64 * MiB, "rs/nope"))?.reason, "not-found")
  const after = await cluster.inspectVolume(name)
  assert.is(after.sizeBytes, before.sizeBytes)
  assert.is(after.resizingToBytes, undefined)
  assert.equal(await cluster.resizeVolume(name, 48 * MiB).then((v) => v.sizeBytes), 48 * MiB, "the same size: nothing to do")
})

test.run()
