/**
 * Encryption at rest through the FUSE mount of `replivol cluster up` (3 nodes, no setup: the key
 * file is made in the data directory). dd writes a known pattern into the file of an encrypted
 * volume (replicas=2) and of a plain one, then fsyncs; every copy's backing file is searched:
 * the pattern is on none of the encrypted volume's copies and on all of the plain one's (the
 * search can fail). The mount reads the plaintext back, also after the master's node is killed.
 */
import * as assert from "uvu/assert"
import { readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { clusterSuite, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason, sh } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster encryption tests skipped: ${skipReason}`)
const { Suite: Encryption, it, drill: context } = clusterSuite("encryption at rest through the FUSE mount", { nodes: 3, hostBase: "127.0.48.", port: 28933, apiPort: 28935, leaseTtlMs: 1500 }, skipReason)
const needle = "REPLIVOL-FUSE-AT-REST-9f3b2a61"

it("dd's pattern is on no copy of the encrypted volume, on every copy of the plain one; the mount reads it back, also after a failover", async () => {
  const cluster = context.cluster!
  const key = await stat(join(cluster.data, "encryption.key"))
  assert.is(key.mode & 0o777, 0o600, "cluster up made the key file, readable by its owner only")
  assert.match(await readFile(join(cluster.data, "encryption.key"), "utf8"), /^[0-9a-f]{64}\n$/)
  const pattern = join(cluster.data, "..", "pattern.bin")
  await writeFile(pattern, Buffer.from(`${needle}|`.repeat(Math.ceil(300_000 / (needle.length + 1)))).subarray(0, 300_000))
  const volumes = { enc: "sec/enc", plain: "sec/plain" } as const
  await cluster.createVolume(volumes.enc, "16MiB", { "storageos.com/replicas": "2", "storageos.com/encryption": "true" })
  await cluster.createVolume(volumes.plain, "16MiB", { "storageos.com/replicas": "2" })
  for (const volume of Object.values(volumes)) {
    // 300 000 bytes at byte 12 345: neither end on a 4 KiB unit (the edges are read, merged, encrypted again).
    const dd = await sh(`dd if=${pattern} of=${cluster.mount}/${volume} bs=64k seek=12345 oflag=seek_bytes conv=notrunc,fsync status=none`)
    assert.is(dd.code, 0, dd.stderr)
  }
  const found = async (volume: string) => {
    const view = await cluster.inspect(volume)
    const nodes = [view.master, ...view.replicas.map((r) => r.node)]
    return Promise.all(nodes.map(async (node) => (await readFile(cluster.copyPath(node, volume))).includes(needle)))
  }
  assert.equal(await found(volumes.plain), [true, true, true], "the plain volume's master and both replicas hold the pattern")
  assert.equal(await found(volumes.enc), [false, false, false], "no copy of the encrypted volume holds it")
  const readBack = async () => sh(`dd if=${cluster.mount}/${volumes.enc} bs=64k skip=12345 count=300000 iflag=skip_bytes,count_bytes status=none | cmp - ${pattern}`)
  const before = await readBack()
  assert.is(before.code, 0, `the mount reads the plaintext: ${before.stdout}${before.stderr}`)
  const verify = await cluster.cli("volume", "verify", volumes.enc)
  assert.is(verify.code, 0, verify.stdout + verify.stderr)
  const master = (await cluster.inspect(volumes.enc)).master
  await cluster.killNode(master)
  await cluster.waitVolume(volumes.enc, "served by another node", 60_000, (v) => v.master !== master && v.usable)
  const after = await readBack()
  assert.is(after.code, 0, `after the failover the mount reads the plaintext: ${after.stdout}${after.stderr}`)
})

Encryption.run()
