/**
 * The file-backed BlockStore: one sparse file per copy of a volume, plus a sidecar meta record.
 *
 * Why this shape:
 * - Sparse: the file is ftruncated to the volume size at creation, so a 1 TiB volume costs only
 *   the blocks written.
 * - Writes and reads are synchronous (`fs.writeSync` / `fs.readSync` inside `Effect.try`): they
 *   hit the page cache in ~1.4 µs per 4 KiB against ~20 µs for an awaited thread-pool write, and
 *   a synchronous write is applied the moment its effect starts, which is exactly the ordering
 *   rule of the BlockStore contract (overlapping writes land in the order they start) with no
 *   queue. `flush` is `fdatasync` on the thread pool, so it does not block the event loop.
 * - Except while the kernel throttles writers: a write into the page cache blocks when dirty
 *   pages are over the kernel's limit (or the device is slow), and a burst of synchronous writes
 *   then stalled the whole event loop — lease renewals included — for over a second (the
 *   10-minute soak, test/soak/eventloop.ts). So when synchronous writes in one run of the event
 *   loop's tasks take `stallMs` (30 ms) or more together, every store of this process writes on
 *   the thread pool for the next `threadPoolHoldMs` (2 s), then tries synchronous writes again.
 *   The check runs after a write, so one throttled synchronous write still blocks as long as the
 *   kernel holds it; what is avoided is a burst of them in one run. Reads stay synchronous. Writes
 *   in flight there are tracked by range (lib/store/inflightRanges.ts): a later write or read
 *   that overlaps one waits for it, so the ordering rule holds across both paths, and the file
 *   is closed only when they are over.
 * - Meta lives in `<path>.meta.json`, replaced atomically: write `<path>.meta.json.tmp`, fsync
 *   it, rename over the record, fsync the directory.
 * - Opening: `create: true` opens the file or creates it (open-or-create is friendlier for a node
 *   restarting after a crash than failing with `exists`); an existing file must already have the
 *   requested size (`size-mismatch` otherwise), except an empty file, which is what a crash
 *   between create and ftruncate leaves behind and is extended. With `atLeast`, a smaller file is
 *   grown (ftruncate, fsync) and a bigger one keeps its size.
 * - Growing (`grow`, online resize): ftruncate to the new size (sparse: nothing is written, the
 *   new bytes read as zeros), then fsync, which makes the size durable; the store's size changes
 *   only once the fsync returned, so no write past the old end is accepted before. `exclusive: true` with `create`
 *   refuses an existing file with `exists`. `create: false` requires the file.
 * - Scoped: the file descriptor is closed when the scope closes (and by `close`); a flush still
 *   running at close finishes first. Every operation after close fails with `closed`.
 * errno mapping: ENOSPC/EDQUOT → `no-space`, EBADF → `closed`, EEXIST → `exists`, others → `io`
 * with the code in the message. A write that fails may have changed part of its range.
 */
import * as fs from "node:fs"
import { dirname } from "node:path"
import { Clock, Effect, Fiber, Semaphore, type Scope } from "effect"
import { defaults, volumeSizeBytesMax } from "../core/limits.ts"
import { type BlockStore, checkGrow, checkRange, closedError, StoreError, type StoreMeta } from "../store/BlockStore.ts"
import { InflightRanges } from "../store/inflightRanges.ts"
import { checkMetaForWrite, decodeMeta, encodeMeta, metaBytesMax } from "../store/meta.ts"

export interface FileStoreOptions {
  readonly path: string
  readonly sizeBytes: number
  /** Create the file when it does not exist (an existing file of the same size is opened). */
  readonly create: boolean
  /** With `create`: fail with `exists` when the file is already there. */
  readonly exclusive?: boolean
  /** A synchronous write that takes this long sends writes to the thread pool for a while (default `stallMsDefault`). */
  readonly stallMs?: number
  /** A write on the thread pool fails after this long (default `defaults.diskTimeoutMs`): a hung device. */
  readonly diskTimeoutMs?: number
  /**
   * `sizeBytes` is a floor, not the exact size (the `Stores` rule): a smaller file (a copy that
   * missed a resize) is grown to it, a bigger one is opened at its own size, never truncated.
   */
  readonly atLeast?: boolean
}

