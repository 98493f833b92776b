/**
 * The controller (one per cluster, elected through `replivol/controller` under the node's lease):
 * applies `planVolume` (placement.ts) to every volume at every tick — promotion after the master's
 * lease is gone, failed replicas, replacement after the grace period, missing replicas — and
 * writes each plan by compare-and-swap.
 */
import { Clock, Effect, Random } from "effect"
import type { ControlStoreShape } from "../control/ControlStore.ts"
import { loadOf, planVolume, type NodeTopology } from "./placement.ts"
import { encode, keys, type NodeConfig } from "./records.ts"
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
  readonly publish: Publish
}

export const makeController = (options: ControllerOptions) =>
  Effect.gen(function* () {
    const { me, control, publish } = options
    const clock = yield* Clock.Clock
    let controller = false

    const tick = Effect.gen(function* () {
      const lease = options.lease()
      if (lease === undefined) return
      const current = yield* control.get(keys.controller)
      if (!current) {
        const won = yield* control.transaction({ compare: [{ key: keys.controller, revision: 0 }], put: [{ key: keys.controller, value: encode({ node: me }), lease }] })
        controller = won.succeeded
        if (controller) publish("controller", `${me} is the controller`)
      } else controller = current.lease === lease
      if (!controller) return
      const [volumes, nodeRows, leases, configs] = yield* Effect.all([listVolumes, listNodes, listMasterLeases, listNodeConfigs])
      const randoms = yield* Effect.forEach(Array.from({ length: randomsPerTick }), () => Random.next)
      let drawn = 0
      const view = {
        nowMs: clock.currentTimeMillisUnsafe(), graceMs: options.graceMs, topology: topologyOf(configs),
        aliveNodes: new Set(nodeRows.map((n) => n.value.name)),
        incarnations: new Map(nodeRows.map((n) => [n.value.name, n.value.incarnation])),
        masterLeased: new Set([...leases.keys()]),
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
