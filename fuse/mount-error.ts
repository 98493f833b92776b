/**
 * The one error type of mounting and unmounting (not of IO through the mount: that is errno,
 * see fuse/errno.ts). Users match on `reason`, never on `message`.
 */
import { Data } from "effect"

export type FuseMountErrorReason =
  /** Bun or Deno: fuse-native crashes there (and leaves a stale mount), so it is never loaded. */
  | "unsupported-runtime"
  /** /dev/fuse or fusermount is missing, or fuse-native could not be loaded. */
  | "no-fuse"
  /** A stale mount at the mount point could not be cleared. */
  | "stale-mount"
  /** libfuse refused the mount (bad mount point, options, permissions). */
  | "mount-failed"
  /** fusermount -uz failed at unmount. */
  | "unmount-failed"
  /** An option given to mountVolumes is out of its allowed range. */
  | "invalid-option"

export class FuseMountError extends Data.TaggedError("FuseMountError")<{
  readonly reason: FuseMountErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}
