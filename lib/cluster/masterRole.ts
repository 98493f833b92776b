/**
 * The node agent's master side of a volume: opening the master session on its copy (from a
 * replica role, handing over its activity log), recording its replicas' failures, sync progress
 * and in-sync transitions in the volume record, stepping down, and executing `planLinks`.
 */
import { Clock, Context, Effect, Scope } from "effect"
import type { ControlStore, ControlStoreShape } from "../control/ControlStore.ts"
import type { Transport } from "../net/Transport.ts"
import type { ReplivolNode } from "../node/node.ts"
import type { ReplicaPlan } from "../replication/masterVolume.ts"
import { LinkFailure } from "../replication/replicaLink.ts"
import type { Stores } from "../store/Stores.ts"
import { noteSeen, noteSession, overruled, planLinks, type LinkAction, type Target } from "./agentPlan.ts"
import { closeScope } from "./copies.ts"
import { ClusterError, encode, keepingFormerMark, keys, uidOf, type MasterLease, type NodeRecord, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import { getMasterLease, getNode, updateVolumeVersioned, type Versioned } from "./store.ts"
import { growForMaster, resizeStep } from "./resize.ts"
import type { Copy, MasterRole, Publish } from "./types.ts"
import type { VolumeCipher } from "../crypt/volumeCipher.ts"

export interface MasterRolesOptions {
  readonly me: string
  readonly node: ReplivolNode
  readonly control: ControlStoreShape
  readonly context: Context.Context<ControlStore | Transport | Stores>
  readonly publish: Publish
  readonly leaseValid: () => boolean
  readonly closeMaster: (copy: Copy, why: string) => Effect.Effect<void>
  readonly resyncShare?: number
}

/** What a replica-state change needs of the link it was made for: a refused one fails it. */
type FailableLink = { readonly state: () => string; readonly fail: (failure: LinkFailure) => void }

export const targetOf = (name: string, nodes: ReadonlyMap<string, NodeRecord>): Target | undefined => {
  const record = nodes.get(name)
  return record ? { node: name, address: { host: record.host, port: record.port } } : undefined
}

export const makeMasterRoles = (options: MasterRolesOptions) =>
  Effect.gen(function* () {
    const { me, node, control, context, publish, leaseValid, closeMaster } = options
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()

    const markReplica = (volume: string, epoch: number, replicaNode: string, change: (r: ReplicaRecord, revision: number) => ReplicaRecord) =>
      updateVolumeVersioned(volume, (record, revision) => {
        if (record.master !== me || record.epoch !== epoch) return new ClusterError({ reason: "conflict", message: `volume ${volume}: ${me} is no longer its master at epoch ${epoch}` })
        let changed = false
        const replicas = record.replicas.map((r) => {
          if (r.node !== replicaNode) return r
          // A former master's entry stays marked (records.ts `formerMaster`): the controller drops it once this master serves.
          const next = keepingFormerMark(r, change(r, revision))
          changed ||= JSON.stringify(next) !== JSON.stringify(r)
          return next
        })
        return changed ? { ...record, replicas } : undefined
      }).pipe(Effect.provide(context))

    /**
     * Records a replica in sync (while `stillInSync`), with the incarnation of the replica's process
     * its link is attached to (records.ts `syncedIncarnation`; ReplicaLink `incarnation`). Not its node record read now:
     * a replica that lost power just after the sync, and registered again before this record was
     * written, would vouch for a copy that lost the writes it acknowledged since (its link is still
     * reconnecting, so in sync). A replica that does not tell (an older version) gets its node's
     * incarnation read now.
     */
    const markInSync = (role: MasterRole, volume: string, epoch: number, replicaNode: string, stillInSync: () => boolean, answered: number | undefined, link?: FailableLink) =>
      Effect.gen(function* () {
        const incarnation = answered ?? (yield* getNode(replicaNode).pipe(Effect.provide(context)))?.incarnation
        yield* markInSession(role, volume, epoch, replicaNode, stillInSync, (r) =>
          stillInSync() ? { node: r.node, state: "in-sync", syncedEpoch: epoch, ...(incarnation === undefined ? {} : { syncedIncarnation: incarnation }) } : undefined, link)
      })

    /**
     * A replica-state change this master makes during its link's session (`live`: the session
     * still runs), conditioned on the entry it replaces as the compare-and-swap reads it: never
     * over one `overruled` (a failure someone else wrote since the session began); `link`, when
     * given, is failed for it (and revived by a later tick; the copy's answer decides delta or
     * full). An entry the compare-and-swap left or wrote not failed counts as seen in the session
     * (MasterRole `seenUnfailed`), so a failure written after it is overruled even before the next
     * tick reads the record.
     */
    const markInSession = (role: MasterRole, volume: string, epoch: number, replicaNode: string, live: () => boolean, change: (r: ReplicaRecord) => ReplicaRecord | undefined, link?: FailableLink) =>
      Effect.gen(function* () {
        const final = yield* markReplica(volume, epoch, replicaNode, (r, revision) => (overruled(r, revision, role.seenUnfailed) ? r : change(r) ?? r))
        const entry = final.value.replicas.find((r) => r.node === replicaNode)
        if (entry === undefined) return
        if (!overruled(entry, final.revision, role.seenUnfailed)) {
          if (entry.state !== "failed" && live()) noteSeen(role.seenUnfailed, replicaNode, final.revision)
        } else if (link !== undefined && link.state() !== "failed") {
          link.fail(new LinkFailure("overruled", `replica ${replicaNode} was recorded failed while its link's session ran (${entry.reason ?? "no reason given"}); it is revived, not marked in sync over that`))
        }
      })

    /**
     * Marks this node's master lease of the record's epoch serving (records.ts `MasterLease`), by a
     * compare-and-swap that keeps the lease it is bound to; a lease of another node or epoch, or
     * one already marked, is left as it is. The agent repeats it each tick until it is marked.
     */
    const noteServing = (record: VolumeRecord) =>
      Effect.gen(function* () {
        const held = yield* getMasterLease(record.volume).pipe(Effect.provide(context))
        if (!held || held.value.node !== me || held.value.epoch !== record.epoch || held.value.serving === true || held.lease === undefined) return
        yield* control.transaction({
          compare: [{ key: keys.master(record.volume), revision: held.revision }],
          put: [{ key: keys.master(record.volume), value: encode({ ...held.value, serving: true }), lease: held.lease }],
        })
      })

    /** Opens the master session; `cipher`: an encrypted volume's, unwrapped by the agent before it claimed the role. */
    const openMaster = (copy: Copy, record: VolumeRecord, nodes: ReadonlyMap<string, NodeRecord>, cipher: VolumeCipher | undefined) =>
      Effect.gen(function* () {
        let ownActivity: ReadonlyArray<readonly [number, number]> | "all" = "all"
        // Promoted from its replica role by a planned hand-over of this epoch (its activity log known):
        // the previous session drained onto every in-sync copy, nothing to reconcile.
        const drained = record.handover?.epoch === record.epoch && copy.replicaScope !== undefined && node.replicaActivity(record.volume) !== "all"
        if (copy.replicaScope) {
          // A replica copy damaged since the agent noted it in sync no longer counts so, should this open fail.
          if (node.replicaDamaged(record.volume)) copy.recordedInSync = false
          ownActivity = node.detachReplica(record.volume)
          yield* closeScope(copy.replicaScope)
          copy.replicaScope = undefined
        }
        const scope = yield* Scope.fork(copy.scope)
        const role: MasterRole = { scope, epoch: record.epoch, volume: undefined, busy: new Set(), reviveAtMs: new Map(), progressAtMs: 0, seenUnfailed: new Map() }
        copy.master = role
        const plans: ReplicaPlan[] = []
        for (const r of record.replicas) {
          const target = targetOf(r.node, nodes) ?? { node: r.node, address: { host: "0.0.0.0", port: 0 } }
          plans.push({ target, recorded: r.state === "in-sync" ? "in-sync" : "needs-sync" })
        }
        publish("master-opening", `${me} opens ${record.volume} as master at epoch ${record.epoch}`, record.volume)
        // A resize pending: the copy grows to the target first, so its replicas are opened at the
        // target (one the previous master grew is never asked to be smaller); IO stays at the
        // record's size until this master committed the resize (lib/cluster/resize.ts).
        const open = Effect.andThen(growForMaster(copy.store, record), node.openVolume({
          volume: record.volume, sizeBytes: record.sizeBytes, visibleSizeBytes: record.sizeBytes, spec: record.spec, epoch: record.epoch, replicas: plans,
          store: copy.store, waitForSync: false, ownActivity, leaseValid, ...(drained ? { previousSessionDrained: true } : {}),
          ...(options.resyncShare === undefined ? {} : { resyncShare: options.resyncShare }),
          onReplicaFailed: (replicaNode, failure) =>
            markReplica(record.volume, record.epoch, replicaNode, (r) => (r.state === "failed" ? r : { node: r.node, state: "failed", reason: failure.message, failedAtMs: now() })),
          // Refused as overruled here, the link stays up until the next tick's mark-in-sync is refused and fails it.
          onReplicaInSync: (replicaNode, stillInSync, answered) =>
            markInSync(role, record.volume, record.epoch, replicaNode, stillInSync, answered),
          onReplicaSyncing: (replicaNode) =>
            markReplica(record.volume, record.epoch, replicaNode, (r) => (r.state === "in-sync" ? { node: r.node, state: "syncing" } : r)),
          uid: uidOf(record),
          ...(cipher ? { cipher } : {}),
        })).pipe(Scope.provide(scope), Effect.provide(context))
        yield* Effect.forkIn(
          Effect.gen(function* () {
            const result = yield* Effect.result(open)
            if (result._tag === "Failure") {
              publish("master-failed", `${me} could not open ${record.volume}: ${String((result.failure as { message?: string }).message ?? result.failure)}`, record.volume)
              if (copy.master === role) yield* closeMaster(copy, "opening failed")
              return
            }
            role.volume = result.success
            copy.servedHere = true
            // Kept beside the copy for this node's next process, should this one crash (lib/store/continuity.ts).
            if (copy.store.continuity) yield* copy.store.continuity.noteServed(record.epoch)
            // From now on its own record proves what it holds (see stepDownDecision).
            copy.recordedInSync = false
            publish("master-serving", `${me} serves ${record.volume} as master at epoch ${record.epoch}`, record.volume)
            yield* Effect.ignore(noteServing(record))
          }),
          scope,
        )
      })

    /** Gives the volume up: no master recorded, the master lease released, so the controller promotes an in-sync replica. */
    const stepDown = (record: VolumeRecord, revision: number, held: Versioned<MasterLease> | undefined) =>
      Effect.gen(function* () {
        const { unavailableReason: _dropped, ...rest } = record
        // It is dropped from the record like any lost master; placed again later, it is synced in full.
        // (Keeping it listed as a failed replica left hard volumes stuck syncing: cluster simulator seed 325.)
        const done = yield* control.transaction({
          compare: [{ key: keys.volume(record.volume), revision }],
          put: [{ key: keys.volume(record.volume), value: encode({ ...rest, master: undefined }) }],
          ...(held ? { delete: [keys.master(record.volume)] } : {}),
        })
        if (done.succeeded) publish("master-stepped-down", `${me} steps down as master of ${record.volume}: its copy cannot prove it holds every acknowledged write; an in-sync replica takes over`, record.volume)
      })

    /** Runs `effect` in the master's scope unless one with the same key is still running. */
    const inBackground = (role: MasterRole, key: string, effect: Effect.Effect<void, unknown>) =>
      Effect.suspend(() => {
        if (role.busy.has(key)) return Effect.void
        role.busy.add(key)
        const done = Effect.sync(() => void role.busy.delete(key))
        return Effect.asVoid(Effect.forkIn(Effect.ensuring(Effect.ignore(effect), done), role.scope))
      })

    /** Keeps an open master's links in line with its record, and the record with its links (`planLinks`, executed). */
    const reconcileLinks = (role: MasterRole, record: VolumeRecord, revision: number, nodes: ReadonlyMap<string, NodeRecord>) =>
      Effect.gen(function* () {
        const volume = role.volume!
        const background = (key: string, effect: Effect.Effect<void, unknown>) => inBackground(role, key, effect)
        const links = volume.links()
        const facts = links.map((l) => ({ node: l.target.node, address: l.target.address, state: l.state(), completed: l.completed() }))
        noteSession(record, revision, facts, role.seenUnfailed)
        const actions = planLinks(record, facts, (n) => targetOf(n, nodes), { nowMs: now(), reviveAtMs: role.reviveAtMs, progressAtMs: role.progressAtMs })
        const linkOf = (n: string) => links.find((l) => l.target.node === n)!
        const run = (action: LinkAction): Effect.Effect<void, unknown> => {
          switch (action._tag) {
            case "add": return background(`add:${action.target.node}`, volume.addReplica(action.target))
            case "drop-moved": case "remove": return volume.removeReplica(action.node)
            case "revive":
              role.reviveAtMs.set(action.node, now())
              return background(`revive:${action.node}`, volume.reviveReplica(action.node))
            case "mark-in-sync": {
              const link = linkOf(action.node)
              return background(`state:${action.node}`, markInSync(role, record.volume, record.epoch, action.node, () => link.completed(), link.incarnation(), link))
            }
            case "record-progress": {
              const link = linkOf(action.node)
              return Effect.gen(function* () {
                const status = (yield* volume.status).replicas.find((x) => x.node === action.node)
                role.progressAtMs = now()
                const progress = (x: ReplicaRecord): ReplicaRecord | undefined => (link.state() === "syncing" ? { node: x.node, state: "syncing", bytesDone: status?.syncBytesDone ?? 0, bytesTotal: status?.syncBytesTotal ?? 0 } : undefined)
                yield* background(`state:${action.node}`, markInSession(role, record.volume, record.epoch, action.node, () => link.state() !== "failed", progress, link))
              })
            }
          }
        }
        for (const action of actions) yield* run(action)
      })

    /** When a failed resize was last told, per volume (bounded: one entry per volume this node masters). */
    const resizeFailedAtMs = new Map<string, number>()

    /** The record asks for a bigger size: the serving master grows every copy and commits it (resize.ts `resizeStep`), in the background. */
    const reconcileResize = (copy: Copy, record: VolumeRecord) =>
      Effect.gen(function* () {
        const role = copy.master
        const volume = role?.volume
        if (!role || !volume) return
        const step = resizeStep(volume, record, me)
        if (!step) return
        // Success is the master's own `resized` event; a failure is retried next tick, told at most every 5 s.
        yield* inBackground(role, "resize", step.run.pipe(
          Effect.provide(context),
          Effect.tapError((error) => Effect.sync(() => {
            if (now() - (resizeFailedAtMs.get(record.volume) ?? -Infinity) < 5000) return
            if (resizeFailedAtMs.size >= 1024) resizeFailedAtMs.clear()
            resizeFailedAtMs.set(record.volume, now())
            publish("resize-failed", `${me} could not grow ${record.volume} to ${record.resizeToBytes} bytes yet (it retries): ${String((error as { message?: string }).message ?? error)}`, record.volume)
          })),
        ))
      })

    return { openMaster, noteServing, stepDown, reconcileLinks, reconcileResize }
  })
