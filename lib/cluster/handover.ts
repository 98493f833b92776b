/**
 * A planned hand-over of a volume's master (`volume move`, `node drain`), both sides:
 *
 * - the target (`arm`): when a move names it, it watches the volume's record so that it takes
 *   over as soon as the record names it master (not at its next tick), then marks the move armed;
 * - the master (`handOver`): once armed, it fences its session (no write is acknowledged after
 *   this), drains its in-flight writes (each acknowledged by every in-sync replica, or its failure
 *   recorded), checks the target is still in sync, and writes — in one compare-and-swap that also
 *   deletes its master lease — the record naming the target master at the next epoch, its own
 *   copy an in-sync replica (movePlan.ts `handoverRecord`). Its copy then holds exactly what the
 *   target holds, and is hosted at once as a replica whose activity log is known and empty.
 *
 * Anything unexpected (the target fell out of sync, the drain timed out, the record changed) and
 * the hand-over is abandoned: the move is marked `abandoned` with the reason, and a master that
 * had fenced closes its session and opens a new one at its next tick (a pause, nothing lost).
 */
import { Clock, Context, Effect, Stream } from "effect"
import type { ControlStore, ControlStoreShape } from "../control/ControlStore.ts"
import { handoverDrainMs, moveHandoverMs } from "../core/limits.ts"
import type { Transport } from "../net/Transport.ts"
import type { Stores } from "../store/Stores.ts"
import { handoverRecord } from "./movePlan.ts"
import { encode, keys, type MasterLease, type VolumeRecord } from "./records.ts"
import { casAttemptsMax, getMasterLease, getVolume, updateVolume, type Versioned } from "./store.ts"
import type { Copy, Publish } from "./types.ts"

/** A target marks a move armed no sooner than this after it started watching the record. */
export const armDelayMs = 50

export interface HandoverOptions {
  readonly me: string
  readonly control: ControlStoreShape
  readonly context: Context.Context<ControlStore | Transport | Stores>
  readonly publish: Publish
  /** This process's incarnation (the old master's copy is recorded in sync with it). */
  readonly incarnation: number
  readonly closeMaster: (copy: Copy, why: string) => Effect.Effect<void>
  /** Hosts the copy as a replica (`handedOver`: its activity log starts known and empty). */
  readonly hostReplica: (copy: Copy, record: VolumeRecord, handedOver: boolean) => Effect.Effect<void>
  /** Runs the agent's next tick now. */
  readonly wake: () => void
}

