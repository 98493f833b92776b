/**
 * The node agent's open copies of volumes: opening one for a record (discarding a copy a deleted
 * volume of the same name left), closing one with its master role, fencing every master, and
 * sweeping copies no record places on this node.
 */
import { Clock, Effect, Exit, Scope } from "effect"
import type { ControlStoreShape } from "../control/ControlStore.ts"
import type { ReplivolNode } from "../node/node.ts"
import type { BlockStore } from "../store/BlockStore.ts"
import type { Stores } from "../store/Stores.ts"
import { keys, uidOf, type VolumeRecord } from "./records.ts"
import type { Copy, Publish } from "./types.ts"

export interface CopiesOptions {
  readonly me: string
  readonly node: ReplivolNode
  readonly control: ControlStoreShape
  readonly stores: Stores["Service"]
  /** Copies live in this scope (the node's). */
  readonly nodeScope: Scope.Scope
  readonly publish: Publish
}

export const closeScope = (scope: Scope.Closeable) => Scope.close(scope, Exit.void)

export const makeCopies = (options: CopiesOptions) => {
  const { me, node, control, stores, nodeScope, publish } = options
  const copies = new Map<string, Copy>()

  const closeMaster = (copy: Copy, why: string) =>
    Effect.gen(function* () {
      const role = copy.master
      if (!role) return
      copy.master = undefined
      role.volume?.fence("not-master", `volume ${copy.volume}: ${why}`)
      yield* closeScope(role.scope)
      publish("master-closed", `${me} stopped serving ${copy.volume} as master: ${why}`, copy.volume)
    })

  const closeCopy = (name: string, remove: boolean) =>
    Effect.gen(function* () {
      const copy = copies.get(name)
      if (!copy) return
      copies.delete(name)
      yield* closeMaster(copy, "the copy was closed")
      yield* closeScope(copy.scope)
      if (remove) yield* Effect.ignore(stores.remove(node.storePath(name)))
    })

  const fenceAll = (why: string) =>
    Effect.forEach([...copies.values()], (copy) => closeMaster(copy, why), { discard: true })

  const openCopyScoped = (record: VolumeRecord) =>
    Effect.gen(function* () {
      const scope = yield* Scope.fork(nodeScope)
      const store = yield* node.openCopy(record.volume, record.sizeBytes).pipe(Scope.provide(scope), Effect.onError(() => closeScope(scope)))
      return { scope, store }
    })
  const registerCopy = (record: VolumeRecord, opened: { readonly scope: Scope.Closeable; readonly store: BlockStore }) => {
    const copy: Copy = { volume: record.volume, uid: uidOf(record), sizeBytes: record.sizeBytes, ...opened, servedHere: false, suspect: false, recordedInSync: false, replicaScope: undefined, master: undefined }
    copies.set(record.volume, copy)
    return copy
  }

  /** Opens this node's copy of the record's volume; a copy left by another volume of the same name is discarded first. */
  const ensureCopy = (record: VolumeRecord) =>
    Effect.gen(function* () {
      const existing = copies.get(record.volume)
      // The same volume instance: the copy stays open whatever the record's size says now (an
      // online resize grows the open copy; it is never reopened, let alone at another size).
      if (existing && existing.uid === uidOf(record)) return existing
      // The volume was deleted and created again between two ticks (this node may even be its
      // master again, at the same epoch): the open copy is the old volume's. It goes, with its
      // master or replica role, before the new volume's copy is opened. Found by the cluster
      // simulator (seed 49: the old master kept serving the re-created volume, old size and data).
      if (existing) yield* closeCopy(record.volume, true)
      const first = yield* openCopyScoped(record)
      const meta = yield* Effect.result(first.store.readMeta)
      const foreign = meta._tag === "Success" && meta.success?.uid !== undefined && meta.success.uid !== uidOf(record)
      if (!foreign) return registerCopy(record, yield* recordedEmpty(record, first, meta._tag === "Success" && meta.success === undefined))
      yield* closeScope(first.scope)
      yield* stores.remove(node.storePath(record.volume))
      publish("copy-discarded", `${me}: the copy of ${record.volume} belonged to volume id ${(meta as { success: { uid: string } }).success.uid}, not ${uidOf(record)} (deleted and created again while ${me} was away); removed`, record.volume)
      return registerCopy(record, yield* recordedEmpty(record, yield* openCopyScoped(record), true))
    })

  /**
   * A copy this open created, with no record yet, is recorded `empty` for the volume's id at once
   * (durable, atomic), as a replica's host does: closed and opened again before it was ever used,
   * it still proves it holds only zeros. Without the record it read back as a copy of unknown
   * content, and a new volume's master whose copy was made while it waited (its node had come back
   * with a wiped disk) waited for good (cluster simulator sweep seed 6597). A master or a sync
   * rewrites the record before the first write.
   */
  const recordedEmpty = <T extends { readonly scope: Scope.Closeable; readonly store: BlockStore }>(record: VolumeRecord, opened: T, noRecord: boolean) =>
    Effect.gen(function* () {
      if (!noRecord || opened.store.createdEmpty !== true) return opened
      const updatedAtMs = yield* Clock.currentTimeMillis
      yield* opened.store.writeMeta({
        volume: record.volume, sizeBytes: opened.store.sizeBytes, epoch: 0, role: record.master === me ? "master" : "replica", state: "empty", updatedAtMs, uid: uidOf(record),
      }).pipe(Effect.onError(() => closeScope(opened.scope)))
      return opened
    })

  /**
   * Removes copies on this node's disk that no record places here (a volume deleted, or its copy
   * replaced, while the node was away). A copy whose name a record places here but whose volume
   * id differs is discarded when it is opened (`ensureCopy`), never by name alone.
   */
  const sweepUnclaimed = (volumes: ReadonlyArray<VolumeRecord>) =>
    Effect.gen(function* () {
      if (!stores.list) return
      // Only against a control store that can claim: every volume record readable, and at least
      // one (an empty or foreign store — a lost snapshot, a wrong etcd — must not empty the disk).
      const raw = yield* control.list(keys.volumes)
      if (raw.length !== volumes.length || volumes.length === 0) return
      const claimed = new Set([...copies.keys(), ...volumes.filter((v) => v.master === me || v.replicas.some((r) => r.node === me)).map((v) => v.volume)].map(node.storePath))
      for (const path of yield* stores.list(node.copiesDir)) {
        if (claimed.has(path)) continue
        yield* Effect.ignore(stores.remove(path))
        publish("copy-removed", `${me}: removed ${path}: no volume record places a copy on ${me}`)
      }
    })

  return { copies: copies as ReadonlyMap<string, Copy>, closeMaster, closeCopy, fenceAll, ensureCopy, sweepUnclaimed }
}

export type Copies = ReturnType<typeof makeCopies>