/** Synchronous writes this slow in one run of tasks mean the kernel is throttling writers (see the module doc). */
export const stallMsDefault = 30
/** How long writes stay on the thread pool after synchronous writes stalled. */
export const threadPoolHoldMs = 2_000

/**
 * Until when (monotonic ms) this process's file stores write on the thread pool. Process-wide:
 * the kernel throttles every writer of a device at once, and one event loop serves every store
 * of the process (a local cluster runs several nodes in one).
 */
let threadPoolUntilMs = -Infinity
/** Time synchronous writes took since the current run of tasks began (reset by a microtask). */
let syncWriteMsThisRun = 0
let resetQueued = false
const resetSyncWriteMs = () => {
  syncWriteMsThisRun = 0
  resetQueued = false
}
/** Counts a synchronous write's duration; past `stallMs` in one run, writes move to the thread pool. */
const countSyncWrite = (tookMs: number, stallMs: number, nowMs: number) => {
  syncWriteMsThisRun += tookMs
  if (!resetQueued) {
    resetQueued = true
    queueMicrotask(resetSyncWriteMs)
  }
  if (syncWriteMsThisRun >= stallMs) threadPoolUntilMs = nowMs + threadPoolHoldMs
}
const monotonicMsOf = (clock: Clock.Clock) => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
/** True while this process's file stores write on the thread pool. */
export const writesOnThreadPool: Effect.Effect<boolean> = Clock.clockWith((clock) => Effect.succeed(monotonicMsOf(clock) < threadPoolUntilMs))

/** Where the meta record of the store at `path` lives. */
export const metaPathOf = (path: string): string => `${path}.meta.json`

/** Maps a thrown fs error to a StoreError naming the operation, the file and the errno code. */
export function storeErrorFromFs(path: string, operation: string, cause: unknown): StoreError {
  const code = (cause as { code?: unknown } | undefined)?.code
  const codeText = typeof code === "string" ? code : String(cause)
  if (code === "ENOSPC" || code === "EDQUOT")
    return new StoreError({ reason: "no-space", path, message: `${operation} of ${path}: no space left on the device (${codeText}); free space or move the volume`, cause })
  if (code === "EBADF") return new StoreError({ reason: "closed", path, message: `${operation} of ${path}: the file is closed (EBADF)`, cause })
  if (code === "EEXIST")
    return new StoreError({ reason: "exists", path, message: `${operation} of ${path}: the file exists and exclusive creation was asked for`, cause })
  return new StoreError({ reason: "io", path, message: `${operation} of ${path} failed: ${codeText}`, cause })
}

/** Runs a callback-style fs call on the thread pool as an Effect. */
const fsAsync = <A>(path: string, operation: string, call: (done: (error: NodeJS.ErrnoException | null, value?: A) => void) => void) =>
  Effect.callback<A, StoreError>((resume) => {
    call((error, value) => resume(error ? Effect.fail(storeErrorFromFs(path, operation, error)) : Effect.succeed(value as A)))
  })

const fsSync = <A>(path: string, operation: string, run: () => A) =>
  Effect.try({ try: run, catch: (cause) => storeErrorFromFs(path, operation, cause) })

const fsyncPath = (path: string, operation: string) =>
  Effect.acquireUseRelease(
    fsAsync<number>(path, operation, (done) => fs.open(path, "r", done)),
    (fd) => fsAsync<void>(path, operation, (done) => fs.fsync(fd, done)),
    (fd) => Effect.sync(() => fs.close(fd, () => {})),
  )

