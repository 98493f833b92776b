/**
 * The master volumes open on a node, by name, and a bounded wait for one to start.
 *
 * A client locates a volume's master in the control store (node and epoch) and opens a session
 * there. The record names a node before that node's master serves (a planned hand-over's target,
 * a promoted replica, a new volume), so a client often arrives early. Refusing it sends it back
 * to its retry backoff — tens of milliseconds more pause for nothing; instead its Open waits (at
 * most `clientOpenWaitMs`) for the master of its epoch. It is refused at once when this node
 * cannot become that master any more: a master of that epoch or a newer one was closed here, or
 * one of a newer epoch serves.
 */
import { Deferred, Effect } from "effect"
import { clientOpenWaitMs } from "../core/limits.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"

/** Volumes whose closed epoch is remembered; beyond this the memory starts again (a wait then only lasts its bound). */
const closedEpochsMax = 4096

export interface MasterDirectory {
  readonly get: (volume: string) => MasterVolume | undefined
  readonly all: () => ReadonlyMap<string, MasterVolume>
  /** Adds a master that serves; returns its removal (called when its session closes). */
  readonly add: (volume: string, master: MasterVolume) => () => void
  /** The master of `volume` at `epoch`, waiting while it may still start here (module comment). */
  readonly awaitMaster: (volume: string, epoch: number) => Effect.Effect<MasterVolume | undefined>
}

export const makeMasterDirectory = (waitMs: number = clientOpenWaitMs): MasterDirectory => {
  const masters = new Map<string, MasterVolume>()
  /** The newest epoch whose master closed here, per volume. */
  const closedEpochs = new Map<string, number>()
  /** Completed (and replaced) at every change of `masters`. */
  let changed = Deferred.makeUnsafe<void>()
  const signal = () => {
    const done = changed
    changed = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(done, Effect.void)
  }

  const add = (volume: string, master: MasterVolume) => {
    masters.set(volume, master)
    signal()
    return () => {
      if (masters.get(volume) !== master) return
      masters.delete(volume)
      if (closedEpochs.size >= closedEpochsMax) closedEpochs.clear()
      closedEpochs.set(volume, Math.max(closedEpochs.get(volume) ?? 0, master.epoch))
      signal()
    }
  }

  /** `done`: the answer now; `wait`: it may still start here. */
  const lookup = (volume: string, epoch: number): { readonly done: true; readonly master: MasterVolume | undefined } | { readonly done: false } => {
    const master = masters.get(volume)
    if (master !== undefined && master.epoch === epoch) return { done: true, master }
    if (master !== undefined && master.epoch > epoch) return { done: true, master: undefined }
    if ((closedEpochs.get(volume) ?? 0) >= epoch) return { done: true, master: undefined }
    return { done: false }
  }

  const awaitMaster = (volume: string, epoch: number): Effect.Effect<MasterVolume | undefined> =>
    Effect.gen(function* () {
      for (;;) {
        const found = lookup(volume, epoch)
        if (found.done) return found.master
        yield* Deferred.await(changed)
      }
    }).pipe(Effect.timeoutOrElse({ duration: waitMs, orElse: () => Effect.succeed(undefined) }))

  return { get: (volume) => masters.get(volume), all: () => masters, add, awaitMaster }
}
