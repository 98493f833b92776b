/**
 * A memory backend mounted with two namespaces, driven only from child processes (ls, dd,
 * truncate, sha256sum): what a user sees of sizes, data, ENOSPC at the end, EIO when a volume is
 * unavailable or stalled (bounded, never a hang), fsync reaching the backend, new volumes appearing.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { readFile, writeFile } from "node:fs/promises"
import { randomBytes } from "node:crypto"
import { memoryBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise, type MountHandlePromise } from "../../fuse/mount.ts"
import { cleanupMount, fuseUnavailableReason, makeTempDir, removeDir, sh } from "./support.ts"

const MiB = 1024 * 1024
const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse mount tests skipped: ${skipReason}`)

const opTimeoutMs = 1_000
const backend = memoryBackend([
  { namespace: "default", name: "small", sizeBytes: 1 * MiB },
  { namespace: "default", name: "data", sizeBytes: 16 * MiB },
  { namespace: "prod", name: "db", sizeBytes: 8 * MiB },
  { namespace: "prod", name: "stuck", sizeBytes: 1 * MiB },
])
const context = { dir: "", scratch: "", handle: undefined as MountHandlePromise | undefined }
const Mount = suite("fuse mount of a memory backend")
const it = skipReason === undefined ? Mount : Mount.skip

Mount.before(async () => {
  if (skipReason !== undefined) return
  context.dir = await makeTempDir("replivol-fuse-mount-")
  context.scratch = await makeTempDir("replivol-fuse-scratch-")
  context.handle = await mountVolumesPromise({ mountDir: context.dir, backend, opTimeoutMs, listCacheMs: 200 })
})

Mount.after(async () => {
  if (skipReason !== undefined) return
  try {
    await context.handle?.unmount()
  } finally {
    await cleanupMount(context.dir)
    await removeDir(context.dir)
    await removeDir(context.scratch)
  }
})

it("ls shows one directory per namespace and every volume with its size", async () => {
  const top = await sh(`ls ${context.dir}`)
  assert.equal(top.stdout.trim().split("\n"), ["default", "prod"])
  const sizes = await sh(`stat -c '%n %s %F' ${context.dir}/default/* ${context.dir}/prod/*`)
  assert.equal(sizes.stdout.trim().split("\n").map((line) => line.replace(`${context.dir}/`, "")), [
    "default/data 16777216 regular file",
    "default/small 1048576 regular file",
    "prod/db 8388608 regular file",
    "prod/stuck 1048576 regular file",
  ])
})

it("4 MiB of random data written at an unaligned offset reads back equal", async () => {
  const offset = 123_457
  const data = randomBytes(4 * MiB)
  const source = `${context.scratch}/random.bin`
  await writeFile(source, data)
  const written = await sh(`dd if=${source} of=${context.dir}/default/data bs=64k oflag=seek_bytes seek=${offset} conv=notrunc,fsync 2>&1`)
  assert.is(written.code, 0, written.stdout)
  const expected = createHash("sha256").update(await readFile(source)).digest("hex")
  const stored = createHash("sha256").update(backend.contents("default", "data").subarray(offset, offset + data.length)).digest("hex")
  assert.is(stored, expected, "the backend holds exactly the bytes dd wrote")
  const readBack = await sh(`dd if=${context.dir}/default/data bs=64k iflag=skip_bytes,count_bytes skip=${offset} count=${data.length} 2>/dev/null | sha256sum`)
  assert.is(readBack.stdout.split(" ")[0], expected, "reading through the mount gives them back")
})

it("a write past the end fails with ENOSPC; a read there returns nothing", async () => {
  const past = await sh(`dd if=/dev/zero of=${context.dir}/default/small bs=4k count=1 seek=256 2>&1`)
  assert.ok(past.code !== 0)
  assert.match(past.stdout, "No space left on device")
  const straddle = await sh(`dd if=/dev/zero of=${context.dir}/default/small bs=8k count=1 oflag=seek_bytes seek=${MiB - 4096} 2>&1`)
  assert.match(straddle.stdout, "No space left on device", "a write straddling the end writes what fits, then ENOSPC")
  const read = await sh(`dd if=${context.dir}/default/small bs=4k skip=256 2>/dev/null | wc -c`)
  assert.is(read.stdout.trim(), "0")
})

it("the file cannot be resized, but truncating to its own size and O_TRUNC are accepted", async () => {
  const shrink = await sh(`truncate -s 4096 ${context.dir}/default/small 2>&1`)
  assert.match(shrink.stdout, "Invalid argument")
  assert.is((await sh(`truncate -s ${MiB} ${context.dir}/default/small`)).code, 0)
  const oTrunc = await sh(`dd if=/dev/zero of=${context.dir}/default/small bs=4k count=1 2>&1`)
  assert.is(oTrunc.code, 0, `dd without conv=notrunc: ${oTrunc.stdout}`)
  assert.is((await sh(`stat -c %s ${context.dir}/default/small`)).stdout.trim(), String(MiB))
})

it("fsync reaches the backend's flush", async () => {
  const before = backend.flushCount("prod", "db")
  const synced = await sh(`dd if=/dev/urandom of=${context.dir}/prod/db bs=4k count=4 conv=notrunc,fsync 2>&1`)
  assert.is(synced.code, 0, synced.stdout)
  assert.ok(backend.flushCount("prod", "db") > before)
})

it("each write on a file opened with O_DSYNC or O_SYNC is flushed before it returns", async () => {
  for (const flag of ["dsync", "sync"]) {
    const before = backend.flushCount("prod", "db")
    const synced = await sh(`dd if=/dev/urandom of=${context.dir}/prod/db bs=4k count=8 oflag=${flag},direct conv=notrunc 2>&1`)
    assert.is(synced.code, 0, synced.stdout)
    assert.ok(backend.flushCount("prod", "db") - before >= 8, `oflag=${flag}: 8 writes gave ${backend.flushCount("prod", "db") - before} flushes`)
  }
})

it("an unavailable volume gives EIO within ~2 s, and works again when it comes back", async () => {
  backend.setUnavailable("prod", "db", true)
  try {
    const write = await sh(`dd if=/dev/zero of=${context.dir}/prod/db bs=4k count=1 conv=notrunc 2>&1`, 10_000)
    assert.match(write.stdout, "Input/output error")
    assert.ok(write.elapsedMs < 2_000, `took ${write.elapsedMs} ms`)
    const read = await sh(`dd if=${context.dir}/prod/db of=/dev/null bs=4k count=1 2>&1`, 10_000)
    assert.match(read.stdout, "Input/output error")
  } finally {
    backend.setUnavailable("prod", "db", false)
  }
  assert.is((await sh(`dd if=${context.dir}/prod/db of=/dev/null bs=4k count=1 2>&1`)).code, 0)
})

it("a backend that never answers gives EIO after opTimeoutMs, not a hang", async () => {
  backend.setStalled("prod", "stuck", true)
  try {
    const read = await sh(`dd if=${context.dir}/prod/stuck of=/dev/null bs=4k count=1 2>&1`, 20_000)
    assert.match(read.stdout, "Input/output error")
    assert.ok(read.elapsedMs >= opTimeoutMs * 0.9, `gave up after ${read.elapsedMs} ms, before opTimeoutMs`)
    assert.ok(read.elapsedMs < opTimeoutMs * 4, `took ${read.elapsedMs} ms (read + flush at close, each bounded)`)
  } finally {
    backend.setStalled("prod", "stuck", false)
  }
})

it("a missing volume is ENOENT, and a new volume appears within ~1 s", async () => {
  const missing = await sh(`cat ${context.dir}/prod/later 2>&1`)
  assert.match(missing.stdout, "No such file or directory")
  backend.addVolume({ namespace: "staging", name: "later", sizeBytes: 64 * 1024 })
  const startedMs = performance.now()
  let listed = ""
  while (performance.now() - startedMs < 3_000 && !listed.includes("later")) {
    listed = (await sh(`ls ${context.dir}/staging 2>&1`)).stdout
  }
  const elapsedMs = performance.now() - startedMs
  assert.match(listed, "later")
  assert.ok(elapsedMs < 1_000, `appeared after ${elapsedMs} ms`)
  assert.is((await sh(`stat -c %s ${context.dir}/staging/later`)).stdout.trim(), "65536")
})

Mount.run()
