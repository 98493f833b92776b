/**
 * Which JavaScript runtime we are on, checked before fuse-native is ever loaded.
 *
 * fuse-native 2.2.6 works only on Node: Bun panics (`unsupported uv function: uv_sem_init`) and
 * Deno aborts (`bad result in uv polyfill`), both killing the process and leaving a stale mount.
 * So the mount refuses those runtimes with a typed error instead of importing the module.
 */
import { FuseMountError } from "./mount-error.ts"

export type JsRuntime = "node" | "bun" | "deno"

/** The runtime this process runs on, from its globals (Bun and Deno also define `process`). */
export const currentRuntime = (globals: object = globalThis): JsRuntime => {
  if ("Bun" in globals) return "bun"
  if ("Deno" in globals) return "deno"
  return "node"
}

/** A typed error for every runtime except Node, undefined on Node. */
export const runtimeRefusal = (runtime: JsRuntime): FuseMountError | undefined =>
  runtime === "node"
    ? undefined
    : new FuseMountError({
        reason: "unsupported-runtime",
        message: `fuse-native crashes under Bun/Deno; run the FUSE front-end with Node (this is ${runtime})`,
      })
