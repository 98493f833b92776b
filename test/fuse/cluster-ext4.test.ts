/**
 * ext4 on a real replicated volume: losetup over the FUSE file of a replicas=2 volume (`replivol
 * cluster up`, 3 nodes), mkfs.ext4, mount, write files, umount, `e2fsck -fn` clean, files intact
 * after a remount; then the three copies on disk are byte-identical. The loop device, the ext4
 * mount and the cluster's FUSE mount are always released (finally and after hook).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { loudHook, sha256Of, startFuseCluster, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason, makeTempDir, releaseLoopFs, removeDir, sh } from "./support.ts"

const skipReason = (await fuseUnavailableReason()) ?? ((await sh("losetup -f")).code !== 0 ? "no free loop device (losetup -f)" : undefined)
if (skipReason !== undefined) console.log(`fuse cluster ext4 tests skipped: ${skipReason}`)
const Ext4 = suite("ext4 on a loop device over a replicated volume's file")
const it = skipReason === undefined ? Ext4 : Ext4.skip
const volume = "fs/disk"
const context = { cluster: undefined as FuseCluster | undefined, fsDir: "", loop: "" }

const release = () => releaseLoopFs(context)

Ext4.before(loudHook("before", async () => {
  if (skipReason !== undefined) return
  context.fsDir = await makeTempDir("replivol-fuse-cluster-ext4-")
  context.cluster = await startFuseCluster({ nodes: 3, hostBase: "127.0.8.", port: 28713, apiPort: 28715 })
  await context.cluster.createVolume(volume, "128MiB", { "storageos.com/replicas": "2" })
}))

Ext4.after(loudHook("after", async () => {
  try {
    await release()
    if (context.cluster !== undefined) await context.cluster.stop()
  } finally {
    await context.cluster?.remove()
    if (context.fsDir !== "") await removeDir(context.fsDir)
  }
}))

it("mkfs.ext4 on a loop device over the volume, files written, e2fsck -fn clean, copies identical", async () => {
  const cluster = context.cluster!
  const file = `${cluster.mount}/${volume}`
  try {
    const loop = await sh(`losetup -f --show ${file}`)
    assert.is(loop.code, 0, loop.stderr)
    context.loop = loop.stdout.trim()
    const mkfs = await sh(`mkfs.ext4 -q -F ${context.loop}`)
    assert.is(mkfs.code, 0, mkfs.stderr)
    assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    const write = await sh(
      `for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=${context.fsDir}/f$i bs=1M count=4 2>/dev/null || exit 1; done; ` +
        `mkdir ${context.fsDir}/d && echo hello > ${context.fsDir}/d/note && sync && cd ${context.fsDir} && sha256sum f* d/note`,
    )
    assert.is(write.code, 0, write.stderr)
    assert.is((await sh(`umount ${context.fsDir}`)).code, 0)
    const fsck = await sh(`e2fsck -fn ${context.loop} 2>&1`)
    assert.is(fsck.code, 0, `e2fsck found problems:\n${fsck.stdout}`)
    assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    const again = await sh(`cd ${context.fsDir} && sha256sum f* d/note`)
    assert.is(again.stdout, write.stdout, "files are intact after umount and remount")
  } finally {
    await release()
  }
  assert.is((await sh(`losetup -j ${file}`)).stdout.trim(), "", "the loop device is detached")
  const view = await cluster.waitVolume(volume, "healthy", 30_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  const nodes = [view.master, ...view.replicas.map((r) => r.node)]
  const sums = await sha256Of(nodes.map((node) => cluster.copyPath(node, volume)))
  assert.ok(sums.every((sum) => sum.length === 64), `every copy could be read: ${sums.join(" ")}`)
  assert.is(new Set(sums).size, 1, `copies differ: ${nodes.map((n, i) => `${n}=${sums[i]}`).join(" ")}`)
})

Ext4.run()
