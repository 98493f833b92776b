/**
 * The API side of planned moves: `moveVolume` (a volume's master to another node) and
 * `drainNode` (everything off a node). Requests are checked first (movePlan.ts: refused with a
 * reason, nothing changes); then a move to a node without an in-sync copy places a copy there
 * and waits for its sync (with progress), writes the move and waits for the hand-over
 * (handover.ts, done by the master's and the target's agents). A drain cordons the node, then
 * moves each master away onto a fresh copy and replaces each replica (the new copy in sync
 * before the old one is dropped), one volume at a time, until the node holds nothing.
 *
 * Both run in the background (`startMove`, `startDrain`) with their progress readable through any
 * node (`moveStatus`, `drainStatus`: kept in the control store, opStatus.ts), or in the caller's
 * fiber (`moveVolume`, `drainNode`).
 */
import { Clock, Effect, Random, type Scope } from "effect"
import { ControlStore, type ControlError, type ControlStoreShape } from "../control/ControlStore.ts"
import { moveHandoverMs, moveSyncMs, relocationCopiesMax } from "../core/limits.ts"
import { topologyOf } from "./controller.ts"
import { drainSteps, holdsCopies, isInSyncReplica, masterServes, moveRefusal, withExtraReplica, type MoveView } from "./movePlan.ts"
import { attemptsFor, makeStatusWriter, readDrainStatus, readMoveStatus } from "./opStatus.ts"
import { loadOf, placeExtraCopy, type ClusterView } from "./placement.ts"
import { ClusterError, keys, type NodeConfig, type VolumeRecord } from "./records.ts"
import { getMasterLease, getVolume, listMasterLeases, listNodeConfigs, listNodes, listVolumes, updateVolume } from "./store.ts"
import type { DrainStatus, MoveStatus, NodeConfigChange, Publish } from "./types.ts"

/** Statuses this node keeps in memory per kind, of what it ran (the oldest go first); every node reads them all from the control store. */
export const moveStatusesMax = 1000
/** How often a waiting move or drain reads the records. */
export const movePollMs = 20

export interface MovesOptions {
  readonly me: string
  /** This process's incarnation (records.ts NodeRecord), stored with the statuses it writes. */
  readonly incarnation: number
  readonly control: ControlStoreShape
  readonly publish: Publish
  readonly graceMs: number
  /** Background moves and drains run in this scope (the node's). */
  readonly scope: Scope.Scope
  readonly configureNode: (name: string, change: NodeConfigChange) => Effect.Effect<NodeConfig, ClusterError | ControlError, ControlStore>
}

type MoveError = ClusterError | ControlError
/** Records an operation's progress (its status, in memory and in the control store). */
type Progress = (bytesDone: number, bytesTotal: number) => Effect.Effect<void, never, ControlStore>
type Update<A> = (change: Partial<A>) => Effect.Effect<void, never, ControlStore>

/** A stopped run's status says so: otherwise it would read as running while its node is up (and refuse the next). */
const interrupted = "interrupted: its caller stopped waiting or its node is stopping; run it again (what it finished stays done)"

const fail = (reason: ClusterError["reason"], message: string) => new ClusterError({ reason, message })

/** The records a move is decided from. */
const readView = Effect.gen(function* () {
  const [volumes, nodeRows, configs, leases] = yield* Effect.all([listVolumes, listNodes, listNodeConfigs, listMasterLeases])
  const alive = new Set(nodeRows.map((n) => n.value.name))
  const topology = topologyOf(configs)
  const view: MoveView = { alive, known: new Set([...alive, ...configs.keys()]), cordoned: topology.cordoned, masterLeased: new Set(leases.keys()) }
  const incarnations = new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation]))
  return { volumes: volumes.map((v) => v.value), view, topology, incarnations, leases }
})

