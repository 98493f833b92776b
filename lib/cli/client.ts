/**
 * The CLI's side of the admin API: finds the cluster (--api, $REPLIVOL_API, or the local default
 * 127.0.0.1:5705), its token (--token, $REPLIVOL_TOKEN, or <data>/admin.token with --data,
 * $REPLIVOL_DATA or ./data), and makes JSON calls with `fetch` (Node ≥ 18, Bun, Deno). A failed
 * call rejects with `ApiCallError` carrying the server's `tag`, `reason` and message.
 */
import { Data } from "effect"
import { adminAddressDefault, readTextFile } from "../platform/adminHttp.ts"

/** Bound on one admin call (a create waits for placement only, not for sync). */
export const apiCallTimeoutMs = 15_000

export class ApiCallError extends Data.TaggedError("ApiCallError")<{
  readonly reason: "unreachable" | "no-token" | "rejected" | "bad-response"
  /** The server's error tag and reason when it answered with an error. */
  readonly tag?: string
  readonly serverReason?: string
  readonly status?: number
  readonly message: string
}> {}

export interface ApiTarget {
  readonly api: string
  readonly token: string | undefined
  readonly tokenSource: string
}

export interface TargetFlags {
  readonly api?: string | undefined
  readonly data?: string | undefined
  readonly token?: string | undefined
}

export const resolveTarget = async (flags: TargetFlags, env: Readonly<Record<string, string | undefined>>): Promise<ApiTarget> => {
  const api = flags.api || env.REPLIVOL_API || adminAddressDefault
  if (flags.token) return { api, token: flags.token, tokenSource: "--token" }
  if (env.REPLIVOL_TOKEN) return { api, token: env.REPLIVOL_TOKEN, tokenSource: "$REPLIVOL_TOKEN" }
  const path = `${flags.data || env.REPLIVOL_DATA || "./data"}/admin.token`
  return { api, token: await readTextFile(path), tokenSource: path }
}

export const call = async <T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> => {
  if (target.token === undefined) {
    throw new ApiCallError({ reason: "no-token", message: `no admin token: ${target.tokenSource} cannot be read (is the cluster running with this --data? or pass --token / $REPLIVOL_TOKEN)` })
  }
  let response: Response
  try {
    response = await fetch(`http://${target.api}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(apiCallTimeoutMs),
    })
  } catch (cause) {
    throw new ApiCallError({ reason: "unreachable", message: `cannot reach the admin API at ${target.api} (${String((cause as Error).cause ?? cause)}): is "replivol cluster up" running? (or pass --api / $REPLIVOL_API)` })
  }
  const text = await response.text()
  let value: unknown = undefined
  try {
    value = text === "" ? undefined : JSON.parse(text)
  } catch {
    throw new ApiCallError({ reason: "bad-response", status: response.status, message: `the admin API at ${target.api} answered ${response.status} with non-JSON text` })
  }
  if (!response.ok) {
    const error = (value as { error?: { tag?: string; reason?: string; message?: string } } | undefined)?.error
    throw new ApiCallError({
      reason: "rejected", status: response.status, ...(error?.tag ? { tag: error.tag } : {}), ...(error?.reason ? { serverReason: error.reason } : {}),
      message: error?.message ?? `the admin API answered ${response.status}`,
    })
  }
  return value as T
}
