/**
 * The admin API's own failures, and how every error a cluster call can raise becomes an HTTP
 * status and a JSON body `{ error: { tag, reason, message } }` (clients match `tag` and `reason`).
 */
import { Data } from "effect"

export class AdminError extends Data.TaggedError("AdminError")<{
  readonly reason: "unauthorized" | "not-found" | "bad-request" | "method-not-allowed" | "not-local" | "no-node" | "unreachable" | "internal"
  readonly message: string
}> {}

export interface ErrorBody {
  readonly tag: string
  readonly reason: string
  readonly message: string
}

const adminStatus: Readonly<Record<AdminError["reason"], number>> = {
  unauthorized: 401, "not-found": 404, "bad-request": 400, "method-not-allowed": 405, "not-local": 400, "no-node": 503, unreachable: 503, internal: 500,
}

const clusterStatus: Readonly<Record<string, number>> = {
  "not-found": 404, exists: 409, conflict: 409, "no-nodes": 409, "too-few-nodes": 409, "corrupt-record": 500, "no-master": 503, timeout: 504, "bad-request": 400, "remote-master": 421,
}

/** The HTTP status for a typed error (anything unknown is 500). */
export const statusOf = (error: { readonly _tag?: string; readonly reason?: string }): number => {
  switch (error._tag) {
    case "AdminError": return adminStatus[error.reason as AdminError["reason"]] ?? 500
    case "ClusterError": return clusterStatus[error.reason ?? ""] ?? 500
    case "LabelError":
    case "RuleError":
    case "SizeError": return 400
    case "ReplicationError": return error.reason === "bad-name" || error.reason === "bad-size" || error.reason === "shrink" || error.reason === "bad-request" ? 400 : error.reason === "busy" ? 409 : 500
    case "ControlError": return 503
    case "VolumeUnavailable": return 503
    // No key or a wrong one on the node asked: the request cannot be served there (409); a damaged key record is the store's (500).
    case "EncryptionError": return error.reason === "no-key" || error.reason === "wrong-key" ? 409 : error.reason === "unsupported" ? 501 : 500
    default: return 500
  }
}

export const errorBody = (error: unknown): ErrorBody => {
  const e = error as { _tag?: unknown; reason?: unknown; message?: unknown }
  return {
    tag: typeof e?._tag === "string" ? e._tag : "Error",
    reason: typeof e?.reason === "string" ? e.reason : "internal",
    message: typeof e?.message === "string" && e.message !== "" ? e.message : String(error),
  }
}
