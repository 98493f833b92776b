/**
 * The `Stores` service over sparse files: one file per volume copy, plus its meta record.
 */
import { mkdir, rm } from "node:fs/promises"
import { dirname } from "node:path"
import { Effect, Layer } from "effect"
import { StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { metaPathOf, openFileStore } from "./fileStore.ts"

export const fileStores = Stores.of({
  open: (path, sizeBytes) =>
    Effect.tryPromise({
      try: () => mkdir(dirname(path), { recursive: true }),
      catch: (cause) => new StoreError({ reason: (cause as { code?: string }).code === "ENOSPC" ? "no-space" : "io", path, message: `cannot create the directory of ${path}: ${String(cause)}`, cause }),
    }).pipe(Effect.andThen(openFileStore({ path, sizeBytes, create: true }))),
  remove: (path) =>
    Effect.tryPromise({
      try: async () => {
        await rm(path, { force: true })
        await rm(metaPathOf(path), { force: true })
      },
      catch: (cause) => new StoreError({ reason: "io", path, message: `cannot remove ${path}: ${String(cause)}`, cause }),
    }),
})

export const layerFileStores = Layer.succeed(Stores, fileStores)
