/**
 * A real filesystem on a volume: losetup over the FUSE file, mkfs.ext4, mount, write files,
 * umount, `e2fsck -fn` clean, files intact after a remount. Loop device and mounts are always
 * released (finally and after hook).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { memoryBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise, type MountHandlePromise } from "../../fuse/mount.ts"
import { cleanupMount, fuseUnavailableReason, isMounted, makeTempDir, removeDir, sh } from "./support.ts"

const skipReason = (await fuseUnavailableReason()) ?? ((await sh("losetup -f")).code !== 0 ? "no free loop device (losetup -f)" : undefined)
if (skipReason !== undefined) console.log(`fuse ext4 tests skipped: ${skipReason}`)
const Ext4 = suite("ext4 on a loop device on a volume file")
const it = skipReason === undefined ? Ext4 : Ext4.skip
const context = { dir: "", fsDir: "", loop: "", handle: undefined as MountHandlePromise | undefined }

const release = async (): Promise<void> => {
  if (context.fsDir !== "" && (await isMounted(context.fsDir))) await sh(`umount ${context.fsDir} || umount -l ${context.fsDir}`)
  if (context.loop !== "") {
    await sh(`losetup -d ${context.loop}`)
    context.loop = ""
  }
}

Ext4.before(async () => {
  if (skipReason !== undefined) return
  context.dir = await makeTempDir("replivol-fuse-ext4-")
  context.fsDir = await makeTempDir("replivol-fuse-ext4fs-")
  const backend = memoryBackend([{ namespace: "fs", name: "disk", sizeBytes: 128 * 1024 * 1024 }])
  context.handle = await mountVolumesPromise({ mountDir: context.dir, backend })
})

Ext4.after(async () => {
  if (skipReason !== undefined) return
  try {
    await release()
    await context.handle?.unmount()
  } finally {
    await cleanupMount(context.dir)
    await removeDir(context.dir)
    await removeDir(context.fsDir)
  }
})

it("mkfs.ext4 on a loop device over the volume, files written, e2fsck -fn clean", async () => {
  try {
    const loop = await sh(`losetup -f --show ${context.dir}/fs/disk`)
    assert.is(loop.code, 0, loop.stderr)
    context.loop = loop.stdout.trim()
    const mkfs = await sh(`mkfs.ext4 -q -F ${context.loop}`)
    assert.is(mkfs.code, 0, mkfs.stderr)
    assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    const write = await sh(
      `for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=${context.fsDir}/f$i bs=1M count=4 2>/dev/null || exit 1; done; ` +
        `mkdir ${context.fsDir}/d && echo hello > ${context.fsDir}/d/note && sync && sha256sum ${context.fsDir}/f* ${context.fsDir}/d/note`,
    )
    assert.is(write.code, 0, write.stderr)
    assert.is((await sh(`umount ${context.fsDir}`)).code, 0)
    const fsck = await sh(`e2fsck -fn ${context.loop} 2>&1`)
    assert.is(fsck.code, 0, `e2fsck found problems:\n${fsck.stdout}`)
    assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    const again = await sh(`sha256sum ${context.fsDir}/f* ${context.fsDir}/d/note`)
    assert.is(again.stdout, write.stdout, "files are intact after umount and remount")
  } finally {
    await release()
  }
  assert.is((await sh(`losetup -j ${context.dir}/fs/disk`)).stdout.trim(), "", "the loop device is detached")
})

Ext4.run()
