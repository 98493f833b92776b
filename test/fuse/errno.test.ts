/**
 * The pure parts of the FUSE adapter: backend errors → errno, path layout, IO clamping at the
 * end of a volume, /proc/mounts parsing, and refusing Bun/Deno before fuse-native loads.
 */
import { test } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { FuseBackendError, type FuseBackendErrorReason, memoryBackend } from "../../fuse/backend.ts"
import { Errno, replyForBackendError, replyForDefect, replyForOpTimeout } from "../../fuse/errno.ts"
import { bytesInside, directoryEntries, parsePath, resolveNode, statOf } from "../../fuse/layout.ts"
import { mountVolumes } from "../../fuse/mount.ts"
import { currentRuntime, runtimeRefusal } from "../../fuse/runtime.ts"
import { parseProcMounts } from "../../fuse/stale.ts"

const error = (reason: FuseBackendErrorReason) => new FuseBackendError({ reason, message: `test ${reason}` })

test("every backend error reason maps to the errno a block device file gives", () => {
  const expected: Record<FuseBackendErrorReason, [read: number, write: number, fsync: number]> = {
    unavailable: [-5, -5, -5],
    "out-of-range": [0, -28, -28],
    "not-found": [-2, -2, -2],
    "read-only": [-30, -30, -30],
    timeout: [-5, -5, -5],
    "no-space": [-28, -28, -28],
    io: [-5, -5, -5],
  }
  for (const [reason, [read, write, fsync]] of Object.entries(expected) as Array<[FuseBackendErrorReason, [number, number, number]]>) {
    assert.is(replyForBackendError("read", error(reason)), read, `read ${reason}`)
    assert.is(replyForBackendError("write", error(reason)), write, `write ${reason}`)
    assert.is(replyForBackendError("fsync", error(reason)), fsync, `fsync ${reason}`)
  }
  assert.is(replyForOpTimeout, Errno.EIO)
  assert.is(replyForDefect, Errno.EIO)
})

test("paths: root, namespace directories, volume files, nothing deeper", () => {
  const volumes = [{ namespace: "prod", name: "db", sizeBytes: 8192 }, { namespace: "dev", name: "b", sizeBytes: 4096 }, { namespace: "dev", name: "a", sizeBytes: 512 }]
  assert.equal(parsePath("/"), { kind: "root" })
  assert.equal(parsePath("/prod/db"), { kind: "volume", namespace: "prod", name: "db" })
  assert.equal(parsePath("/prod/db/x"), { kind: "none" })
  assert.equal(directoryEntries(volumes, parsePath("/")), ["dev", "prod"])
  assert.equal(directoryEntries(volumes, parsePath("/dev")), ["a", "b"])
  assert.is(directoryEntries(volumes, parsePath("/nope")), undefined)
  assert.is(resolveNode(volumes, parsePath("/dev/c")).kind, "missing")
  const node = resolveNode(volumes, parsePath("/prod/db"))
  if (node.kind === "missing") throw new Error("volume not resolved")
  const stat = statOf(node, { uid: 1, gid: 2, timeMs: 0 })
  assert.is(stat.size, 8192)
  assert.is(stat.mode & 0o170000, 0o100000, "a volume is a regular file")
})

test("IO at the end of a volume: short, then nothing", () => {
  assert.is(bytesInside(0, 4096, 8192), 4096)
  assert.is(bytesInside(6144, 4096, 8192), 2048, "straddling the end is short")
  assert.is(bytesInside(8192, 4096, 8192), 0, "at the end: EOF / ENOSPC")
  assert.is(bytesInside(9000, 1, 8192), 0)
})

test("the memory backend refuses IO outside a volume with out-of-range, and honours setUnavailable", async () => {
  const backend = memoryBackend([{ namespace: "n", name: "v", sizeBytes: 4096 }])
  const outside = await Effect.runPromise(Effect.result(backend.write("n", "v", 4000, new Uint8Array(200))))
  assert.is(outside._tag === "Failure" && outside.failure.reason, "out-of-range")
  backend.setUnavailable("n", "v", true)
  const down = await Effect.runPromise(Effect.result(backend.read("n", "v", 0, 1)))
  assert.is(down._tag === "Failure" && down.failure.reason, "unavailable")
  const missing = await Effect.runPromise(Effect.result(backend.flush("n", "w")))
  assert.is(missing._tag === "Failure" && missing.failure.reason, "not-found")
})

test("/proc/mounts parsing decodes escaped spaces", () => {
  const entries = parseProcMounts("replivol /tmp/a\\040b fuse.replivol rw,nosuid 0 0\n/dev/vda / ext4 rw 0 0\n")
  assert.equal(entries[0], { source: "replivol", mountPoint: "/tmp/a b", fsType: "fuse.replivol" })
  assert.is(entries.length, 2)
})

test("Bun and Deno are refused with a typed error before fuse-native is loaded", async () => {
  assert.is(currentRuntime({ Bun: {} }), "bun")
  assert.is(currentRuntime({ Deno: {} }), "deno")
  assert.is(currentRuntime({}), "node")
  assert.is(runtimeRefusal("node"), undefined)
  const refusal = runtimeRefusal("deno")
  assert.is(refusal?.reason, "unsupported-runtime")
  assert.match(refusal?.message ?? "", "run the FUSE front-end with Node")
  const globals = globalThis as { Bun?: unknown }
  const hadBun = "Bun" in globals
  if (!hadBun) globals.Bun = {}
  try {
    const mounted = await Effect.runPromise(Effect.result(Effect.scoped(mountVolumes({ mountDir: "/tmp/replivol-never-mounted", backend: memoryBackend([]) }))))
    assert.is(mounted._tag === "Failure" && mounted.failure.reason, "unsupported-runtime")
  } finally {
    if (!hadBun) delete globals.Bun
  }
})

test("bad options are refused: kernel_cache, an opTimeoutMs out of range", async () => {
  for (const options of [{ fuseOptions: ["kernel_cache"] }, { opTimeoutMs: 0 }, { fuseOptions: ["a,b"] }]) {
    const mounted = await Effect.runPromise(Effect.result(Effect.scoped(mountVolumes({ mountDir: "/tmp/replivol-never-mounted", backend: memoryBackend([]), ...options }))))
    assert.is(mounted._tag === "Failure" && mounted.failure.reason, "invalid-option", JSON.stringify(options))
  }
})

test.run()
