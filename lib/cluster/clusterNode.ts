/**
 * A cluster node: a replivol node plus its agent, a controller candidate, and the cluster API,
 * wired together here; each is its own module:
 *
 * - membership.ts: the node's lease (`replivol/nodes/<name>`); a master serves IO only while its
 *   renewals are recent, and every master fences when it is lost.
 * - agent.ts (decisions in agentPlan.ts; copies.ts, masterRole.ts): makes this node's copies
 *   match the records — replica copies, master sessions under the volume's master lease, links.
 * - controller.ts: one per cluster, applies `planVolume` (placement.ts) to every volume.
 * - clusterApi.ts: create, delete, inspect, list, update, nodes, rules, verify, and volume
 *   handles that follow the master (`openVolume`).
 *
 * Their shared types are in types.ts.
 */
import { Clock, Effect, Scope, Stream } from "effect"
import { ControlStore, type ControlError } from "../control/ControlStore.ts"
import { defaults } from "../core/limits.ts"
import type { NetError, Transport } from "../net/Transport.ts"
import { startNode } from "../node/node.ts"
import type { ReplicationError } from "../replication/errors.ts"
import type { VolumeEvent } from "../replication/masterVolume.ts"
import { Stores } from "../store/Stores.ts"
import { makeAgent } from "./agent.ts"
import { inspectVolume, listRules, listVolumeInfos, makeClusterApi, openVolumeClient } from "./clusterApi.ts"
import { makeController } from "./controller.ts"
import { makeCopies } from "./copies.ts"
import { makeEventLog } from "./eventLog.ts"
import { makeMembership } from "./membership.ts"
import { makeMoves } from "./moves.ts"
import { inProcessMaster, registerProcessNode } from "./processMasters.ts"
import type { ClusterError } from "./records.ts"
import type { ClusterNode, ClusterNodeOptions } from "./types.ts"

export type { AcceptLossResult, ClusterEvent, ClusterNode, ClusterNodeOptions, CreateVolumeOptions, DrainStatus, MoveStatus, NodeConfigChange, NodeInfo, ReplicaInfo, VolumeInfo, VolumeLabelChange } from "./types.ts"
export { inProcessMaster } from "./processMasters.ts"
export { replicasKept, volumeInfo } from "./volumeInfo.ts"

