/**
 * The node agent (every node, every `tickMs`): reads the records and makes this node's copies
 * match. It hosts replica copies it is listed for; opens the master of volumes it masters (after
 * taking the volume's master lease, `replivol/masters/<volume>`, under its node lease); adds,
 * removes and revives replica links; records replica failures, sync progress and in-sync
 * transitions. The decisions are agentPlan.ts's pure functions; this module gathers their facts
 * and executes their actions.
 */
import { Clock, Context, Effect, Queue, Scope } from "effect"
import type { ControlStore, ControlStoreShape } from "../control/ControlStore.ts"
import type { Transport } from "../net/Transport.ts"
import type { ReplivolNode } from "../node/node.ts"
import type { Stores } from "../store/Stores.ts"
import { planCopy, planPresence, provenByPromotion, stepDownDecision, type CopyAction, type CopyFacts } from "./agentPlan.ts"
import { closeScope, type Copies } from "./copies.ts"
import { makeHandover } from "./handover.ts"
import { makeMasterRoles } from "./masterRole.ts"
import { masterCapacityOf } from "./resize.ts"
import type { Membership } from "./membership.ts"
import { encode, keepingFormerMark, keys, uidOf, type MasterLease, type NodeRecord, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import { listMasterLeases, listNodes, listVolumes, type Versioned } from "./store.ts"
import type { Copy, Publish } from "./types.ts"
import { trimmedRecord } from "./volumeInfo.ts"
import type { KeyRing } from "../crypt/keys.ts"
import type { VolumeCipher } from "../crypt/volumeCipher.ts"
import { volumeCipherOf } from "./volumeKeys.ts"

export interface AgentOptions {
  readonly me: string
  readonly node: ReplivolNode
  readonly control: ControlStoreShape
  readonly context: Context.Context<ControlStore | Transport | Stores>
  readonly membership: Membership
  readonly copies: Copies
  readonly publish: Publish
  readonly publishThrottled: (key: string, kind: string, message: string, volume?: string) => void
  /** This process's incarnation (records.ts). */
  readonly incarnation: number
  /** When this process started (monotonic ms). */
  readonly startedMs: number
  readonly leaseTtlMs: number
  /** How long a lost node's copies are waited for (the controller's grace period). */
  readonly graceMs: number
  readonly resyncShare?: number
  /** Unwraps the keys of encrypted volumes this node masters (volumeKeys.ts). */
  readonly keyRing?: KeyRing
}

export const makeAgent = (options: AgentOptions) =>
  Effect.gen(function* () {
    const { me, node, control, membership, copies, publish } = options
    const clock = yield* Clock.Clock
    const monotonicMs = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
    const roles = yield* makeMasterRoles({
      me, node, control, context: options.context, publish, leaseValid: membership.leaseValid, closeMaster: copies.closeMaster,
      ...(options.resyncShare === undefined ? {} : { resyncShare: options.resyncShare }),
    })
    let swept = false
    /** Alive nodes' process incarnations (records.ts `incarnation`: lower, running since earlier). */
    let incarnations = new Map<string, number | undefined>()
    /** When (monotonic) the agent's current view of the records began to be read. */
    let viewReadMs = -Infinity
    /** When this agent first saw each alive node under its current process (monotonic): `stepDownDecision`'s `seenForMs`. */
    const firstSeen = new Map<string, { readonly incarnation: number | undefined; readonly atMs: number }>()
    /** For how long each alive node has been seen under its current process, as of this tick's view. */
    let seenForMs: ReadonlyMap<string, number> = new Map()
    const noteSeen = (alive: ReadonlyMap<string, number | undefined>, atMs: number) => {
      for (const node of [...firstSeen.keys()]) if (!alive.has(node)) firstSeen.delete(node)
      for (const [node, incarnation] of alive) {
        const seen = firstSeen.get(node)
        if (seen === undefined || seen.incarnation !== incarnation) firstSeen.set(node, { incarnation, atMs })
      }
      seenForMs = new Map([...firstSeen].map(([node, seen]) => [node, atMs - seen.atMs]))
    }

    /** An earlier process of this node served the copy at the record's epoch, and the copy holds what it wrote. */
    const servedBefore = (copy: Copy, record: VolumeRecord): boolean => {
      const continuity = copy.store.continuity
      return continuity !== undefined && continuity.continuedFrom().length > 0 && continuity.servedEpoch() === record.epoch
    }

    /** The copy hosted as a replica in this process and its own write or fdatasync failed since a master's sync completed it. */
    const hostedReplicaDamaged = (copy: Copy, volume: string): boolean => copy.replicaScope !== undefined && node.replicaDamaged(volume)

    const factsOf = (copy: Copy, record: VolumeRecord): CopyFacts => {
      const volume = copy.master?.volume
      return {
        masterEpoch: copy.master?.epoch,
        masterState: !copy.master ? undefined : !volume ? "opening" : volume.isFenced() ? "fenced" : "serving",
        fencedReason: volume?.isFenced() ? volume.fencedReason() : undefined,
        specDiffers: volume !== undefined && JSON.stringify(volume.spec()) !== JSON.stringify(record.spec),
        resizePending: volume !== undefined && volume.sizeBytes < masterCapacityOf(record),
        hostsReplica: copy.replicaScope !== undefined,
        replicaDamaged: hostedReplicaDamaged(copy, record.volume),
      }
    }

    const hostReplica = (copy: Copy, record: VolumeRecord, handedOver = false) =>
      Effect.gen(function* () {
        if (copy.replicaScope) return
        const scope = yield* Scope.fork(copy.scope)
        const hosted = yield* Effect.result(node.hostReplicaStore(record.volume, copy.store, uidOf(record), handedOver).pipe(Scope.provide(scope)))
        if (hosted._tag === "Failure") yield* closeScope(scope)
        else {
          copy.replicaScope = scope
          // Hosted as a replica, the copy is what its record says and a master's sync makes it;
          // it is in sync again only after that. A suspect mark from an earlier master role
          // kept it from ever serving again (found by the cluster simulator, seed 2099).
          copy.suspect = false
        }
      })

    // A wake-up runs the next tick now (a move's target named master); one pending is enough.
    const wakes = yield* Queue.sliding<void>(1)
    const wake = () => void Queue.offerUnsafe(wakes, undefined)
    /**
     * The pause between ticks: `tickMs`, or less when woken while this node is a move's target
     * (otherwise a plain sleep, the schedule every other tick keeps: the simulator's seeds replay).
     */
    const pause = (tickMs: number) =>
      Effect.suspend(() => (handover.watching() ? Effect.asVoid(Effect.raceFirst(Effect.sleep(tickMs), Queue.take(wakes))) : Effect.sleep(tickMs)))
    const handover = yield* makeHandover({
      me, control, context: options.context, publish, incarnation: options.incarnation, closeMaster: copies.closeMaster, hostReplica, wake,
    })

    /** Takes the master role if `stepDownDecision` lets this copy serve: the master lease (when needed), then the session. */
    const claim = (copy: Copy, record: VolumeRecord, revision: number, nodes: ReadonlyMap<string, NodeRecord>, held: Versioned<MasterLease> | undefined, takeLease: boolean) =>
      Effect.gen(function* () {
        const meta = yield* Effect.result(copy.store.readMeta)
        const own = meta._tag === "Success" ? meta.success : undefined
        const promotedHere = !copy.replicaScope && provenByPromotion(record, me, { own, suspect: copy.suspect, continuedFrom: copy.store.continuity?.continuedFrom() })
        const decision = stepDownDecision(record, {
          me, own, suspect: copy.suspect,
          // A replica copy damaged since the agent last noted it in sync does not count (its fdatasync may have failed since).
          createdEmpty: copy.store.createdEmpty === true, recordedInSync: (copy.recordedInSync && !hostedReplicaDamaged(copy, record.volume)) || promotedHere,
          // A promoted replica's recent writes are known from its activity log; a master's own copy if this process served
          // it, or an earlier process of this node served it at this epoch, or held it in sync when it was promoted, and
          // the copy provably holds what that process wrote (it crashed, the machine stayed up: lib/store/continuity.ts).
          recentKnown: copy.replicaScope ? node.replicaActivity(record.volume) !== "all" : copy.servedHere || copy.store.createdEmpty === true || servedBefore(copy, record) || promotedHere,
          incarnations, incarnation: options.incarnation, sinceStartMs: viewReadMs - options.startedMs, leaseTtlMs: options.leaseTtlMs, graceMs: options.graceMs,
          seenForMs,
        })
        if (decision._tag === "wait") {
          if (decision.refusal !== undefined) options.publishThrottled(`refuse:${record.volume}`, "master-refused", decision.refusal, record.volume)
          return
        }
        if (decision._tag === "step-down") return yield* roles.stepDown(record, revision, held)
        // An encrypted volume is served only with its key: unwrapped before the master lease is taken.
        let cipher: VolumeCipher | undefined
        if (record.spec.encryption === true) {
          const unwrapped = yield* Effect.result(volumeCipherOf(control, options.keyRing, record, clock.currentTimeMillisUnsafe()))
          if (unwrapped._tag === "Failure") {
            const why = unwrapped.failure
            options.publishThrottled(`key:${record.volume}`, "master-refused", `${me} cannot serve ${record.volume}${why._tag === "EncryptionError" ? ` (${why.reason})` : ""}: ${why.message}`, record.volume)
            return
          }
          cipher = unwrapped.success
        }
        if (takeLease) {
          const taken = yield* control.transaction({
            compare: [{ key: keys.master(record.volume), revision: held?.revision ?? 0 }],
            put: [{ key: keys.master(record.volume), value: encode({ node: me, epoch: record.epoch }), lease: membership.lease()! }],
          })
          if (!taken.succeeded) return
        }
        yield* roles.openMaster(copy, record, nodes, cipher)
      })

    /**
     * A lowered replica count's surplus in-sync replicas, dropped by the serving master (it holds
     * every acknowledged write): one compare-and-swap on the record as this tick read it.
     */
    const trimReplicas = (record: VolumeRecord, revision: number) =>
      Effect.gen(function* () {
        const next = trimmedRecord(record)
        const done = yield* control.transaction({ compare: [{ key: keys.volume(record.volume), revision }], put: [{ key: keys.volume(record.volume), value: encode(next) }] })
        const dropped = record.replicas.filter((r) => !next.replicas.includes(r)).map((r) => r.node)
        if (done.succeeded) publish("replicas-dropped", `${record.volume}: master ${me} dropped the replicas on ${dropped.join(", ") || "(none)"} (replica count lowered to ${record.spec.replicas})`, record.volume)
      })

    /**
     * A replica copy that provably holds what an earlier process of this node acknowledged (that
     * process crashed, the machine stayed up: lib/store/continuity.ts) vouches again: the record's
     * in-sync entry naming that process is moved to this one, by a compare-and-swap on the record
     * as read (a master that recorded the replica failed since wins).
     */
    const continueInSync = (copy: Copy, record: VolumeRecord, revision: number) =>
      Effect.gen(function* () {
        const entry = record.replicas.find((r) => r.node === me)
        const continuity = copy.store.continuity
        if (entry?.state !== "in-sync" || entry.syncedIncarnation === undefined || entry.syncedIncarnation === options.incarnation || !continuity) return
        // A former master's copy (placement.ts `promote`) vouches once it proves a process of this node served it at that
        // epoch, or that it is (or continues) the process the copy was promoted under (records.ts `promotedIncarnation`).
        const promotedUnder = entry.promotedIncarnation
        const proven = entry.formerMaster === true
          ? (entry.syncedEpoch !== undefined && continuity.servedEpoch() === entry.syncedEpoch) ||
            (promotedUnder !== undefined && !copy.suspect && continuity.holdsWritesOf(promotedUnder))
          : continuity.continuedFrom().includes(entry.syncedIncarnation)
        if (!proven) return
        const meta = yield* Effect.result(copy.store.readMeta)
        // The state may say incomplete (a replica's record stays so mid-session): the in-sync entry plus continuity prove the bytes.
        if (meta._tag === "Failure" || meta.success?.uid !== uidOf(record)) return
        const next: VolumeRecord = { ...record, replicas: record.replicas.map((r) => (r === entry ? { ...r, syncedIncarnation: options.incarnation } : r)) }
        const done = yield* control.transaction({ compare: [{ key: keys.volume(record.volume), revision }], put: [{ key: keys.volume(record.volume), value: encode(next) }] })
        if (!done.succeeded) return
        const holds = entry.formerMaster === true
          ? `holds every write it acknowledged as master at epoch ${entry.syncedEpoch}: in sync, and a candidate while the new master does not serve`
          : `holds every write its process ${entry.syncedIncarnation} acknowledged (that process stopped; the machine stayed up and the copy's record is unchanged): in sync as before`
        publish("copy-continued", `${me}: its copy of ${record.volume} ${holds}`, record.volume)
      })

    /** `record-own-failure` (agentPlan.ts): this replica's in-sync entry becomes failed, by compare-and-swap on the record. */
    const recordOwnFailure = (record: VolumeRecord, revision: number) =>
      Effect.gen(function* () {
        const reason = "its own write or fdatasync failed: it may have lost writes it acknowledged"
        const failed = (r: ReplicaRecord) => keepingFormerMark(r, { node: r.node, state: "failed", reason, failedAtMs: clock.currentTimeMillisUnsafe() })
        const replicas = record.replicas.map((r) => (r.node === me && r.state === "in-sync" ? failed(r) : r))
        const done = yield* control.transaction({ compare: [{ key: keys.volume(record.volume), revision }], put: [{ key: keys.volume(record.volume), value: encode({ ...record, replicas }) }] })
        if (done.succeeded) publish("replica-failed", `replica ${me} of ${record.volume} recorded itself failed: ${reason}`, record.volume)
      })

    const reconcileVolume = (record: VolumeRecord, revision: number, nodes: ReadonlyMap<string, NodeRecord>, leases: ReadonlyMap<string, Versioned<MasterLease>>, nodeLeases: ReadonlyMap<string, string | undefined>) =>
      Effect.gen(function* () {
        const held = leases.get(record.volume)
        const presence = planPresence(record, me, held, membership.lease(), copies.copies.has(record.volume))
        if (presence.releaseLease && held) {
          yield* control.transaction({ compare: [{ key: keys.master(record.volume), revision: held.revision }], delete: [keys.master(record.volume)] })
          publish("master-lease-released", `${me} released the master lease of ${record.volume}: the record names ${record.master ?? "no node"} as master at epoch ${record.epoch}`, record.volume)
        }
        if (presence.copy._tag === "close") return yield* copies.closeCopy(record.volume, presence.copy.remove)
        const copy = yield* copies.ensureCopy(record)
        if (record.master !== me) yield* continueInSync(copy, record, revision)
        const actions = planCopy(record, me, factsOf(copy, record), { lease: membership.lease(), leaseValid: membership.leaseValid(), held, incarnations })
        const run = (action: CopyAction) => {
          switch (action._tag) {
            case "set-recorded-in-sync": return Effect.sync(() => void (copy.recordedInSync = action.value))
            case "close-master": return copies.closeMaster(copy, action.why)
            case "host-replica": return hostReplica(copy, record)
            case "update-spec": return Effect.sync(() => copy.master?.volume?.updateSpec(record.spec))
            case "reconcile-links": return copy.master ? roles.reconcileLinks(copy.master, record, revision, nodes) : Effect.void
            case "note-serving": return roles.noteServing(record)
            case "trim-replicas": return trimReplicas(record, revision)
            case "resize": return roles.reconcileResize(copy, record)
            case "mark-suspect": return Effect.sync(() => void (copy.suspect = true))
            case "record-own-failure": return recordOwnFailure(record, revision)
            case "claim": return claim(copy, record, revision, nodes, held, action.takeLease)
            case "arm": return handover.arm(copy, record)
            case "hand-over": return handover.handOver(copy, record, revision, held, record.move ? nodeLeases.get(record.move.to) : undefined)
          }
        }
        for (const action of actions) yield* run(action)
      })

    const tick = Effect.gen(function* () {
      viewReadMs = monotonicMs()
      const [volumes, nodeRows, leases] = yield* Effect.all([listVolumes, listNodes, listMasterLeases])
      const nodes = new Map(nodeRows.map((n) => [n.value.name, n.value]))
      const nodeLeases = new Map(nodeRows.map((n) => [n.value.name, n.lease]))
      incarnations = new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation]))
      noteSeen(incarnations, viewReadMs)
      if (!swept) {
        yield* copies.sweepUnclaimed(volumes.map((v) => v.value))
        swept = true
      }
      for (const { value: record, revision } of volumes) {
        const result = yield* Effect.result(reconcileVolume(record, revision, nodes, leases, nodeLeases))
        if (result._tag === "Failure") publish("agent-error", `${me}: ${record.volume}: ${String((result.failure as { message?: string }).message ?? result.failure)}`, record.volume)
      }
      const names = new Set(volumes.map((v) => v.value.volume))
      for (const name of [...copies.copies.keys()]) if (!names.has(name)) yield* copies.closeCopy(name, true)
    })

    return { tick, wake, pause }
  })