export const makeMoves = (options: MovesOptions) =>
  Effect.gen(function* () {
    const { me, publish } = options
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const moves = new Map<string, MoveStatus>()
    const drains = new Map<string, DrainStatus>()
    const keep = <A>(map: Map<string, A>, key: string, value: A) => {
      map.delete(key)
      map.set(key, value)
      if (map.size > moveStatusesMax) map.delete(map.keys().next().value!)
    }

    /**
     * The status to believe: the stored one, unless it is of a run of this node, whose own status
     * is fresher (progress is stored at intervals, and a write may not have got through); this
     * node's own when nothing is stored.
     */
    const believed = <A extends { readonly runner: string }>(local: A | undefined, stored: A | undefined): A | undefined =>
      stored === undefined || stored.runner === me ? local ?? stored : stored

    const placementView = (state: Effect.Success<typeof readView>, extraCordoned?: string): Effect.Effect<ClusterView> =>
      Effect.map(Effect.forEach(Array.from({ length: 16 }), () => Random.next), (randoms) => {
        let drawn = 0
        const cordoned = new Set(state.topology.cordoned)
        if (extraCordoned !== undefined) cordoned.add(extraCordoned)
        return {
          nowMs: now(), graceMs: options.graceMs, aliveNodes: state.view.alive, masterLeased: state.view.masterLeased, load: loadOf(state.volumes),
          random: () => randoms[drawn++ % randoms.length]!, topology: { ...state.topology, cordoned }, incarnations: state.incarnations,
        }
      })

    /** Waits until `node`'s copy of the volume is in sync (reporting its sync progress); fails if the master changes. */
    const awaitInSync = (volume: string, node: string, master: string | undefined, progress: Progress) =>
      Effect.gen(function* () {
        const deadline = now() + moveSyncMs
        for (;;) {
          const state = yield* readView
          const record = state.volumes.find((v) => v.volume === volume)
          if (!record) return yield* fail("not-found", `volume ${volume} was deleted while its copy on ${node} synced`)
          if (record.master !== master) return yield* fail("conflict", `the master of ${volume} changed (${master ?? "(none)"} → ${record.master ?? "(none)"}) while its copy on ${node} synced; run it again`)
          const replica = record.replicas.find((r) => r.node === node)
          if (!replica) return yield* fail("conflict", `the copy of ${volume} on ${node} was dropped while it synced`)
          if (isInSyncReplica(record, node, state.incarnations)) return record
          yield* progress(replica.bytesDone ?? 0, replica.bytesTotal ?? 0)
          if (now() > deadline) return yield* fail("timeout", `the copy of ${volume} on ${node} is not in sync after ${moveSyncMs} ms (${replica.state}${replica.reason ? `: ${replica.reason}` : ""})`)
          yield* Effect.sleep(movePollMs * 5)
        }
      })

    /**
     * Places an extra copy of the volume on `node` unless it has one (the master must still be
     * `master`, no move pending, and no other extra copy there: at most `relocationCopiesMax`
     * beyond the replica count). Two drains at once each placed one: the second replaced the
     * first one's new copy, the first then failed, and the volume kept a replica more than it
     * asked for (cluster simulator, cluster-moves seed 10).
     */
    const addCopy = (volume: string, node: string, master: string | undefined) =>
      updateVolume(volume, (r) => {
        if (r.master !== master || r.move !== undefined && r.move.abandoned === undefined) return fail("conflict", `volume ${volume} changed (its master or a move) before a copy could be placed on ${node}; run it again`)
        if (r.replicas.some((x) => x.node === node)) return undefined
        if (r.replicas.length >= r.spec.replicas + relocationCopiesMax) {
          return fail("conflict", `volume ${volume} already has ${r.replicas.length} copies besides its master for ${r.spec.replicas} replicas (another move or drain is syncing one, or a lowered replica count is being applied); run it again once that is done; nothing was changed`)
        }
        return withExtraReplica(r, node)
      })

    /** Drops the copy on `node` again (a move or drain that failed after placing it), if nothing else changed. */
    const dropCopy = (volume: string, node: string) =>
      Effect.ignore(updateVolume(volume, (r) => (r.replicas.some((x) => x.node === node) && r.master !== node ? { ...r, replicas: r.replicas.filter((x) => x.node !== node) } : undefined)))

    /** Writes the move and waits for the hand-over: done when `to` serves at a higher epoch; an abandoned move fails with its reason. */
    const handOver = (record: VolumeRecord, to: string, dropOld: boolean) =>
      Effect.gen(function* () {
        const requestedAtMs = now()
        yield* updateVolume(record.volume, (r) => {
          if (r.master !== record.master || r.epoch !== record.epoch) return fail("conflict", `the master of ${r.volume} changed before the hand-over; run it again`)
          if (r.move !== undefined && r.move.abandoned === undefined) return fail("conflict", `a move of ${r.volume} to ${r.move.to} is in progress`)
          if (!r.replicas.some((x) => x.node === to && x.state === "in-sync")) return fail("conflict", `${to} fell out of sync before the hand-over; run it again`)
          return { ...r, move: { to, requestedAtMs, ...(dropOld ? { dropOld: true } : {}) } }
        })
        publish("move-requested", `${record.volume}: move of its master ${record.master} to ${to} requested${dropOld ? ` (${record.master}'s copy is dropped after)` : ""}`, record.volume)
        const clear = (r: VolumeRecord) => (r.move?.requestedAtMs === requestedAtMs ? (({ move: _m, ...rest }) => rest)(r) : undefined)
        const deadline = now() + moveHandoverMs + 5000
        for (;;) {
          yield* Effect.sleep(movePollMs)
          const found = yield* getVolume(record.volume)
          if (!found) return yield* fail("not-found", `volume ${record.volume} was deleted during its move`)
          const r = found.value
          if (r.master === to && r.epoch > record.epoch) {
            const lease = yield* getMasterLease(record.volume)
            if (lease?.value.node === to && lease.value.epoch === r.epoch) return r
            if (now() > deadline) return yield* fail("timeout", `${to} is recorded master of ${record.volume} but does not serve yet after ${moveHandoverMs} ms; it will, or a failover follows (replivol volume inspect ${record.volume})`)
            continue
          }
          if (r.move?.requestedAtMs === requestedAtMs && r.move.abandoned !== undefined) {
            yield* Effect.ignore(updateVolume(record.volume, clear))
            return yield* fail("conflict", `the move of ${record.volume} to ${to} was abandoned by its master ${record.master}: ${r.move.abandoned}; the volume serves on from ${record.master}`)
          }
          if (r.master !== record.master) return yield* fail("conflict", `the master of ${record.volume} changed to ${r.master ?? "(none)"} during the move (a failover?)`)
          if (r.move?.requestedAtMs !== requestedAtMs) return yield* fail("conflict", `the move of ${record.volume} was cleared by someone else`)
          if (now() > deadline) {
            yield* Effect.ignore(updateVolume(record.volume, clear))
            return yield* fail("timeout", `the hand-over of ${record.volume} to ${to} did not happen within ${moveHandoverMs} ms; the move was cancelled, ${record.master} serves on`)
          }
        }
      })

    /** Checks a move against the records: the record and whether `to` needs a new copy, or the refusal. */
    const checkMove = (volume: string, to: string) =>
      Effect.gen(function* () {
        const state = yield* readView
        const record = state.volumes.find((v) => v.volume === volume)
        if (!record) return yield* fail("not-found", `volume ${volume} does not exist`)
        const refused = moveRefusal(record, to, state.view)
        if (refused) return yield* refused
        const running = believed(moves.get(volume), yield* readMoveStatus(volume))
        if (running !== undefined && (running.state === "copying" || running.state === "handing-over")) {
          return yield* fail("conflict", `cannot move ${volume} to ${to}: its move to ${running.to} (run by ${running.runner}) is in progress; nothing was changed`)
        }
        return { record, inSync: isInSyncReplica(record, to, state.incarnations) }
      })

    const moveChecked = (checked: { readonly record: VolumeRecord; readonly inSync: boolean }, to: string, update: Update<MoveStatus>, forceDropOld = false) =>
      Effect.gen(function* () {
        const { record } = checked
        let current = record
        const newCopy = !record.replicas.some((r) => r.node === to)
        if (!checked.inSync) {
          if (newCopy) yield* addCopy(record.volume, to, record.master)
          yield* update({ state: "copying", newCopy })
          publish("move-copying", `${record.volume}: ${newCopy ? "placing a copy on" : "waiting for the copy on"} ${to} to sync before its master moves there`, record.volume)
          current = yield* awaitInSync(record.volume, to, record.master, (bytesDone, bytesTotal) => update({ bytesDone, bytesTotal })).pipe(
            Effect.tapError(() => (newCopy ? dropCopy(record.volume, to) : Effect.void)),
          )
        }
        yield* update({ state: "handing-over" })
        const moved = yield* handOver(current, to, newCopy || forceDropOld).pipe(Effect.tapError(() => (newCopy ? dropCopy(record.volume, to) : Effect.void)))
        yield* update({ state: "done", epoch: moved.epoch, finishedAtMs: now() })
        return moved
      })

    /**
     * A checked move, run with its status kept (in memory, in the control store, and passed to
     * `onProgress` at each change); its first status is stored before this returns.
     */
    const runMove = (checked: Effect.Success<ReturnType<typeof checkMove>>, to: string, onProgress?: (status: MoveStatus) => void) =>
      Effect.gen(function* () {
        const volume = checked.record.volume
        const write = yield* makeStatusWriter<MoveStatus>(keys.moveStatus(volume), options.incarnation)
        let status: MoveStatus = { volume, runner: me, from: checked.record.master, to, state: checked.inSync ? "handing-over" : "copying", newCopy: false, bytesDone: 0, bytesTotal: 0, startedAtMs: now() }
        const set = (change: Partial<MoveStatus>, attemptsMax?: number) =>
          Effect.suspend(() => {
            status = { ...status, ...change }
            keep(moves, volume, status)
            onProgress?.(status)
            return write(status, attemptsMax ?? attemptsFor(status.state))
          })
        const update: Update<MoveStatus> = (change) => set(change)
        yield* update({})
        const run = moveChecked(checked, to, update).pipe(
          Effect.map(() => status),
          Effect.tapError((e) => update({ state: "failed", error: e.message, finishedAtMs: now() })),
          // Few tries: the node may be stopping (a reader then sees its runner gone anyway).
          Effect.onInterrupt(() => set({ state: "failed", error: interrupted, finishedAtMs: now() }, 1)),
        )
        return { first: status, run }
      })

    /** Moves the master; `onProgress` sees each status change. */
    const moveVolume = (volume: string, to: string, onProgress?: (status: MoveStatus) => void) =>
      Effect.flatMap(checkMove(volume, to), (checked) => Effect.flatMap(runMove(checked, to, onProgress), (started) => started.run))

    /** Replaces the replica on `node` with a copy on `to`: the new copy in sync before the old one is dropped. */
    const replaceReplica = (volume: string, node: string, to: string, progress: Progress) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* fail("not-found", `volume ${volume} does not exist`)
        const master = found.value.master
        yield* addCopy(volume, to, master)
        publish("replica-moving", `${volume}: replacing its replica on ${node} with a copy on ${to}`, volume)
        yield* awaitInSync(volume, to, master, progress).pipe(Effect.tapError(() => dropCopy(volume, to)))
        yield* updateVolume(volume, (r) => {
          if (!r.replicas.some((x) => x.node === to && x.state === "in-sync")) return fail("conflict", `the new copy of ${volume} on ${to} fell out of sync; run the drain again`)
          return { ...r, replicas: r.replicas.filter((x) => x.node !== node) }
        })
        publish("replica-moved", `${volume}: its replica on ${node} is replaced by the in-sync copy on ${to}`, volume)
      })

    /** Why draining `name` is refused, or the volumes to move with a destination each. */
    const checkDrain = (name: string) =>
      Effect.gen(function* () {
        const state = yield* readView
        if (!state.view.known.has(name)) return yield* fail("not-found", `cannot drain ${name}: node ${name} is not known to this cluster (see replivol node ls); nothing was changed`)
        const running = believed(drains.get(name), yield* readDrainStatus(name))
        if (running?.state === "draining") return yield* fail("conflict", `node ${name} is already draining (run by ${running.runner}; GET /v1/nodes/${name}/drain on any node shows its progress); nothing was changed`)
        const view = yield* placementView(state, name)
        for (const step of drainSteps(state.volumes, name)) {
          const record = state.volumes.find((v) => v.volume === step.volume)!
          if (step._tag === "move-master" && !masterServes(record, state.view)) {
            return yield* fail("no-master", `cannot drain ${name}: its volume ${record.volume} has no serving master to move (${record.unavailableReason ?? "its master is not up"}); try again once it serves; nothing was changed`)
          }
          if (record.move !== undefined && record.move.abandoned === undefined) return yield* fail("conflict", `cannot drain ${name}: a move of ${record.volume} is in progress; nothing was changed`)
          if (placeExtraCopy(record, view, new Set([name])) === undefined) {
            const held = [record.master, ...record.replicas.map((r) => r.node)].filter((n) => n !== undefined).join(", ")
            return yield* fail("too-few-nodes", `cannot drain ${name}: nowhere to put the copy of ${record.volume} it holds — every other node that is up and uncordoned already holds one (copies on ${held}); add or uncordon a node; nothing was changed`)
          }
        }
        return drainSteps(state.volumes, name)
      })

    const drainChecked = (name: string, steps: ReturnType<typeof drainSteps>, update: Update<DrainStatus>) =>
      Effect.gen(function* () {
        yield* options.configureNode(name, { cordoned: true })
        publish("node-draining", `${name} is cordoned and drains: ${steps.length} volume${steps.length === 1 ? "" : "s"} to move`)
        let done = 0
        for (const step of steps) {
          const state = yield* readView
          const record = state.volumes.find((v) => v.volume === step.volume)
          if (record && holdsCopies([record], name).length > 0) {
            const to = placeExtraCopy(record, yield* placementView(state, name), new Set([name]))
            if (to === undefined) return yield* fail("too-few-nodes", `nowhere to put the copy of ${record.volume} that ${name} holds (every other uncordoned node that is up holds one); ${done} of ${steps.length} volumes moved, ${name} stays cordoned`)
            const progress: Progress = (bytesDone, bytesTotal) => update({ current: { volume: record.volume, action: record.master === name ? "move-master" : "replace-replica", to, bytesDone, bytesTotal } })
            yield* progress(0, 0)
            if (record.master === name) {
              const checked = yield* checkMove(record.volume, to)
              yield* moveChecked(checked, to, (s) => progress(s.bytesDone ?? 0, s.bytesTotal ?? 0), true)
            } else yield* replaceReplica(record.volume, name, to, progress)
          }
          done++
          yield* update({ volumesDone: done })
        }
        const left = holdsCopies((yield* readView).volumes, name)
        if (left.length > 0) return yield* fail("conflict", `${name} still holds copies of ${left.join(", ")} (placed there meanwhile?); run the drain again`)
        publish("node-drained", `${name} is drained: it holds no copy and stays cordoned`)
      })

    /**
     * A checked drain, run with its status kept (in memory, in the control store, and passed to
     * `onProgress` at each change); its first status is stored before this returns.
     */
    const runDrain = (name: string, steps: ReturnType<typeof drainSteps>, onProgress?: (status: DrainStatus) => void) =>
      Effect.gen(function* () {
        const write = yield* makeStatusWriter<DrainStatus>(keys.drainStatus(name), options.incarnation)
        let status: DrainStatus = { node: name, runner: me, state: "draining", volumesTotal: steps.length, volumesDone: 0, startedAtMs: now() }
        const set = (next: DrainStatus, attemptsMax?: number) =>
          Effect.suspend(() => {
            status = next
            keep(drains, name, status)
            onProgress?.(status)
            return write(status, attemptsMax ?? attemptsFor(status.state))
          })
        const update: Update<DrainStatus> = (change) => Effect.suspend(() => set({ ...status, ...change }))
        yield* update({})
        const run = drainChecked(name, steps, update).pipe(
          Effect.flatMap(() =>
            Effect.suspend(() => {
              const { current: _c, ...rest } = status
              return Effect.as(set({ ...rest, state: "done", finishedAtMs: now() }), status)
            })),
          Effect.map(() => status),
          Effect.tapError((e) => update({ state: "failed", error: e.message, finishedAtMs: now() })),
          Effect.onInterrupt(() => Effect.suspend(() => set({ ...status, state: "failed", error: interrupted, finishedAtMs: now() }, 1))),
        )
        return { first: status, run }
      })

    /** Drains the node; `onProgress` sees each status change. */
    const drainNode = (name: string, onProgress?: (status: DrainStatus) => void) =>
      Effect.flatMap(checkDrain(name), (steps) => Effect.flatMap(runDrain(name, steps, onProgress), (started) => started.run))

    /** Runs `effect` in the node's scope (it outlives the request that started it). */
    const inBackground = (effect: Effect.Effect<unknown, MoveError, ControlStore>) =>
      Effect.flatMap(Effect.context<ControlStore>(), (context) => Effect.asVoid(Effect.forkIn(Effect.ignore(effect.pipe(Effect.provide(context))), options.scope)))

    /** Checks the move, starts it in the background and returns its first status. */
    const startMove = (volume: string, to: string) =>
      Effect.gen(function* () {
        const started = yield* runMove(yield* checkMove(volume, to), to)
        yield* inBackground(started.run)
        return started.first
      })

    /** Checks the drain, starts it in the background and returns its first status. */
    const startDrain = (name: string) =>
      Effect.gen(function* () {
        const started = yield* runDrain(name, yield* checkDrain(name))
        yield* inBackground(started.run)
        return started.first
      })

    /** The running or last move of the volume, whichever node runs it. */
    const moveStatus = (volume: string) =>
      Effect.flatMap(readMoveStatus(volume), (stored) => {
        const status = believed(moves.get(volume), stored)
        if (status) return Effect.succeed(status)
        return Effect.flatMap(getVolume(volume), (found) =>
          Effect.fail(fail("not-found", found ? `no move of ${volume} was started since it was created (replivol volume move ${volume} --to NODE starts one)` : `volume ${volume} does not exist`)))
      })
    /** The running or last drain of the node, whichever node runs it. */
    const drainStatus = (name: string) =>
      Effect.flatMap(readDrainStatus(name), (stored) => {
        const status = believed(drains.get(name), stored)
        return status ? Effect.succeed(status) : Effect.fail(fail("not-found", `no drain of ${name} was started (replivol node drain ${name} starts one)`))
      })

    return { moveVolume, startMove, moveStatus, drainNode, startDrain, drainStatus }
  })
