/**
 * Mount lifecycle: closing the scope unmounts (nothing left in /proc/mounts), and a mount left
 * by a SIGKILLed process (ENOTCONN) is cleared by the next mount at the same place.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { memoryBackend } from "../../fuse/backend.ts"
import { mountVolumes, mountVolumesPromise } from "../../fuse/mount.ts"
import { cleanupMount, fuseUnavailableReason, isMounted, makeTempDir, removeDir, sh } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse lifecycle tests skipped: ${skipReason}`)
const Lifecycle = suite("fuse mount lifecycle")
const it = skipReason === undefined ? Lifecycle : Lifecycle.skip
const dirs: Array<string> = []
const children: Array<number> = []

Lifecycle.after(async () => {
  for (const pid of children) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) {
    await cleanupMount(dir)
    await removeDir(dir)
  }
})

const volume = { namespace: "ns", name: "v", sizeBytes: 65536 }

it("closing the scope unmounts: nothing is left in /proc/mounts", async () => {
  const dir = await makeTempDir("replivol-fuse-scope-")
  dirs.push(dir)
  const seen = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        yield* mountVolumes({ mountDir: dir, backend: memoryBackend([volume]) })
        return yield* Effect.promise(() => sh(`ls ${dir}/ns`))
      }),
    ),
  )
  assert.is(seen.stdout.trim(), "v", "mounted while the scope was open")
  assert.is(await isMounted(dir), false)
  assert.is((await sh(`ls -A ${dir}`)).stdout.trim(), "", "the mount point is an empty directory again")
})

/** Starts the fixture that mounts at `dir`; resolves with its pid once it printed "mounted". */
const startMountChild = (dir: string, mode = ""): Promise<{ pid: number; exited: Promise<number | null> }> =>
  new Promise((resolve, reject) => {
    const fixture = fileURLToPath(new URL("./fixtures/mount-child.ts", import.meta.url))
    const child = spawn(process.execPath, ["--import", "tsx", fixture, dir, mode], { stdio: ["ignore", "pipe", "inherit"] })
    const exited = new Promise<number | null>((resolveExit) => child.on("exit", (code, signal) => resolveExit(code ?? (signal === null ? null : -1))))
    if (child.pid !== undefined) children.push(child.pid)
    const timer = setTimeout(() => reject(new Error("mount child did not mount within 20 s")), 20_000)
    child.stdout.on("data", (chunk: Buffer) => {
      if (!chunk.toString().includes("mounted") || child.pid === undefined) return
      clearTimeout(timer)
      resolve({ pid: child.pid, exited })
    })
    child.on("exit", (code) => reject(new Error(`mount child exited with ${code} before mounting`)))
  })

it("a mount left by a SIGKILLed process is cleared by the next mount", async () => {
  const dir = await makeTempDir("replivol-fuse-crash-")
  dirs.push(dir)
  const { pid } = await startMountChild(dir)
  process.kill(pid, "SIGKILL")
  await new Promise((resolve) => setTimeout(resolve, 300))
  const stale = await sh(`stat ${dir}/crash 2>&1`, 10_000)
  assert.match(stale.stdout, "Transport endpoint is not connected", "the crash left a stale mount")
  assert.ok(await isMounted(dir))
  const handle = await mountVolumesPromise({ mountDir: dir, backend: memoryBackend([volume]) })
  try {
    assert.is((await sh(`ls ${dir}`)).stdout.trim(), "ns", "the new mount serves its own volumes")
    assert.is((await sh(`grep -c ' ${dir} ' /proc/mounts`)).stdout.trim(), "1", "exactly one mount, the stale one is gone")
  } finally {
    await handle.unmount()
  }
  assert.is(await isMounted(dir), false)
})

it("installUnmountOnSignals: SIGTERM unmounts, then the process ends by the signal", async () => {
  const dir = await makeTempDir("replivol-fuse-signal-")
  dirs.push(dir)
  const { pid, exited } = await startMountChild(dir, "signals")
  assert.ok(await isMounted(dir))
  process.kill(pid, "SIGTERM")
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 10_000))])
  assert.is(code, -1, "the child ended by SIGTERM, re-raised after unmounting")
  assert.is(await isMounted(dir), false, "nothing left in /proc/mounts")
})

Lifecycle.run()
