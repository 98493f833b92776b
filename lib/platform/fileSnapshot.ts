/**
 * File persistence for the embedded control store: read a snapshot file, and replace it
 * atomically (write a temporary file beside it, fsync it, rename it over the old one, fsync the
 * directory), so that a crash leaves either the old file or the new one, never a torn mix.
 *
 * The only control-store code that touches node:fs; it runs on Node, Bun and Deno.
 */
import { Effect } from "effect"
import { open, readFile, rename, rm } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { ControlError } from "../control/ControlStore.ts"
import type { SnapshotStorage } from "../control/snapshot.ts"

const ioError = (path: string, what: string, cause: unknown) =>
  new ControlError({
    reason: "unreachable",
    message: `could not ${what} control store file ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause,
  })

const isMissing = (cause: unknown) => (cause as { code?: unknown } | undefined)?.code === "ENOENT"

/** Writes `text` to `path` atomically and durably. */
const writeAtomic = async (path: string, text: string): Promise<void> => {
  const temporary = join(dirname(path), `.${basename(path)}.tmp`)
  const handle = await open(temporary, "w", 0o600)
  try {
    await handle.writeFile(text, "utf8")
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(temporary, path)
  } catch (cause) {
    await rm(temporary, { force: true })
    throw cause
  }
  // Make the rename itself durable; some platforms cannot fsync a directory, which is not fatal.
  const directory = await open(dirname(path), "r").catch(() => undefined)
  if (directory !== undefined) await directory.sync().catch(() => undefined).finally(() => directory.close())
}

/** A SnapshotStorage backed by one JSON file; a missing file reads as "no snapshot yet". */
export const fileSnapshotStorage = (path: string): SnapshotStorage => ({
  name: path,
  read: Effect.tryPromise({
    try: () => readFile(path, "utf8").catch((cause: unknown) => (isMissing(cause) ? undefined : Promise.reject(cause))),
    catch: (cause) => ioError(path, "read", cause),
  }),
  write: (text) => Effect.tryPromise({ try: () => writeAtomic(path, text), catch: (cause) => ioError(path, "write", cause) }),
})
