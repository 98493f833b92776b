/**
 * The FUSE operation handlers: each one resolves the path against the (briefly cached) volume
 * list, calls the backend, and replies through fuse-native's callback.
 *
 * Two rules hold for every handler, because the kernel waits on each reply: the callback is
 * called exactly once — also when the Effect fails, dies, or throws before it starts (defects
 * reply EIO) — and never later than `opTimeoutMs` (an `Effect.timeout` inside the handler; the
 * mount sets fuse-native's own per-op timeout a little larger as a backstop). Errors become errno
 * only through fuse/errno.ts.
 */
import { constants as fsConstants } from "node:fs"
import { Context, Effect, Exit } from "effect"
import type { Ops, Stat, Statfs } from "fuse-native"
import type { FuseBackend, FuseBackendError, FuseVolume } from "./backend.ts"
import { Errno, type FuseOp, replyForBackendError, replyForDefect, replyForOpTimeout } from "./errno.ts"
import { bytesInside, directoryEntries, parsePath, resolveNode, statBlockBytes, statOf } from "./layout.ts"

/** The volume list and a by-path index of it, as one cached snapshot. */
export interface VolumeSnapshot {
  readonly volumes: ReadonlyArray<FuseVolume>
  readonly byPath: ReadonlyMap<string, FuseVolume>
}

export const snapshotOf = (volumes: ReadonlyArray<FuseVolume>): VolumeSnapshot => ({
  volumes,
  byPath: new Map(volumes.map((volume) => [`/${volume.namespace}/${volume.name}`, volume])),
})

export interface HandlerConfig {
  readonly backend: FuseBackend
  /** The current volume list (cached by the caller). */
  readonly snapshot: Effect.Effect<VolumeSnapshot, FuseBackendError>
  readonly opTimeoutMs: number
  /** Owner and times shown by stat. */
  readonly owner: { readonly uid: number; readonly gid: number; readonly timeMs: number }
  /** The services the handlers' Effects run with (from the Effect that mounted). */
  readonly context: Context.Context<never>
}

/** A failure that is already an errno reply (a path that is not a volume, a bad truncate). */
class Reply {
  constructor(readonly code: number) {}
}

type Outcome<A> = Effect.Effect<A, FuseBackendError | Reply>

/**
 * Runs `effect` for `op` and calls exactly one of `ok` / `fail`, exactly once, within `opTimeoutMs`.
 */
const makeRunner = (config: HandlerConfig) => {
  const runCallback = Effect.runCallbackWith(config.context)
  return <A>(op: FuseOp, effect: Outcome<A>, ok: (value: A) => void, fail: (code: number) => void): void => {
    let replied = false
    const once = (reply: () => void): void => {
      if (replied) return
      replied = true
      reply()
    }
    const bounded = effect.pipe(
      Effect.timeoutOrElse({ duration: config.opTimeoutMs, orElse: () => Effect.fail(new Reply(replyForOpTimeout)) }),
    )
    try {
      runCallback(bounded, {
        onExit: (exit) => {
          if (Exit.isSuccess(exit)) return once(() => ok(exit.value))
          const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
          const code = error instanceof Reply ? error.code : error !== undefined ? replyForBackendError(op, error) : replyForDefect
          once(() => fail(code))
        },
      })
    } catch {
      once(() => fail(replyForDefect))
    }
  }
}

/** The volume at a path, or an ENOENT / EISDIR reply. */
const volumeAt = (config: HandlerConfig, path: string): Outcome<FuseVolume> =>
  Effect.flatMap(config.snapshot, (snapshot) => {
    const volume = snapshot.byPath.get(path)
    if (volume !== undefined) return Effect.succeed(volume)
    const node = resolveNode(snapshot.volumes, parsePath(path))
    return Effect.fail(new Reply(node.kind === "directory" ? Errno.EISDIR : Errno.ENOENT))
  })

/** getattr, readdir, statfs: what the mount looks like. */
const metadataOps = (config: HandlerConfig, run: ReturnType<typeof makeRunner>): Ops => ({
  getattr: (path, cb) =>
    run("getattr", Effect.map(config.snapshot, (snapshot) => resolveNode(snapshot.volumes, parsePath(path))), (node) =>
      node.kind === "missing" ? cb(Errno.ENOENT) : cb(0, statOf(node, config.owner) as Stat), cb),
  readdir: (path, cb) =>
    run("readdir", Effect.map(config.snapshot, (snapshot) => ({ snapshot, entries: directoryEntries(snapshot.volumes, parsePath(path)) })), ({ snapshot, entries }) => {
      if (entries !== undefined) return cb(0, entries)
      cb(snapshot.byPath.has(path) ? Errno.ENOTDIR : Errno.ENOENT)
    }, cb),
  statfs: (_path, cb) =>
    run("statfs", config.snapshot, (snapshot) => {
      const totalBytes = snapshot.volumes.reduce((sum, volume) => sum + volume.sizeBytes, 0)
      const statfs: Statfs = {
        bsize: statBlockBytes, frsize: statBlockBytes, blocks: Math.ceil(totalBytes / statBlockBytes), bfree: 0, bavail: 0,
        files: snapshot.volumes.length, ffree: 0, favail: 0, fsid: 0x72766f6c, flag: 0, namemax: 255,
      }
      cb(0, statfs)
    }, cb),
})

