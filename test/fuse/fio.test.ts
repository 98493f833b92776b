/**
 * fio random writes with crc32c verification through the mount: 4 KiB and 64 KiB blocks,
 * O_DIRECT and buffered, 64 MiB each, zero errors and zero verify failures.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { memoryBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise, type MountHandlePromise } from "../../fuse/mount.ts"
import { cleanupMount, fuseUnavailableReason, makeTempDir, removeDir, sh } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse fio tests skipped: ${skipReason}`)
const Fio = suite("fio verify through the mount")
const it = skipReason === undefined ? Fio : Fio.skip
const context = { dir: "", handle: undefined as MountHandlePromise | undefined }

Fio.before(async () => {
  if (skipReason !== undefined) return
  context.dir = await makeTempDir("replivol-fuse-fio-")
  const backend = memoryBackend([{ namespace: "fio", name: "vol", sizeBytes: 64 * 1024 * 1024 }])
  context.handle = await mountVolumesPromise({ mountDir: context.dir, backend })
})

Fio.after(async () => {
  if (skipReason !== undefined) return
  try {
    await context.handle?.unmount()
  } finally {
    await cleanupMount(context.dir)
    await removeDir(context.dir)
  }
})

for (const bs of ["4k", "64k"]) {
  for (const direct of [1, 0]) {
    it(`fio randwrite bs=${bs} direct=${direct} size=64M --verify=crc32c: no errors`, async () => {
      const result = await sh(
        `fio --name=verify --filename=${context.dir}/fio/vol --rw=randwrite --bs=${bs} --size=64M --direct=${direct} ` +
          `--ioengine=psync --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=json`,
        300_000,
      )
      assert.is(result.code, 0, `fio failed: ${result.stderr}`)
      const job = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"))).jobs[0]
      assert.is(job.error, 0)
      assert.is(job.write.io_bytes, 64 * 1024 * 1024, "every block was written")
      assert.is(job.read.io_bytes, 64 * 1024 * 1024, "every block was read back and verified")
      assert.not.match(result.stderr, "verify", "no verify complaints")
    })
  }
}

Fio.run()
