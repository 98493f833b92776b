/**
 * `replivol volume resize` as a user runs it, on a real replicated volume (`replivol cluster up`,
 * 3 nodes, replicas=2): an ext4 on a loop device over the volume's FUSE file, fio with crc32c
 * verify writing into it while the volume grows from 64 MiB to 128 MiB; then `stat` shows the
 * new size, `losetup -c` and `resize2fs` grow the ext4 (online; unmounted where the container
 * refuses the online-resize ioctl, said in the output), a file that only fits the grown
 * file system is written, `e2fsck -fn` is clean, `volume verify` finds nothing, and the three
 * copies on disk are byte-identical at the new size. Refusals (shrink, no whole sector, too big)
 * change nothing. The loop device, the ext4 mount and the cluster's mount are always released.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { stat } from "node:fs/promises"
import { fio, loudHook, sha256Of, sleep, startFuseCluster, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason, makeTempDir, releaseLoopFs, removeDir, sh } from "./support.ts"

const tools = ["fio", "resize2fs", "e2fsck", "losetup", "blockdev"]
const missing = async () => {
  for (const tool of tools) if ((await sh(`command -v ${tool}`)).code !== 0) return `${tool} is not installed`
  return (await sh("losetup -f")).code !== 0 ? "no free loop device (losetup -f)" : undefined
}
const skipReason = (await fuseUnavailableReason()) ?? (await missing())
if (skipReason !== undefined) console.log(`fuse cluster resize tests skipped: ${skipReason}`)
const Resize = suite("volume resize under fio, then resize2fs of the ext4 on it")
const it = skipReason === undefined ? Resize : Resize.skip
const volume = "rs/disk"
const MiB = 1024 * 1024
const context = { cluster: undefined as FuseCluster | undefined, fsDir: "", loop: "" }

const release = () => releaseLoopFs(context)

Resize.before(loudHook("before", async () => {
  if (skipReason !== undefined) return
  context.fsDir = await makeTempDir("replivol-fuse-cluster-resize-")
  context.cluster = await startFuseCluster({ nodes: 3, hostBase: "127.0.23.", port: 28933, apiPort: 28935 })
  await context.cluster.createVolume(volume, "64MiB", { "storageos.com/replicas": "2" })
}))

Resize.after(loudHook("after", async () => {
  try {
    await release()
    if (context.cluster !== undefined) await context.cluster.stop()
  } finally {
    await context.cluster?.remove()
    if (context.fsDir !== "") await removeDir(context.fsDir)
  }
}))

const bytesOf = async (command: string) => Number((await sh(command)).stdout.trim())

it("shrink, a size of no whole sector and one above 64 TiB are refused with what is allowed; nothing changes", async () => {
  const cluster = context.cluster!
  const shrink = await cluster.cli("volume", "resize", volume, "--size", "32MiB")
  assert.is(shrink.code, 1, shrink.stderr)
  assert.match(shrink.stderr, /cannot shrink .*a volume only grows \(allowed: 64 MiB \(67108864 bytes\) to 64 TiB/)
  const odd = await cluster.cli("volume", "resize", volume, "--size", "100000000")
  assert.is(odd.code, 1, odd.stderr)
  assert.match(odd.stderr, /whole number of 512-byte sectors/)
  const huge = await cluster.cli("volume", "resize", volume, "--size", "65TiB")
  assert.is(huge.code, 1, huge.stderr)
  assert.match(huge.stderr, /more than the largest volume/)
  const malformed = await cluster.cli("volume", "resize", volume, "--size", "lots")
  assert.is(malformed.code, 2, malformed.stderr)
  const view = await cluster.inspect(volume)
  assert.is(view.sizeBytes, 64 * MiB)
  assert.is((view as { resizingToBytes?: number }).resizingToBytes, undefined, "no resize was recorded")
})

it("grown under fio verify; stat shows it; losetup -c and resize2fs grow the mounted ext4; e2fsck, volume verify clean; copies identical", async () => {
  const cluster = context.cluster!
  const file = `${cluster.mount}/${volume}`
  try {
    const loop = await sh(`losetup -f --show ${file}`)
    assert.is(loop.code, 0, loop.stderr)
    context.loop = loop.stdout.trim()
    assert.is((await sh(`mkfs.ext4 -q -F ${context.loop}`)).code, 0)
    assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    const fsBefore = await bytesOf(`df -B1 --output=size ${context.fsDir} | tail -1`)
    // fio writes and verifies a file in the ext4 (through the loop device and the FUSE file) while the volume grows.
    const fioStartedMs = performance.now()
    let fioEndedMs = -1
    const writing = fio(`--name=resize --filename=${context.fsDir}/fio.data --size=24M --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=4 --verify=crc32c --do_verify=1 --verify_fatal=1 --end_fsync=1`).finally(() => void (fioEndedMs = performance.now()))
    await sleep(200)
    const resized = await cluster.cli("volume", "resize", volume, "--size", "128MiB")
    const returnedMs = performance.now()
    assert.is(resized.code, 0, resized.stderr)
    assert.match(resized.stdout, /resized rs\/disk to 128 MiB \(134217728 bytes\)/)
    assert.is(fioEndedMs, -1, "fio was still writing and verifying when the resize was done")
    console.log(`  the resize took ${Math.round(returnedMs - fioStartedMs - 200)} ms with fio writing`)
    let statMs = -1
    for (let i = 0; i < 100 && statMs < 0; i++) {
      if ((await stat(file)).size === 128 * MiB) statMs = performance.now() - returnedMs
      else await sleep(50)
    }
    assert.ok(statMs >= 0, `stat shows ${(await stat(file)).size} bytes 5 s after the command returned`)
    console.log(`  stat showed the new size ${Math.round(statMs)} ms after the command returned`)
    assert.is((await sh(`losetup -c ${context.loop}`)).code, 0)
    assert.is(await bytesOf(`blockdev --getsize64 ${context.loop}`), 128 * MiB, "the loop device sees the new size")
    // Online, as on a server; a container without CAP_SYS_RESOURCE refuses the online-resize ioctl
    // ("Permission denied"), and then the user grows it unmounted, after fio is done.
    const online = await sh(`resize2fs ${context.loop} 2>&1`)
    const onlineDenied = online.code !== 0 && /Permission denied/.test(online.stdout)
    assert.ok(online.code === 0 || onlineDenied, online.stdout)
    const run = await writing
    assert.is(run.code, 0, `fio failed: ${run.stderr}`)
    assert.is(run.jobs[0]?.error, 0)
    assert.is(run.jobs[0]?.readBytes, 24 * MiB, "every block fio wrote was read back and verified")
    console.log(`  fio: ${Math.round(run.jobs[0]!.writeIops)} write IOPS, ${((fioEndedMs - fioStartedMs) / 1000).toFixed(1)} s with verify`)
    if (onlineDenied) {
      console.log("  online resize2fs is not permitted here (no CAP_SYS_RESOURCE): grown unmounted instead")
      assert.is((await sh(`umount ${context.fsDir}`)).code, 0)
      const check = await sh(`e2fsck -fp ${context.loop} 2>&1`)
      assert.is(check.code, 0, `e2fsck before the offline resize found problems:\n${check.stdout}`)
      const offline = await sh(`resize2fs ${context.loop} 2>&1`)
      assert.is(offline.code, 0, offline.stdout)
      assert.is((await sh(`mount ${context.loop} ${context.fsDir}`)).code, 0)
    }
    const fsAfter = await bytesOf(`df -B1 --output=size ${context.fsDir} | tail -1`)
    assert.ok(fsAfter > fsBefore + 50 * MiB, `the ext4 grew: ${fsBefore} → ${fsAfter} bytes`)
    // 64 MiB more only fits the grown file system (the old one had 64 MiB in all, 24 of them fio's).
    const big = await sh(`dd if=/dev/urandom of=${context.fsDir}/big bs=1M count=64 conv=fsync 2>&1 && sha256sum ${context.fsDir}/big`)
    assert.is(big.code, 0, big.stdout)
    assert.is((await sh(`umount ${context.fsDir}`)).code, 0)
    const fsck = await sh(`e2fsck -fn ${context.loop} 2>&1`)
    assert.is(fsck.code, 0, `e2fsck found problems:\n${fsck.stdout}`)
  } finally {
    await release()
  }
  const verify = await cluster.cli("volume", "verify", volume)
  assert.is(verify.code, 0, `${verify.stdout}\n${verify.stderr}`)
  const view = await cluster.waitVolume(volume, "healthy", 30_000, (v) => v.health === "healthy" && v.replicas.every((r) => r.state === "in-sync"))
  assert.is(view.sizeBytes, 128 * MiB)
  const copies = [view.master, ...view.replicas.map((r) => r.node)].map((node) => cluster.copyPath(node, volume))
  for (const copy of copies) assert.is((await stat(copy)).size, 128 * MiB, `${copy} has the new size`)
  const sums = await sha256Of(copies)
  assert.ok(sums.every((sum) => sum.length === 64), `every copy could be read: ${sums.join(" ")}`)
  assert.is(new Set(sums).size, 1, `copies differ: ${sums.join(" ")}`)
})

Resize.run()