/** Opens (or creates) the backing file and checks or sets its size; returns the fd. */
const openBackingFile = (options: FileStoreOptions) =>
  Effect.gen(function* () {
    const { path, sizeBytes, create } = options
    const { O_RDWR, O_CREAT, O_EXCL } = fs.constants
    const created = create
      ? yield* fsSync(path, "create", () => fs.openSync(path, O_RDWR | O_CREAT | O_EXCL, 0o644)).pipe(
        Effect.map((fd) => ({ fd, fresh: true })),
        Effect.catchIf(
          (error) => error.reason === "exists" && options.exclusive !== true,
          () => fsSync(path, "open", () => ({ fd: fs.openSync(path, O_RDWR), fresh: false })),
        ),
      )
      : yield* fsSync(path, "open", () => ({ fd: fs.openSync(path, O_RDWR), fresh: false }))
    const { fd } = created
    const closeOnError = <A>(effect: Effect.Effect<A, StoreError>) =>
      effect.pipe(Effect.tapError(() => Effect.sync(() => fs.close(fd, () => {}))))
    const stat = yield* closeOnError(fsSync(path, "stat", () => fs.fstatSync(fd)))
    if (!stat.isFile())
      return yield* closeOnError(Effect.fail(new StoreError({ reason: "io", path, message: `${path} is not a regular file; a store needs one` })))
    const extend = create && stat.size === 0 && sizeBytes > 0
    if (!extend && options.atLeast === true && stat.size !== sizeBytes) {
      if (stat.size > sizeBytes) return { fd, createdEmpty: false, sizeBytes: stat.size }
      yield* closeOnError(growFile(path, fd, sizeBytes))
      return { fd, createdEmpty: false, sizeBytes }
    }
    if (!extend && stat.size !== sizeBytes)
      return yield* closeOnError(Effect.fail(new StoreError({
        reason: "size-mismatch",
        path,
        message: `${path} holds ${stat.size} bytes but the volume is ${sizeBytes} bytes; open it with its own size`,
      })))
    if (extend || created.fresh) {
      // A meta record beside a file created now belongs to a file that is gone: it proves nothing.
      yield* closeOnError(fsSync(path, "unlink of a stale meta record", () => fs.rmSync(metaPathOf(path), { force: true })))
      yield* closeOnError(fsSync(path, "ftruncate", () => fs.ftruncateSync(fd, sizeBytes)))
      yield* closeOnError(fsAsync<void>(path, "fsync", (done) => fs.fsync(fd, done)))
      yield* closeOnError(fsyncPath(dirname(path), "fsync of the directory"))
    }
    return { fd, createdEmpty: extend || created.fresh, sizeBytes }
  })

/** ftruncate up to `sizeBytes` (sparse), then fsync: the new size is durable when this returns. */
const growFile = (path: string, fd: number, sizeBytes: number) =>
  fsAsync<void>(path, "ftruncate", (done) => fs.ftruncate(fd, sizeBytes, done)).pipe(
    Effect.andThen(fsAsync<void>(path, "fsync", (done) => fs.fsync(fd, done))),
  )

/** Opens a file store, closed with the scope. */
export const openFileStore = (options: FileStoreOptions): Effect.Effect<BlockStore, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const { path, sizeBytes } = options
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > volumeSizeBytesMax)
        return Effect.fail(new StoreError({ reason: "out-of-range", path, message: `store size ${sizeBytes} bytes must be an integer in 0..${volumeSizeBytesMax}` }))
      return Effect.flatMap(openBackingFile(options), (opened) => Clock.clockWith((clock) =>
        Effect.succeed(makeFileStore(path, opened.sizeBytes, opened.fd, opened.createdEmpty, options.stallMs ?? stallMsDefault, options.diskTimeoutMs ?? defaults.diskTimeoutMs, clock))))
    }),
    (store) => store.close,
  )

