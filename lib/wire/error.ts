/**
 * WireError: the one typed error of the wire boundary.
 *
 * Every way a peer's bytes can be wrong has a stable `reason` that callers match on (never the
 * message text). A WireError means the connection that produced the bytes must be closed; the
 * node and every other connection go on.
 */
import { Data } from "effect"

export type WireErrorReason =
  | "bad-magic"
  | "bad-version"
  | "bad-type"
  | "bad-flags"
  | "header-checksum"
  | "body-checksum"
  | "too-large"
  | "bad-length"
  | "bad-field"
  | "bad-compression"
  | "truncated"

export class WireError extends Data.TaggedError("WireError")<{
  readonly reason: WireErrorReason
  readonly message: string
}> {}

/** Shorthand used by the codec: `wireError("too-large", "...")`. */
export const wireError = (reason: WireErrorReason, message: string): WireError => new WireError({ reason, message })

export const isWireError = (value: unknown): value is WireError => value instanceof WireError