export const makeHandover = (options: HandoverOptions) =>
  Effect.gen(function* () {
    const { me, control, context, publish } = options
    const clock = yield* Clock.Clock
    /** Volumes whose record this node watches as a move's target, since when (monotonic ms). */
    const watching = new Map<string, number>()
    const monotonicMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)

    /** Marks the move abandoned (with why) if it is still the one this side saw. */
    const abandon = (record: VolumeRecord, why: string) =>
      updateVolume(record.volume, (r) =>
        r.move === undefined || r.move.to !== record.move?.to || r.move.requestedAtMs !== record.move.requestedAtMs || r.move.abandoned !== undefined ? undefined : { ...r, move: { ...r.move, abandoned: why } },
      ).pipe(Effect.asVoid, Effect.tap(() => Effect.sync(() => publish("move-abandoned", `${record.volume}: the move to ${record.move?.to} was abandoned: ${why}`, record.volume))), Effect.provide(context))

    /** The target's side: watch the record (for `moveHandoverMs`), then say so. */
    const arm = (copy: Copy, record: VolumeRecord) =>
      Effect.gen(function* () {
        const move = record.move!
        const since = watching.get(record.volume)
        if (since === undefined) {
          watching.set(record.volume, monotonicMs())
          const key = keys.volume(record.volume)
          const watch = control.watch(key).pipe(
            Stream.filter((event) => event.type === "put" && event.kv.key === key),
            Stream.runForEach(() => Effect.sync(options.wake)),
            Effect.timeoutOrElse({ duration: moveHandoverMs, orElse: () => Effect.void }),
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => void watching.delete(record.volume))),
          )
          return yield* Effect.asVoid(Effect.forkIn(watch, copy.scope))
        }
        // Armed only once the watch had time to be established (etcd answers its creation
        // asynchronously): a hand-over before that would wait for the next tick.
        if (move.armed === true || monotonicMs() - since < armDelayMs) return
        yield* updateVolume(record.volume, (r) =>
          r.move?.to === me && r.move.requestedAtMs === move.requestedAtMs && r.move.armed !== true && r.move.abandoned === undefined ? { ...r, move: { ...r.move, armed: true } } : undefined,
        ).pipe(Effect.provide(context))
        publish("move-armed", `${me} is ready to take over ${record.volume} from ${record.master ?? "(none)"}`, record.volume)
      })

    /** The master's side: fence, drain, check, write the hand-over; or abandon. */
    const handOver = (copy: Copy, record: VolumeRecord, revision: number, heldAtTick: Versioned<MasterLease> | undefined, targetLease: string | undefined) =>
      Effect.gen(function* () {
        const move = record.move!
        const volume = copy.master?.volume
        if (!volume || volume.isFenced()) return
        if (move.armed !== true) {
          if (clock.currentTimeMillisUnsafe() - move.requestedAtMs > moveHandoverMs) yield* abandon(record, `${move.to} did not get ready within ${moveHandoverMs} ms`)
          return
        }
        const link = volume.links().find((l) => l.target.node === move.to)
        if (!link || !link.inSync() || !link.completed()) return yield* abandon(record, `${move.to}'s copy is not in sync with the master ${me}`)
        const startedMs = clock.currentTimeMillisUnsafe()
        volume.fence("not-master", `volume ${record.volume}: ${me} hands it over to ${move.to} (a planned move)`)
        const drained = yield* volume.drain(handoverDrainMs)
        const early = !drained ? `the in-flight writes did not drain within ${handoverDrainMs} ms`
          : volume.copyDamaged() ? `the master's own write or fdatasync failed`
          : volume.fencedReason() !== "not-master" ? `the master was fenced (${volume.fencedReason()})`
          : !link.inSync() ? `${move.to} fell out of sync during the drain`
          : undefined
        if (early !== undefined) {
          yield* abandon(record, early)
          return yield* options.closeMaster(copy, `the hand-over to ${move.to} was abandoned`)
        }
        // The session closes and the copy is hosted as a replica before the record names the
        // target master: the target's first Open then finds it (else it records it failed first).
        yield* options.closeMaster(copy, `handing over to ${move.to}`)
        if (move.dropOld !== true) yield* options.hostReplica(copy, record, true)
        // First from the tick's reading (no round trip); if the record changed since, read it again.
        for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
          const [current, held] = attempt === 0 ? [{ value: record, revision }, heldAtTick] : yield* Effect.all([getVolume(record.volume), getMasterLease(record.volume)]).pipe(Effect.provide(context))
          const why = !current ? "the volume was deleted"
            : current.value.master !== me || current.value.epoch !== record.epoch || current.value.move?.requestedAtMs !== move.requestedAtMs ? "the record changed (its master, epoch or move)"
            : !current.value.replicas.some((r) => r.node === move.to && r.state === "in-sync") ? `${move.to} is no longer recorded in sync`
            : held?.value.node !== me ? `${me} does not hold the master lease`
            : undefined
          if (why !== undefined || !current || !held) return yield* abandon(record, why ?? "the record is gone")
          const next = handoverRecord(current.value, me, options.incarnation)
          // Other fields may change meanwhile (sync progress of a third copy): read again and retry.
          // The target's master lease is written here, under the target's node lease, as it would
          // take it itself (it saves the target a round trip before it serves); without the
          // target's lease known, the lease is only released and the target takes it.
          const done = yield* control.transaction({
            compare: [{ key: keys.volume(record.volume), revision: current.revision }, { key: keys.master(record.volume), revision: held.revision }],
            put: [
              { key: keys.volume(record.volume), value: encode(next) },
              ...(targetLease === undefined ? [] : [{ key: keys.master(record.volume), value: encode({ node: move.to, epoch: next.epoch }), lease: targetLease }]),
            ],
            ...(targetLease === undefined ? { delete: [keys.master(record.volume)] } : {}),
          })
          if (!done.succeeded) continue
          publish("volume-moved", `${record.volume}: master ${me} → ${move.to} at epoch ${next.epoch} (fenced, drained and recorded in ${clock.currentTimeMillisUnsafe() - startedMs} ms)${move.dropOld === true ? `; ${me}'s copy is dropped` : `; ${me} stays an in-sync replica`}`, record.volume)
          return
        }
        yield* abandon(record, "the record kept changing while handing over")
      })

    return { arm, handOver, watching: () => watching.size > 0 }
  })