function makeFileStore(path: string, initialSizeBytes: number, fd: number, createdEmpty: boolean, stallMs: number, diskTimeoutMs: number, clock: Clock.Clock): BlockStore {
  let closed = false
  /** Changed only by `grow`, after the grown size is durable. */
  let sizeBytes = initialSizeBytes
  /** Flushes and thread-pool writes still running: the fd is closed only when they are over. */
  let operationsRunning = 0
  const inflight = new InflightRanges()
  const metaLock = Semaphore.makeUnsafe(1)
  const closeFd = () => {
    try {
      fs.closeSync(fd)
    } catch {
      // Nothing to do: the fd is gone either way, and close has no error channel.
    }
  }
  /** Counts an operation that holds the fd; the last one over after close closes it. */
  const releaseFd = () => {
    operationsRunning--
    if (closed && operationsRunning === 0) closeFd()
  }
  /** Checks `closed` and takes the fd in the same step, uninterruptibly with its release. */
  const holdingFd = <A>(operation: string, effect: () => Effect.Effect<A, StoreError>) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(closedError(path, operation))
        operationsRunning++
        return Effect.ensuring(restore(Effect.suspend(effect)), Effect.sync(releaseFd))
      }))
  /** Fails when closed or out of range; otherwise runs `run`. */
  const guarded = <A>(operation: string, offset: number, length: number, run: () => Effect.Effect<A, StoreError>) =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(closedError(path, operation))
      const error = checkRange(path, sizeBytes, offset, length)
      return error === undefined ? run() : Effect.fail(error)
    })

  const read = (offset: number, length: number) =>
    guarded("read", offset, length, () => {
      const readNow = fsSync(path, "read", () => {
        if (closed) throw Object.assign(new Error("closed"), { code: "EBADF" })
        return readAll(path, fd, offset, length)
      })
      const earlier = inflight.overlapping(offset, length)
      return earlier.length === 0 ? readNow : Effect.andThen(InflightRanges.awaitAll(earlier), Effect.suspend(() => (closed ? Effect.fail(closedError(path, "read")) : readNow)))
    })

  /**
   * A write on the thread pool, after the overlapping ones that started before it. It works on its
   * own copy of the bytes and runs in its own fiber (fs.write cannot be called back), so a hung
   * device fails the write after `diskTimeoutMs` — the caller may reuse its buffer at once — while
   * the range stays in flight (and the fd held) until the kernel really returns.
   */
  const writeOnThreadPool = (offset: number, data: Uint8Array) =>
    Effect.uninterruptible(Effect.suspend(() => {
      if (closed) return Effect.fail(closedError(path, "write"))
      const earlier = inflight.overlapping(offset, data.length)
      const entry = inflight.add(offset, data.length)
      operationsRunning++
      // A real copy (a Buffer's slice is a view): the caller may reuse its buffer once the write failed by timeout.
      const bytes = new Uint8Array(data)
      const work = InflightRanges.awaitAll(earlier).pipe(
        Effect.andThen(Effect.suspend(() => writeAllAsync(path, fd, offset, bytes))),
        Effect.ensuring(Effect.sync(() => {
          inflight.settle(entry)
          releaseFd()
        })),
      )
      return Effect.flatMap(Effect.forkDetach(work, { startImmediately: true }), (fiber) => Fiber.join(fiber).pipe(Effect.timeoutOrElse({
        duration: diskTimeoutMs,
        orElse: () => Effect.fail(new StoreError({ reason: "io", path, message: `write of ${data.length} bytes at ${offset} to ${path} did not finish within ${diskTimeoutMs} ms (a hung device?)` })),
      })))
    }))

  /**
   * A write: synchronous in one step (no Effect between the checks and the bytes: this is the
   * hot path of every copy), or on the thread pool while synchronous writes stall or an
   * overlapping one is still there.
   */
  const write = (offset: number, data: Uint8Array) =>
    guarded("write", offset, data.length, () => {
      if (data.length === 0) return Effect.void
      const started = monotonicMsOf(clock)
      if (started < threadPoolUntilMs || inflight.overlapping(offset, data.length).length > 0) return writeOnThreadPool(offset, data)
      try {
        writeAll(fd, offset, data)
      } catch (cause) {
        return Effect.fail(storeErrorFromFs(path, "write", cause))
      } finally {
        const now = monotonicMsOf(clock)
        countSyncWrite(now - started, stallMs, now)
      }
      return Effect.void
    })

  // One fdatasync at a time: a flush waits for the one running, then issues its own (which covers
  // every write that completed before it started). A hung device then holds one thread-pool
  // thread per store, not one per retried flush.
  const flushLock = Semaphore.makeUnsafe(1)
  const flush = guarded("flush", 0, 0, () => flushLock.withPermits(1)(holdingFd("flush", () => fsAsync<void>(path, "fdatasync", (done) => fs.fdatasync(fd, done)))))

  const close = Effect.sync(() => {
    if (closed) return
    closed = true
    if (operationsRunning === 0) closeFd()
  })

  const readMeta = guarded("readMeta", 0, 0, () => readMetaFile(path, sizeBytes))
  const writeMeta = (meta: StoreMeta) =>
    guarded("writeMeta", 0, 0, () => {
      return metaLock.withPermits(1)(Effect.suspend(() => {
        const error = checkMetaForWrite(meta, path, sizeBytes)
        return error === undefined ? writeMetaFile(path, encodeMeta(meta)) : Effect.fail(error)
      }))
    })

  // One growth at a time, and not beside a meta write (whose size check reads sizeBytes).
  const grow = (next: number) =>
    guarded("grow", 0, 0, () => metaLock.withPermits(1)(Effect.suspend(() => {
      const error = checkGrow(path, sizeBytes, next)
      if (error !== undefined) return Effect.fail(error)
      if (next === sizeBytes) return Effect.void
      return holdingFd("grow", () => growFile(path, fd, next)).pipe(Effect.tap(() => Effect.sync(() => void (sizeBytes = next))))
    })))

  return {
    get sizeBytes() {
      return sizeBytes
    },
    createdEmpty, read, write, flush, close, readMeta, writeMeta, grow,
  }
}

