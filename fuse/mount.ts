/**
 * Mounting a FuseBackend: every volume a file, `<mountDir>/<namespace>/<volume>`.
 *
 * `mountVolumes` is a scoped resource: it refuses Bun and Deno before fuse-native is loaded,
 * clears a stale mount left by a crashed process, mounts, and unmounts when the scope closes.
 * `mountVolumesPromise` is the same for plain async code.
 *
 * Mount options (see `defaultFuseOptions`). fuse-native does not expose `big_writes` or
 * `direct_io`; they are appended to its `-o` string. Measured on a 2-vCPU VM (Node 20, kernel
 * 6.18, test/bench/fuse-options.ts, median of 3 interleaved runs, MB/s):
 *
 *   backend  options               dd write 1M  dd write 4k  dd read 1M  fio randwrite 4k
 *   null     (none)                        28           58         690         44
 *   null     big_writes                   778           20         696         35
 *   null     direct_io                   1074           49        1234         59
 *   null     big_writes,direct_io        1236           57        1314         53
 *   null     direct_io,max_read=128k     1213           47        1020         48
 *   memory   (none)                        27           24         861         25
 *   memory   big_writes                   134           23         976         22
 *   memory   direct_io                    139           22         603         22
 *   memory   big_writes,direct_io         130           27         788         20
 *   memory   direct_io,max_read=128k      148           26        1157         20
 *
 * Runs vary up to 3x on this VM (CPU placement), so only the large effects count: without
 * big_writes or direct_io every buffered write reaches us as 4 KiB (28 MB/s); direct_io gives
 * 128 KiB requests for writes and reads alike; adding big_writes or max_read to direct_io is
 * within the noise, so they are left out. The memory backend is slow here for a reason outside
 * FUSE: on this VM, writing into its 256 MiB array re-faults every page on each pass (minor
 * faults = pages written) in the FUSE process, ~550 µs per 128 KiB copy.
 *
 * `direct_io` wins for every buffered workload and is required for correctness anyway: with it
 * the kernel keeps no page cache for the volume files, so after a failover (data changed
 * underneath) no reader sees stale pages; `kernel_cache` is never used for the same reason.
 * `atomic_o_trunc` makes `open(O_TRUNC)` reach us as a flag (ignored, as a block device does)
 * rather than as a truncate to 0, so `dd of=<volume>` works without `conv=notrunc`.
 */
import { Clock, Context, Effect, Exit, Scope } from "effect"
import type FuseNative from "fuse-native"
import { access } from "node:fs/promises"
import type { FuseBackend, FuseBackendError } from "./backend.ts"
import { makeOps, snapshotOf, type VolumeSnapshot } from "./handlers.ts"
import { FuseMountError } from "./mount-error.ts"
import { currentRuntime, runtimeRefusal } from "./runtime.ts"
import { clearStaleMount, lazyUnmount, mountAt } from "./stale.ts"

/** Default bound on one FUSE operation (a write waits for every in-sync replica). */
export const opTimeoutMsDefault = 30_000
/** How much later than `opTimeoutMs` fuse-native's own per-op timeout fires (a backstop only). */
export const opTimeoutBackstopMs = 5_000
/** How long the volume list is cached; new volumes appear within this (the kernel adds no entry cache for misses). */
export const listCacheMsDefault = 500
/** Largest allowed `opTimeoutMs` (one hour): a larger value is a typo, and fuse-native's timer is 32-bit. */
export const opTimeoutMsMax = 3_600_000
/** How long libfuse may take to answer the mount (its init call). */
export const mountTimeoutMs = 10_000

/** libfuse `-o` options appended to fuse-native's own; chosen by measurement (module comment). */
export const defaultFuseOptions: ReadonlyArray<string> = ["direct_io", "atomic_o_trunc"]

export interface MountOptions {
  readonly mountDir: string
  readonly backend: FuseBackend
  /** Every operation replies within this (EIO when it passes). Default `opTimeoutMsDefault`. */
  readonly opTimeoutMs?: number
  /** How long the backend's volume list is cached. Default `listCacheMsDefault`. */
  readonly listCacheMs?: number
  /** Raw libfuse options appended to the mount (default `defaultFuseOptions`); never `kernel_cache`. */
  readonly fuseOptions?: ReadonlyArray<string>
}

