/**
 * Where a node keeps its copies: the `Stores` service opens a block store by path.
 *
 * Real nodes use sparse files (lib/platform/fileStore.ts, `layerFileStores`); the simulator and
 * in-process tests use memory stores that outlive a simulated node crash (`layerMemoryStores`),
 * so a restarted node finds what it had flushed.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import type { BlockStore, StoreError } from "./BlockStore.ts"
import { makeMemoryStore, type MemoryStore } from "./memory.ts"

export class Stores extends Context.Service<
  Stores,
  {
    /** Opens (creating when absent) the store at `path` of exactly `sizeBytes`; closed with the scope. */
    readonly open: (path: string, sizeBytes: number) => Effect.Effect<BlockStore, StoreError, Scope.Scope>
    /** Removes the store at `path` and its meta record (a deleted volume's copy). */
    readonly remove: (path: string) => Effect.Effect<void, StoreError>
  }
>()("replivol/Stores") {}

/** Memory stores keyed by path, shared across simulated node restarts. */
export const makeMemoryStores = () => {
  const byPath = new Map<string, MemoryStore>()
  const service = Stores.of({
    open: (path, sizeBytes) =>
      Effect.sync(() => {
        let store = byPath.get(path)
        if (!store || store.sizeBytes !== sizeBytes) {
          store = makeMemoryStore(sizeBytes, { name: path })
          byPath.set(path, store)
        } else store.reopen()
        return store as BlockStore
      }),
    remove: (path) => Effect.sync(() => void byPath.delete(path)),
  })
  return { service, byPath, layer: Layer.succeed(Stores, service) }
}
