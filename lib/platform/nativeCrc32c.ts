/**
 * The native CRC-32C of `@node-rs/crc32` (napi-rs, SSE4.2 / ARMv8 CRC instructions), if it loads.
 *
 * Why: the portable slice-by-8 CRC in lib/core/checksum.ts runs at ~0.4–0.9 GB/s and was the
 * largest item in the replication profiles (every frame body is checksummed on both ends); the
 * native one runs at several GB/s. The package ships prebuilt binaries as optional dependencies
 * (`@node-rs/crc32-linux-x64-gnu`, …), so no install script is needed; it loads under Node and
 * Bun (N-API) and accepts any Uint8Array.
 *
 * lib/core/checksum.ts imports this module statically and must stay loadable anywhere, so it
 * has no static `node:*` import: `createRequire` comes from `process.getBuiltinModule` (Node ≥
 * 20.16, Bun, Deno). When that, the package or its binary is missing, or the binding fails a
 * known-answer check, `nativeCrc32c` is undefined and the portable code is used.
 */

/** `crc32c(bytes, previous)` with lib/core/checksum.ts's contract: unsigned, continues from `previous`. */
export type Crc32cFunction = (bytes: Uint8Array, previous: number) => number

type GetBuiltinModule = (id: "node:module") => { createRequire: (from: string) => (id: string) => unknown }

const load = (): Crc32cFunction | undefined => {
  try {
    const host = globalThis as { process?: { getBuiltinModule?: GetBuiltinModule } }
    const getBuiltinModule = host.process?.getBuiltinModule
    if (typeof getBuiltinModule !== "function") return undefined
    const binding = getBuiltinModule("node:module").createRequire(import.meta.url)("@node-rs/crc32") as { crc32c?: unknown }
    if (typeof binding.crc32c !== "function") return undefined
    const native = binding.crc32c as (input: Uint8Array, initial: number) => number
    const crc: Crc32cFunction = (bytes, previous) => native(bytes, previous) >>> 0
    // RFC 3720's check value: a binding that does not compute CRC-32C is not used.
    return crc(new TextEncoder().encode("123456789"), 0) === 0xe3069283 ? crc : undefined
  } catch {
    return undefined
  }
}

/** The native CRC-32C, or undefined when `@node-rs/crc32` is not available here. */
export const nativeCrc32c: Crc32cFunction | undefined = load()