export interface MountHandle {
  readonly mountDir: string
  /** The `-o` string the mount was made with. */
  readonly optionsText: string
  /** Unmounts now (idempotent); the scope's finalizer then does nothing. */
  readonly unmount: Effect.Effect<void, FuseMountError>
}

type FuseClass = typeof FuseNative

const invalid = (message: string): FuseMountError => new FuseMountError({ reason: "invalid-option", message })

const checkOptions = (options: MountOptions): Effect.Effect<{ opTimeoutMs: number; listCacheMs: number; fuseOptions: ReadonlyArray<string> }, FuseMountError> => {
  const opTimeoutMs = options.opTimeoutMs ?? opTimeoutMsDefault
  const listCacheMs = options.listCacheMs ?? listCacheMsDefault
  const fuseOptions = options.fuseOptions ?? defaultFuseOptions
  if (!Number.isInteger(opTimeoutMs) || opTimeoutMs < 1 || opTimeoutMs > opTimeoutMsMax) {
    return Effect.fail(invalid(`opTimeoutMs must be an integer from 1 to ${opTimeoutMsMax}, got ${opTimeoutMs}`))
  }
  if (!Number.isInteger(listCacheMs) || listCacheMs < 0 || listCacheMs > opTimeoutMsMax) {
    return Effect.fail(invalid(`listCacheMs must be an integer from 0 to ${opTimeoutMsMax}, got ${listCacheMs}`))
  }
  const bad = fuseOptions.find((option) => option === "kernel_cache" || option.length === 0 || /[\s,]/.test(option))
  if (bad !== undefined) {
    return Effect.fail(invalid(`fuseOptions may not contain "${bad}": kernel_cache would serve stale data after a failover; options are single words without spaces or commas`))
  }
  return Effect.succeed({ opTimeoutMs, listCacheMs, fuseOptions })
}

/** Loads fuse-native, after refusing Bun/Deno and checking /dev/fuse. */
const loadFuse: Effect.Effect<FuseClass, FuseMountError> = Effect.gen(function* () {
  const refusal = runtimeRefusal(currentRuntime())
  if (refusal !== undefined) return yield* refusal
  yield* Effect.tryPromise({
    try: () => access("/dev/fuse"),
    catch: (cause) => new FuseMountError({ reason: "no-fuse", message: "/dev/fuse is missing or not accessible; load the fuse module or run with --device /dev/fuse", cause }),
  })
  const module = yield* Effect.tryPromise({
    try: () => import("fuse-native"),
    catch: (cause) => new FuseMountError({ reason: "no-fuse", message: `fuse-native could not be loaded (npm install fuse-native@2.2.6): ${String(cause)}`, cause }),
  })
  return module.default
})

/** A fuse-native subclass whose `-o` string ends with `extra` (options it has no flag for). */
const withExtraOptions = (Fuse: FuseClass, extra: ReadonlyArray<string>): FuseClass =>
  class extends Fuse {
    protected override _fuseOptions(): string {
      const base = super._fuseOptions()
      if (extra.length === 0) return base
      return base === "" ? `-o${extra.join(",")}` : `${base},${extra.join(",")}`
    }
  }

const nodeCall = (what: string, reason: "mount-failed" | "unmount-failed", call: (cb: (error: Error | null) => void) => void) =>
  Effect.callback<void, FuseMountError>((resume) => {
    call((error) => resume(error === null ? Effect.void : Effect.fail(new FuseMountError({ reason, message: `${what}: ${error.message}`, cause: error }))))
  })

