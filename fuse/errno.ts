/**
 * Typed backend errors → the number a FUSE handler replies with. The only place errors become errno.
 *
 * fuse-native wants `cb(0)` for success, `cb(-errno)` for failure, and for read/write the byte
 * count. The mapping follows what a block device file does, so that `dd`, `fio`, a loop device
 * and a database see the errors they already understand:
 *
 * | reason        | reply                                                                |
 * |---------------|----------------------------------------------------------------------|
 * | unavailable   | EIO                                                                  |
 * | out-of-range  | write: ENOSPC (a block device at its end); read: 0 bytes (EOF)       |
 * | not-found     | ENOENT                                                               |
 * | read-only     | EROFS                                                                |
 * | timeout       | EIO                                                                  |
 * | no-space      | ENOSPC                                                               |
 * | io            | EIO                                                                  |
 *
 * Timeouts (the backend's own, and the mount's `opTimeoutMs`) give EIO, not ETIMEDOUT: read(2),
 * write(2) and fsync(2) document EIO as "the IO failed, its outcome is unknown", which is exactly
 * what a timed-out replicated write is (it may or may not have reached every copy); ETIMEDOUT is
 * not a documented result of those calls, and the kernel's loop driver and filesystems such as
 * ext4 collapse every error to EIO anyway. fuse-native's own backstop timeout still answers
 * ETIMEDOUT, which therefore marks a bug in the adapter (its timeout did not fire first).
 * A defect (a thrown exception, an interrupted fiber) is EIO too.
 *
 * Pure: no fuse-native import (the constants are Linux's numbers), so it is unit-testable anywhere.
 */
import type { FuseBackendError } from "./backend.ts"

/** Linux errno values, negated as fuse-native replies want them. */
export const Errno = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EBADF: -9,
  EACCES: -13,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  ENOSPC: -28,
  EROFS: -30,
  ENOSYS: -38,
  ETIMEDOUT: -110,
} as const

/** The FUSE operations the mount implements. */
export type FuseOp = "getattr" | "readdir" | "open" | "release" | "read" | "write" | "flush" | "fsync" | "truncate" | "statfs"

/** The reply for a failed backend call made by `op`: a negative errno, or 0 bytes for a read past the end. */
export const replyForBackendError = (op: FuseOp, error: FuseBackendError): number => {
  switch (error.reason) {
    case "out-of-range":
      return op === "read" ? 0 : Errno.ENOSPC
    case "not-found":
      return Errno.ENOENT
    case "read-only":
      return Errno.EROFS
    case "no-space":
      return Errno.ENOSPC
    case "unavailable":
    case "timeout":
    case "io":
      return Errno.EIO
  }
}

/** The reply when the mount's own `opTimeoutMs` passed before the backend answered. */
export const replyForOpTimeout: number = Errno.EIO

/** The reply when the handler died (an exception, a defect, an interruption): never a hang. */
export const replyForDefect: number = Errno.EIO
