/**
 * Where a node keeps its copies: the `Stores` service opens a block store by path.
 *
 * Real nodes use sparse files (lib/platform/fileStore.ts, `layerFileStores`); the simulator and
 * in-process tests use memory stores that outlive a simulated node crash (`layerMemoryStores`),
 * so a restarted node finds what it had flushed.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { wrapStore, type BlockStore, type StoreError } from "./BlockStore.ts"
import { makeMemoryStore, type MemoryStore } from "./memory.ts"
import type { CopyMarkers } from "./continuity.ts"

export class Stores extends Context.Service<
  Stores,
  {
    /**
     * Opens (creating when absent) the store at `path` of at least `sizeBytes`, closed with the
     * scope: a smaller copy (one that missed a resize) is grown to `sizeBytes`, zeros past its old
     * end; a bigger one is opened at its own size, never truncated.
     */
    readonly open: (path: string, sizeBytes: number) => Effect.Effect<BlockStore, StoreError, Scope.Scope>
    /** Removes the store at `path` and its meta record (a deleted volume's copy). */
    readonly remove: (path: string) => Effect.Effect<void, StoreError>
    /** The paths of every store under `dir` (for removing copies no record claims); absent: not supported. */
    readonly list?: (dir: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
    /** Boot-scoped continuity markers beside the copies (lib/store/continuity.ts); absent: a restarted copy never continues. */
    readonly markers?: CopyMarkers
  }
>()("replivol/Stores") {}

/**
 * Memory stores keyed by path, shared across simulated node restarts. Their continuity markers
 * (`markerByPath`) survive a restart too; whoever simulates a power loss deletes them.
 */
export const makeMemoryStores = () => {
  const byPath = new Map<string, MemoryStore>()
  const markerByPath = new Map<string, string>()
  const markers: CopyMarkers = {
    read: (path) => Effect.sync(() => markerByPath.get(path)),
    write: (path, text) => Effect.sync(() => void markerByPath.set(path, text)),
    remove: (path) => Effect.sync(() => void markerByPath.delete(path)),
  }
  const service = Stores.of({
    open: (path, sizeBytes) =>
      Effect.suspend(() => {
        let store = byPath.get(path)
        const createdEmpty = !store
        if (!store) {
          store = makeMemoryStore(sizeBytes, { name: path })
          byPath.set(path, store)
        } else store.reopen()
        const opened = store
        // The same store, told whether this open created it (the memory store itself is reused across opens).
        const grown = opened.sizeBytes < sizeBytes ? opened.grow(sizeBytes) : Effect.void
        return Effect.as(grown, wrapStore(opened, { createdEmpty }))
      }),
    remove: (path) => Effect.sync(() => void (byPath.delete(path), markerByPath.delete(path))),
    list: (dir) => Effect.sync(() => [...byPath.keys()].filter((path) => path.startsWith(`${dir}/`))),
    markers,
  })
  return { service, byPath, markerByPath, layer: Layer.succeed(Stores, service) }
}
