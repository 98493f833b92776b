/**
 * The errors a volume's user can see, one class per kind, each with a `reason`.
 *
 * `VolumeUnavailable` is what the failure mode produces when IO may not proceed (hard mode below
 * the requested replica count, soft mode beyond its tolerance, a master that lost its lease or was
 * superseded by a newer epoch). `OutOfRange` is a caller's mistake. `VolumeIoError` is a local
 * storage failure on the master (a full disk, an IO error): the write did not happen.
 */
import { Data } from "effect"
import { isInside } from "../core/range.ts"
import type { Health } from "../volume/health.ts"

export class VolumeUnavailable extends Data.TaggedError("VolumeUnavailable")<{
  readonly volume: string
  readonly reason: "replicas-below-requested" | "tolerance-exceeded" | "superseded" | "closed" | "no-master" | "not-master" | "store-failed"
  readonly health: Health
  readonly message: string
}> {}

export class OutOfRange extends Data.TaggedError("OutOfRange")<{
  readonly volume: string
  readonly offset: number
  readonly length: number
  readonly sizeBytes: number
  readonly message: string
}> {}

export class VolumeIoError extends Data.TaggedError("VolumeIoError")<{
  readonly volume: string
  readonly reason: "no-space" | "io" | "closed"
  readonly message: string
  readonly cause?: unknown
}> {}

export class ReplicationError extends Data.TaggedError("ReplicationError")<{
  readonly reason: "unknown-volume" | "already-hosted" | "bad-name" | "bad-size" | "shrink" | "bad-request" | "store" | "foreign-copy" | "busy"
  readonly volume: string
  readonly message: string
  readonly cause?: unknown
}> {}

export type VolumeError = VolumeUnavailable | OutOfRange | VolumeIoError

export const checkRange = (volume: string, sizeBytes: number, offset: number, length: number): OutOfRange | undefined =>
  isInside(sizeBytes, offset, length)
    ? undefined
    : new OutOfRange({
        volume, offset, length, sizeBytes,
        message: `volume ${volume}: ${length} bytes at offset ${offset} are outside the volume (allowed: offset + length ≤ ${sizeBytes}, both non-negative integers)`,
      })
