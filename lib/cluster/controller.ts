/**
 * The controller (one per cluster, elected through `replivol/controller` under the node's lease):
 * applies `planVolume` (placement.ts) to every volume at every tick — promotion after the master's
 * lease is gone, failed replicas, replacement after the grace period, missing replicas — and
 * writes each plan by compare-and-swap.
 */
import { Clock, Effect, Random } from "effect"
import type { ControlStoreShape } from "../control/ControlStore.ts"
import { loadOf, planVolume, type NodeTopology } from "./placement.ts"
import { encode, keys, type NodeConfig, type VolumeRecord } from "./records.ts"
import { listMasterLeases, listNodeConfigs, listNodes, listVolumes, type Versioned } from "./store.ts"
import type { Publish } from "./types.ts"

/** Cordons and labels from the node configs, for placement. */
export const topologyOf = (configs: ReadonlyMap<string, Versioned<NodeConfig>>): NodeTopology => ({
  cordoned: new Set([...configs.values()].filter((c) => c.value.cordoned).map((c) => c.value.name)),
  labelsOf: (node) => configs.get(node)?.value.labels,
})

/** Random numbers drawn per tick for placement's tie-breaks (reused round-robin beyond). */
export const randomsPerTick = 16

export interface ControllerOptions {
  readonly me: string
  readonly control: ControlStoreShape
  /** The node's current lease (undefined while it is lost). */
  readonly lease: () => string | undefined
  readonly graceMs: number
  /** The node lease TTL: how long a dead master's lease may outlive its process. */
  readonly leaseTtlMs: number
  readonly publish: Publish
}

/**
 * How long a node must have been seen lost before the controller fails an in-sync replica on it,
 * in node lease TTLs: by then the lease of a master that died with it (a power outage takes both)
 * has expired, so the controller no longer mistakes that master for a serving one.
 */
export const inSyncFailAfterTtls = 2

export const makeController = (options: ControllerOptions) =>
  Effect.gen(function* () {
    const { me, control, publish } = options
    const clock = yield* Clock.Clock
    let controller = false
    /** When (monotonic ms) this controller first saw each node lost; a controller that just took over starts afresh. */
    const lostSince = new Map<string, number>()
    const lostForMs = (alive: ReadonlySet<string>, records: ReadonlyArray<VolumeRecord>): ReadonlyMap<string, number> => {
      const nowMs = Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
      const named = new Set(records.flatMap((r) => [...(r.master === undefined ? [] : [r.master]), ...r.replicas.map((x) => x.node)]))
      for (const node of [...lostSince.keys()]) if (alive.has(node) || !named.has(node)) lostSince.delete(node)
      for (const node of named) if (!alive.has(node) && !lostSince.has(node)) lostSince.set(node, nowMs)
      return new Map([...lostSince].map(([node, since]) => [node, nowMs - since]))
    }

    const tick = Effect.gen(function* () {
      const lease = options.lease()
      if (lease === undefined) return
      const current = yield* control.get(keys.controller)
      if (!current) {
        const won = yield* control.transaction({ compare: [{ key: keys.controller, revision: 0 }], put: [{ key: keys.controller, value: encode({ node: me }), lease }] })
        controller = won.succeeded
        if (controller) publish("controller", `${me} is the controller`)
      } else controller = current.lease === lease
      if (!controller) return lostSince.clear()
      const [volumes, nodeRows, leases, configs] = yield* Effect.all([listVolumes, listNodes, listMasterLeases, listNodeConfigs])
      const randoms = yield* Effect.forEach(Array.from({ length: randomsPerTick }), () => Random.next)
      let drawn = 0
      const aliveNodes = new Set(nodeRows.map((n) => n.value.name))
      const view = {
        nowMs: clock.currentTimeMillisUnsafe(), graceMs: options.graceMs, topology: topologyOf(configs),
        aliveNodes, lostForMs: lostForMs(aliveNodes, volumes.map((v) => v.value)), inSyncFailAfterMs: inSyncFailAfterTtls * options.leaseTtlMs,
        incarnations: new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation])),
        masterLeased: new Set([...leases.keys()]),
        masterServing: new Set([...leases].filter(([, held]) => held.value.serving === true).map(([volume, held]) => `${volume}@${held.value.node}@${held.value.epoch}`)),
        load: loadOf(volumes.map((v) => v.value)),
        random: () => randoms[drawn++ % randoms.length]!,
      }
      for (const { value: record, revision } of volumes) {
        const plan = planVolume(record, view)
        if (!plan) continue
        const done = yield* control.transaction({ compare: [{ key: keys.volume(record.volume), revision }], put: [{ key: keys.volume(record.volume), value: encode(plan.record) }] })
        if (done.succeeded) for (const message of plan.events) publish(message.startsWith("warning: ") ? "placement-warning" : "controller-action", message, record.volume)
      }
    })

    return { tick, isController: () => controller }
  })
