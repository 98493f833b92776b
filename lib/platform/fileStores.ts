/**
 * The `Stores` service over sparse files: one file per volume copy, plus its meta record.
 */
import { readdir, rm } from "node:fs/promises"
import { makeDirs } from "./makeDirs.ts"
import { dirname, join, relative, sep } from "node:path"
import { Effect, Layer } from "effect"
import { StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { metaPathOf, openFileStore } from "./fileStore.ts"

export const fileStores = Stores.of({
  open: (path, sizeBytes) =>
    Effect.tryPromise({
      try: () => makeDirs(dirname(path)),
      catch: (cause) => new StoreError({ reason: (cause as { code?: string }).code === "ENOSPC" ? "no-space" : "io", path, message: `cannot create the directory of ${path}: ${String(cause)}`, cause }),
    }).pipe(Effect.andThen(openFileStore({ path, sizeBytes, create: true, atLeast: true }))),
  remove: (path) =>
    Effect.tryPromise({
      try: async () => {
        // The record first: a crash in between leaves a data file without a record (unknown), never a record without its data.
        await rm(metaPathOf(path), { force: true })
        await rm(path, { force: true })
      },
      catch: (cause) => new StoreError({ reason: "io", path, message: `cannot remove ${path}: ${String(cause)}`, cause }),
    }),
  list: (dir) =>
    Effect.tryPromise({
      try: async () => {
        const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: { code?: string }) => (error.code === "ENOENT" ? [] : Promise.reject(error)))
        // Paths in the form the node builds them (`${dir}/ns/name.img`), so they compare equal to its store paths.
        return entries.filter((entry) => entry.isFile() && entry.name.endsWith(".img"))
          .map((entry) => `${dir}/${relative(dir, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join("/")}`)
      },
      catch: (cause) => new StoreError({ reason: "io", path: dir, message: `cannot list the copies in ${dir}: ${String(cause)}`, cause }),
    }),
})

export const layerFileStores = Layer.succeed(Stores, fileStores)
