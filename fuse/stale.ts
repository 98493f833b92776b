/**
 * Finding and clearing a mount left behind at the mount point (a crashed or SIGKILLed process).
 *
 * A FUSE server that dies without unmounting leaves its mount point listed in /proc/mounts, and
 * every access to it fails with ENOTCONN ("Transport endpoint is not connected") until someone
 * runs `fusermount -uz`. Before mounting we look for the mount point in /proc/mounts (no access
 * to the mount itself, so a hung server cannot hang us), then stat it with a timeout (which also
 * catches a dead mount seen through another path), and lazily unmount what we find.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readFile, stat } from "node:fs/promises"
import { resolve } from "node:path"
import { FuseMountError } from "./mount-error.ts"

export interface MountEntry {
  readonly source: string
  readonly mountPoint: string
  readonly fsType: string
}

/** /proc/mounts escapes space, tab, newline and backslash as \040, \011, \012, \134. */
const unescapeMountField = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))

/** Parses the text of /proc/mounts. Pure. */
export const parseProcMounts = (text: string): Array<MountEntry> =>
  text
    .split("\n")
    .map((line) => line.split(" "))
    .filter((fields) => fields.length >= 3)
    .map(([source, mountPoint, fsType]) => ({
      source: unescapeMountField(source ?? ""),
      mountPoint: unescapeMountField(mountPoint ?? ""),
      fsType: fsType ?? "",
    }))

/** The /proc/mounts entry at `dir` (absolute), if any. */
export const mountAt = (dir: string): Effect.Effect<MountEntry | undefined> =>
  Effect.map(
    Effect.orElseSucceed(Effect.tryPromise(() => readFile("/proc/mounts", "utf8")), () => ""),
    (text) => parseProcMounts(text).findLast((entry) => entry.mountPoint === resolve(dir)),
  )

/** How long a stat of a possibly dead mount point may take before we treat it as stale. */
export const staleStatTimeoutMs = 2_000

/** The errno code of a failed stat, "timeout" when it did not answer, undefined when it worked. */
const statFailure = (dir: string): Effect.Effect<string | undefined> =>
  Effect.tryPromise({ try: () => stat(dir), catch: (error) => String((error as { code?: unknown }).code ?? "unknown") }).pipe(
    Effect.as(undefined),
    Effect.timeoutOrElse({ duration: staleStatTimeoutMs, orElse: () => Effect.succeed("timeout") }),
    Effect.catch((code) => Effect.succeed(code)),
  )

/** True when stat of `dir` fails with ENOTCONN (or does not answer in time): a dead FUSE server. */
const statSaysStale = (dir: string): Effect.Effect<boolean> =>
  Effect.map(statFailure(dir), (code) => code === "ENOTCONN" || code === "ENXIO" || code === "timeout")

/** Runs `fusermount -uz dir` (a lazy unmount: detaches now, even if something holds it open). */
export const lazyUnmount = (dir: string): Effect.Effect<void, FuseMountError> =>
  Effect.callback<void, FuseMountError>((resume) => {
    execFile("fusermount", ["-uz", resolve(dir)], (error, _stdout, stderr) => {
      if (error === null) return resume(Effect.void)
      resume(Effect.fail(new FuseMountError({
        reason: "unmount-failed",
        message: `fusermount -uz ${dir} failed: ${String(stderr).trim() || error.message}`,
        cause: error,
      })))
    })
  })

/** Mounts stacked on one mount point that clearStaleMount removes before giving up. */
export const staleMountLayersMax = 4

/**
 * Clears every mount found at `dir` (listed in /proc/mounts, or ENOTCONN on stat). Returns whether
 * there was one. A live mount of another process is detached too: the mount point is ours.
 */
export const clearStaleMount = (dir: string): Effect.Effect<boolean, FuseMountError> =>
  Effect.gen(function* () {
    let cleared = false
    for (let layer = 0; layer < staleMountLayersMax; layer++) {
      const stale = (yield* mountAt(dir)) !== undefined || (yield* statSaysStale(dir))
      if (!stale) return cleared
      yield* lazyUnmount(dir).pipe(
        Effect.mapError((error) =>
          new FuseMountError({ reason: "stale-mount", message: `stale mount at ${dir} could not be cleared: ${error.message}`, cause: error })),
      )
      cleared = true
    }
    return yield* new FuseMountError({
      reason: "stale-mount",
      message: `${dir} is still mounted after ${staleMountLayersMax} rounds of fusermount -uz; unmount it by hand`,
    })
  })