function readAll(path: string, fd: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, offset + done)
    if (n === 0) throw Object.assign(new Error(`unexpected end of ${path} at ${offset + done}: the file was shortened`), { code: "EOF" })
    done += n
  }
  return out
}

function writeAll(fd: number, offset: number, data: Uint8Array): void {
  let done = 0
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done)
}

/** `writeAll` on the thread pool: fs.write until every byte is written. */
const writeAllAsync = (path: string, fd: number, offset: number, data: Uint8Array): Effect.Effect<void, StoreError> =>
  Effect.callback<void, StoreError>((resume) => {
    const step = (done: number) => {
      if (done >= data.length) return resume(Effect.void)
      fs.write(fd, data, done, data.length - done, offset + done, (error, written) => {
        if (error) resume(Effect.fail(storeErrorFromFs(path, "write", error)))
        else step(done + written)
      })
    }
    step(0)
  })

const readMetaFile = (path: string, sizeBytes: number): Effect.Effect<StoreMeta | undefined, StoreError> => {
  const metaPath = metaPathOf(path)
  return fsAsync<number>(metaPath, "open", (done) => fs.open(metaPath, "r", done)).pipe(
    Effect.flatMap((fd) =>
      Effect.ensuring(
        Effect.gen(function* () {
          const buffer = new Uint8Array(metaBytesMax + 1)
          const length = yield* fsAsync<number>(metaPath, "read", (done) => fs.read(fd, buffer, 0, buffer.length, 0, done))
          const decoded = decodeMeta(new TextDecoder().decode(buffer.subarray(0, length)), metaPath, sizeBytes)
          return decoded instanceof StoreError ? yield* Effect.fail(decoded) : decoded
        }),
        Effect.sync(() => fs.close(fd, () => {})),
      )),
    Effect.catchIf((error) => error.reason === "io" && (error.cause as { code?: unknown } | undefined)?.code === "ENOENT", () => Effect.succeed(undefined)),
  )
}

/** tmp + fsync + rename + fsync of the directory: after a crash the old or the new record is there. */
const writeMetaFile = (path: string, text: string): Effect.Effect<void, StoreError> => {
  const metaPath = metaPathOf(path)
  const tmpPath = `${metaPath}.tmp`
  const bytes = new TextEncoder().encode(text)
  return Effect.acquireUseRelease(
    fsAsync<number>(tmpPath, "open", (done) => fs.open(tmpPath, "w", 0o644, done)),
    (fd) =>
      Effect.gen(function* () {
        const written = yield* fsAsync<number>(tmpPath, "write", (done) => fs.write(fd, bytes, 0, bytes.length, 0, done))
        if (written !== bytes.length)
          return yield* new StoreError({ reason: "io", path: tmpPath, message: `short write of ${tmpPath}: ${written} of ${bytes.length} bytes` })
        yield* fsAsync<void>(tmpPath, "fsync", (done) => fs.fsync(fd, done))
      }),
    (fd) => Effect.sync(() => fs.close(fd, () => {})),
  ).pipe(
    Effect.andThen(fsAsync<void>(metaPath, "rename", (done) => fs.rename(tmpPath, metaPath, done))),
    Effect.andThen(fsyncPath(dirname(metaPath), "fsync of the directory")),
  )
}