/** Mounts `options.backend` at `options.mountDir`; unmounts when the scope closes. */
export const mountVolumes = (options: MountOptions): Effect.Effect<MountHandle, FuseMountError, Scope.Scope> =>
  Effect.gen(function* () {
    const { opTimeoutMs, listCacheMs, fuseOptions } = yield* checkOptions(options)
    const Fuse = yield* loadFuse
    const mountDir = options.mountDir
    yield* clearStaleMount(mountDir)
    const snapshot: Effect.Effect<VolumeSnapshot, FuseBackendError> = yield* Effect.cachedWithTTL(
      Effect.map(options.backend.list, snapshotOf),
      (exit) => (Exit.isSuccess(exit) ? listCacheMs : 0),
    )
    const ops = makeOps({
      backend: options.backend,
      snapshot,
      opTimeoutMs,
      owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, timeMs: yield* Clock.currentTimeMillis },
      context: (yield* Effect.context<never>()) as Context.Context<never>,
    })
    const MountFuse = withExtraOptions(Fuse, fuseOptions)
    const fuse = new MountFuse(mountDir, ops, {
      mkdir: true, force: false, fsname: "replivol", subtype: "replivol", timeout: opTimeoutMs + opTimeoutBackstopMs,
    })
    let mounted = false
    const unmount: Effect.Effect<void, FuseMountError> = Effect.suspend(() => {
      if (!mounted) return Effect.void
      mounted = false
      return nodeCall(`unmounting ${mountDir}`, "unmount-failed", (cb) => fuse.unmount(cb)).pipe(
        Effect.catch((error) => Effect.flatMap(mountAt(mountDir), (entry) => (entry === undefined ? Effect.void : Effect.fail(error)))),
        Effect.andThen(Effect.flatMap(mountAt(mountDir), (entry) => (entry === undefined ? Effect.void : lazyUnmount(mountDir)))),
      )
    })
    yield* Effect.acquireRelease(
      nodeCall(`mounting ${mountDir}`, "mount-failed", (cb) => fuse.mount(cb)).pipe(
        Effect.tap(() => Effect.sync(() => { mounted = true })),
        Effect.timeoutOrElse({
          duration: mountTimeoutMs,
          orElse: () => Effect.fail(new FuseMountError({ reason: "mount-failed", message: `libfuse did not finish mounting ${mountDir} within ${mountTimeoutMs} ms` })),
        }),
        // A mount that half happened (init never came) must not stay behind.
        Effect.onError(() => Effect.ignore(Effect.flatMap(mountAt(mountDir), (entry) => (entry === undefined ? Effect.void : lazyUnmount(mountDir))))),
      ),
      () => Effect.ignore(unmount),
    )
    const optionsText = (fuse as unknown as { _fuseOptions(): string })._fuseOptions()
    return { mountDir, optionsText, unmount }
  })

/** The Promise form of a mount: `unmount()` closes it. */
export interface MountHandlePromise {
  readonly mountDir: string
  readonly optionsText: string
  readonly unmount: () => Promise<void>
}

/** `mountVolumes` for plain async code; rejects with the FuseMountError itself. */
export const mountVolumesPromise = async (options: MountOptions): Promise<MountHandlePromise> => {
  const scope = Effect.runSync(Scope.make())
  const exit = await Effect.runPromiseExit(Scope.provide(scope)(mountVolumes(options)))
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, exit))
    return Effect.runPromise(Effect.failCause(exit.cause))
  }
  const handle = exit.value
  return {
    mountDir: handle.mountDir,
    optionsText: handle.optionsText,
    unmount: () => Effect.runPromise(handle.unmount.pipe(Effect.ensuring(Scope.close(scope, Exit.void)))),
  }
}

/**
 * Unmounts on SIGINT/SIGTERM, then re-raises the signal so the process ends as it would have.
 * For CLIs; returns a function that removes the handlers again.
 */
export const installUnmountOnSignals = (
  handle: { readonly unmount: Effect.Effect<void, FuseMountError> } | { readonly unmount: () => Promise<void> },
  signals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM"],
): (() => void) => {
  const unmount = (): Promise<void> => (typeof handle.unmount === "function" ? handle.unmount() : Effect.runPromise(handle.unmount))
  const uninstall = (): void => {
    for (const signal of signals) process.removeListener(signal, onSignal)
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    uninstall()
    unmount().then(
      () => process.kill(process.pid, signal),
      (error: unknown) => {
        console.error(`unmount on ${signal} failed:`, error)
        process.kill(process.pid, signal)
      },
    )
  }
  for (const signal of signals) process.on(signal, onSignal)
  return uninstall
}