export const startClusterNode = (
  options: ClusterNodeOptions,
): Effect.Effect<ClusterNode, NetError | ReplicationError | ControlError | ClusterError, Scope.Scope | ControlStore | Transport | Stores> =>
  Effect.gen(function* () {
    const control = yield* ControlStore
    const stores = yield* Stores
    const clock = yield* Clock.Clock
    const nodeScope = yield* Effect.scope
    const context = yield* Effect.context<ControlStore | Transport | Stores>()
    const leaseTtlMs = options.leaseTtlMs ?? 1000
    const tickMs = options.tickMs ?? 100
    const me = options.name
    const log = yield* makeEventLog(me, options.onClusterEvent)
    const volumeEvent = (event: VolumeEvent) => log.publish(event.kind, event.message, event.volume)
    // This process's incarnation (records.ts): the control store's revision now, so higher at every
    // start of the process. A replica recorded in sync vouches for its copy until it changes.
    const incarnation = (yield* control.transaction({ compare: [] })).revision
    const startedMs = Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
    const node = yield* startNode({ ...options, onEvent: volumeEvent, incarnation })
    const unregister = registerProcessNode(me, node)
    yield* Effect.addFinalizer(() => Effect.sync(unregister))
    let crashed = false

    const copies = makeCopies({ me, node, control, stores, nodeScope, publish: log.publish })
    const membership = yield* makeMembership({
      control, me, address: node.address, incarnation, ...(options.api ? { api: options.api } : {}), leaseTtlMs, tickMs,
      publish: log.publish, onLost: copies.fenceAll,
    })
    const api = yield* makeClusterApi({
      me, control, publish: log.publish, tickMs, ownMaster: (volume) => copies.copies.get(volume)?.master?.volume,
      ...(options.keyRing ? { keyRing: options.keyRing } : {}),
    })
    yield* membership.register
    if (options.labels !== undefined && Object.keys(options.labels).length > 0) yield* api.configureNode(me, { setLabels: options.labels })
    yield* Effect.forkIn(membership.keepAlive, nodeScope)

    const graceMs = options.graceMs ?? 30_000
    const agent = yield* makeAgent({
      me, node, control, context, membership, copies, publish: log.publish, publishThrottled: log.publishThrottled,
      incarnation, startedMs, leaseTtlMs, graceMs, ...(options.resyncShare === undefined ? {} : { resyncShare: options.resyncShare }),
      ...(options.keyRing ? { keyRing: options.keyRing } : {}),
    })
    const controller = yield* makeController({ me, control, lease: membership.lease, graceMs, leaseTtlMs, publish: log.publish })
    const moves = yield* makeMoves({ me, incarnation, control, publish: log.publish, graceMs, scope: nodeScope, configureNode: api.configureNode })
    const loop = (name: string, tick: Effect.Effect<void, unknown>, pause: Effect.Effect<void>) =>
      Effect.forever(Effect.andThen(Effect.catchCause(tick, (cause) => Effect.sync(() => log.publish(`${name}-error`, `${me}: ${String(cause).slice(0, 300)}`))), pause))
    yield* Effect.forkIn(loop("agent", agent.tick.pipe(Effect.provide(context)), agent.pause(tickMs)), nodeScope)
    yield* Effect.forkIn(loop("controller", controller.tick.pipe(Effect.provide(context)), Effect.sleep(tickMs)), nodeScope)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* copies.fenceAll(crashed ? "the node crashed" : "the node is stopping")
        yield* membership.leave(!crashed)
      }))

    const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(context)) as Effect.Effect<A, E, Exclude<R, ControlStore | Transport | Stores>>
    const openVolume = (volume: string) =>
      openVolumeClient(volume, {
        clientName: me, pauseMaxMs: options.pauseMaxMs ?? 60_000, ackTimeoutMs: options.ackTimeoutMs ?? defaults.ackTimeoutMs,
        local: (location) => {
          const master = location.node === me ? copies.copies.get(volume)?.master?.volume : options.inProcessShortcut === false ? undefined : inProcessMaster(location, volume)
          // Only the master of the located epoch (see clusterApi.ts firstEpoch): an older instance's is not this volume.
          return master?.epoch === location.epoch ? master : undefined
        },
        connect: (target) => node.connect(target),
        onRetry: (why) => log.publish("client-retry", `${me}: IO on ${volume} waits: ${why}`, volume),
      })

    return {
      name: me,
      node,
      createVolume: (o) => provide(api.createVolume(o)),
      deleteVolume: (v) => provide(api.deleteVolume(v)),
      listVolumes: provide(listVolumeInfos),
      inspectVolume: (v) => provide(inspectVolume(v)),
      updateVolume: (v, change) => provide(api.changeVolumeLabels(v, change)),
      resizeVolume: (v, sizeBytes, waitMs) => provide(api.resizeVolume(v, sizeBytes, waitMs)),
      acceptLoss: (v) => provide(api.acceptLoss(v)),
      waitHealthy: (v, t) => provide(api.waitHealthy(v, t)),
      openVolume: (v) => provide(openVolume(v)),
      listNodes: provide(api.listNodesInfo),
      configureNode: (name, change) => provide(api.configureNode(name, change)),
      putRule: api.putRule,
      deleteRule: api.deleteRule,
      listRules: (ns) => provide(listRules(ns)),
      isController: controller.isController,
      recentEvents: log.recent,
      events: Stream.fromPubSub(log.hub),
      verifyVolume: (v, o) => provide(Effect.flatMap(api.verifyingMaster(v), (master) => master.verify(o))),
      startVerify: (v, o) => provide(Effect.flatMap(api.verifyingMaster(v), (master) => master.startVerify(o))),
      verifyStatus: (v) => provide(api.verifyStatus(v)),
      moveVolume: (v, to, onProgress) => provide(moves.moveVolume(v, to, onProgress)),
      startMove: (v, to) => provide(moves.startMove(v, to)),
      moveStatus: (v) => provide(moves.moveStatus(v)),
      drainNode: (name, onProgress) => provide(moves.drainNode(name, onProgress)),
      startDrain: (name) => provide(moves.startDrain(name)),
      drainStatus: (name) => provide(moves.drainStatus(name)),
      crash: () => void (crashed = true),
    } satisfies ClusterNode
  })