/**
 * File handles opened with O_SYNC or O_DSYNC: a write on one returns only after a flush, so it is
 * on every in-sync copy's disk (the kernel passes these flags to open; it does not promise to
 * send an fsync after each write on a FUSE file). Other opens get handle 0.
 */
const makeSyncHandles = () => {
  const open = new Set<number>()
  let next = 1
  return {
    opened: (flags: number): number => {
      if ((flags & fsConstants.O_DSYNC) === 0) return 0
      const handle = next
      next = next >= 0x7fffffff ? 1 : next + 1
      open.add(handle)
      return handle
    },
    released: (handle: number) => void open.delete(handle),
    isSync: (handle: number) => handle !== 0 && open.has(handle),
  }
}
type SyncHandles = ReturnType<typeof makeSyncHandles>

/** open, release, truncate: a volume file cannot be created, removed or resized. */
const fileOps = (config: HandlerConfig, run: ReturnType<typeof makeRunner>, handles: SyncHandles): Ops => {
  // Like a block device: truncating is EINVAL, except to the size it already has. O_TRUNC at open
  // is ignored (the mount uses atomic_o_trunc, so it reaches open as a flag, not as a truncate).
  const truncate = (op: FuseOp, path: string, sizeBytes: number, cb: (code: number) => void): void =>
    run(op, volumeAt(config, path), (volume) => cb(volume.sizeBytes === sizeBytes ? 0 : Errno.EINVAL), cb)
  return {
    open: (path, flags, cb) => run("open", volumeAt(config, path), () => cb(0, handles.opened(flags)), cb),
    release: (_path, fd, cb) => {
      handles.released(fd)
      cb(0)
    },
    truncate: (path, sizeBytes, cb) => truncate("truncate", path, sizeBytes, cb),
    ftruncate: (path, _fd, sizeBytes, cb) => truncate("truncate", path, sizeBytes, cb),
  }
}

/** read, write, flush, fsync: the data path. */
const dataOps = (config: HandlerConfig, run: ReturnType<typeof makeRunner>, handles: SyncHandles): Ops => {
  const { backend } = config
  const flush = (op: FuseOp, path: string, cb: (code: number) => void): void =>
    run(op, Effect.flatMap(volumeAt(config, path), (volume) => backend.flush(volume.namespace, volume.name)), () => cb(0), cb)
  return {
    read: (path, _fd, buf, length, offset, cb) =>
      run("read", Effect.flatMap(volumeAt(config, path), (volume) => {
        const inside = bytesInside(offset, length, volume.sizeBytes)
        if (inside === 0) return Effect.succeed(0)
        return Effect.flatMap(backend.read(volume.namespace, volume.name, offset, inside), (data) => {
          // More bytes than asked is a backend bug: a defect, so the reader gets EIO, not garbage.
          if (data.length > inside) return Effect.die(new Error(`backend read returned ${data.length} bytes, asked for ${inside}`))
          buf.set(data, 0)
          return Effect.succeed(data.length)
        })
      }), cb, cb),
    write: (path, fd, buf, length, offset, cb) =>
      run("write", Effect.flatMap(volumeAt(config, path), (volume): Outcome<number> => {
        const inside = bytesInside(offset, length, volume.sizeBytes)
        if (inside === 0) return Effect.fail(new Reply(Errno.ENOSPC))
        const written = backend.write(volume.namespace, volume.name, offset, buf.subarray(0, inside))
        const durable = handles.isSync(fd) ? Effect.andThen(written, backend.flush(volume.namespace, volume.name)) : written
        return Effect.as(durable, inside)
      }), cb, cb),
    flush: (path, _fd, cb) => flush("flush", path, cb),
    fsync: (path, _datasync, _fd, cb) => flush("fsync", path, cb),
  }
}

/** Every handler the mount registers. */
export const makeOps = (config: HandlerConfig): Ops => {
  const run = makeRunner(config)
  const handles = makeSyncHandles()
  return { ...metadataOps(config, run), ...fileOps(config, run, handles), ...dataOps(config, run, handles) }
}
