/**
 * The `Stores` service over sparse files: one file per volume copy, plus its meta record.
 */
import { rm } from "node:fs/promises"
import { Effect, Layer } from "effect"
import { StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { metaPathOf, openFileStore } from "./fileStore.ts"

export const fileStores = Stores.of({
  open: (path, sizeBytes) => openFileStore({ path, sizeBytes, create: true }),
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
