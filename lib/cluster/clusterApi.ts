/**
 * The cluster API: create (rules → labels → spec → placement → compare-and-swap create), delete,
 * inspect, list, update, wait, open (volume handles that follow the master), nodes and their
 * configs, rules, verify. The reads and `openVolumeClient` need only the control store, and serve
 * clients that are not nodes too (client.ts); `makeClusterApi` is a node's full API.
 */
import { Clock, Effect, Random, type Scope } from "effect"
import { ControlStore, type ControlError, type ControlStoreShape } from "../control/ControlStore.ts"
import type { Connection } from "../net/connection.ts"
import type { Address } from "../net/Transport.ts"
import { checkVolumeName, checkVolumeSize } from "../node/node.ts"
import { applyRules, validateRule, type Rule } from "../policy/rules.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"
import { updateTrimWaitMs } from "../core/limits.ts"
import { checkSpecChange, isLabelKey, isLabelValue, labelCountMax, parseLabels } from "../volume/labels.ts"
import type { KeyRing } from "../crypt/keys.ts"
import { sealNewVolumeKey } from "./volumeKeys.ts"
import { topologyOf } from "./controller.ts"
import { loadOf, placeVolume } from "./placement.ts"
import { ClusterError, decodeNodeConfig, encode, inSyncAway, keys, uidOf, type NodeConfig, type VolumeRecord } from "./records.ts"
import { inProcessMaster } from "./processMasters.ts"
import { casAttemptsMax, getMasterLease, getVolume, listMasterLeases, listNodeConfigs, listNodes, listVolumes, locateMaster } from "./store.ts"
import { awaitResize, recordResize, resizeWaitMsDefault } from "./resize.ts"
import { pollUntil } from "./poll.ts"
import type { CreateVolumeOptions, NodeConfigChange, NodeInfo, Publish, VolumeLabelChange } from "./types.ts"
import { makeVolumeClient, type MasterLocation, type VolumeClient } from "./volumeClient.ts"
import { volumeInfo, withReplicaCount } from "./volumeInfo.ts"

// ---- Reads, for nodes and clients alike

export const aliveSet = Effect.map(listNodes, (rows) => new Set(rows.map((r) => r.value.name)))

const notFound = (volume: string) => new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })

export const inspectVolume = (volume: string) =>
  Effect.gen(function* () {
    const found = yield* getVolume(volume)
    if (!found) return yield* notFound(volume)
    const [alive, leases] = yield* Effect.all([aliveSet, listMasterLeases])
    return volumeInfo(found.value, alive, { lease: leases.get(volume)?.value })
  })

export const listVolumeInfos = Effect.gen(function* () {
  const [volumes, alive, leases] = yield* Effect.all([listVolumes, aliveSet, listMasterLeases])
  return volumes.map((v) => volumeInfo(v.value, alive, { lease: leases.get(v.value.volume)?.value }))
})

export interface OpenVolumeOptions {
  readonly clientName: string
  readonly pauseMaxMs: number
  readonly ackTimeoutMs: number
  /** The master volume when it runs in this process (see processMasters.ts). */
  readonly local: (location: MasterLocation) => MasterVolume | undefined
  readonly connect: (address: Address) => Effect.Effect<Connection, unknown>
  readonly onRetry?: (why: string) => void
}

/** A handle whose IO follows the volume's master; closed with the scope. */
export const openVolumeClient = (volume: string, options: OpenVolumeOptions): Effect.Effect<VolumeClient, ClusterError | ControlError, Scope.Scope | ControlStore> =>
  Effect.gen(function* () {
    const found = yield* getVolume(volume)
    if (!found) return yield* notFound(volume)
    const context = yield* Effect.context<ControlStore>()
    const client = makeVolumeClient({
      volume, sizeBytes: found.value.sizeBytes, clientName: options.clientName, pauseMaxMs: options.pauseMaxMs,
      requestTimeoutMs: options.ackTimeoutMs * 2 + 1000,
      locate: locateMaster(volume).pipe(Effect.provide(context)),
      // After an online resize, an IO past the size the handle knows reads the record's size.
      currentSize: getVolume(volume).pipe(Effect.map((current) => current?.value.sizeBytes ?? found.value.sizeBytes), Effect.provide(context)),
      local: options.local,
      connect: options.connect,
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    })
    yield* Effect.addFinalizer(() => client.close)
    return client
  })

export const listRules = (namespace?: string) =>
  ControlStore.use((control) =>
    Effect.map(control.list(namespace ? `${keys.rules}${namespace}/` : keys.rules), (rows) => {
      const out: Rule[] = []
      for (const row of rows) {
        try {
          const rule = validateRule(JSON.parse(row.value))
          if (!("_tag" in rule)) out.push(rule)
        } catch {
          // a corrupt rule record is skipped
        }
      }
      return out
    }))

/** Why a node label change is refused (undefined: it is fine). */
const nodeLabelError = (change: NodeConfigChange, current: NodeConfig): ClusterError | undefined => {
  for (const [key, value] of Object.entries(change.setLabels ?? {})) {
    if (!isLabelKey(key)) return new ClusterError({ reason: "bad-request", message: `node label key ${JSON.stringify(key)} is malformed: allowed [prefix/]name, name 1..63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit` })
    if (typeof value !== "string" || !isLabelValue(value)) return new ClusterError({ reason: "bad-request", message: `node label ${key}=${JSON.stringify(value)} has a malformed value: allowed 0..63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit` })
  }
  const count = Object.keys({ ...current.labels, ...change.setLabels }).filter((k) => !(change.removeLabels ?? []).includes(k)).length
  return count > labelCountMax ? new ClusterError({ reason: "bad-request", message: `node ${current.name} would have ${count} labels: allowed at most ${labelCountMax}` }) : undefined
}

// ---- A node's API

export interface ClusterApiOptions {
  readonly me: string
  readonly control: ControlStoreShape
  readonly publish: Publish
  readonly tickMs: number
  /** The serving master of `volume` on this node, if any. */
  readonly ownMaster: (volume: string) => MasterVolume | undefined
  /** Seals the keys of new encrypted volumes (absent: they are refused with `no-key`). */
  readonly keyRing?: KeyRing
}

export const makeClusterApi = (options: ClusterApiOptions) =>
  Effect.gen(function* () {
    const { me, control, publish, tickMs, ownMaster } = options
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()

    /**
     * A new volume's first epoch: above every epoch an earlier volume of the same name reached
     * (each of its epochs came from a change of the store, so none exceeds the store's revision).
     * A master of a deleted instance that has not closed yet (it learns at its next tick) then
     * serves another epoch than the one clients locate, and is refused by them, instead of
     * acknowledging writes into a copy about to be discarded. Found by the cluster simulator
     * (seed 49: a volume deleted and created again, both on the same master, within one tick).
     */
    const firstEpoch = Effect.map(control.transaction({ compare: [] }), (result) => result.revision + 1)

    const createVolume = (create: CreateVolumeOptions) =>
      Effect.gen(function* () {
        const bad = checkVolumeName(create.volume) ?? checkVolumeSize(create.volume, create.sizeBytes)
        if (bad) return yield* bad
        const namespace = create.volume.split("/")[0]!
        const rules = yield* listRules(namespace)
        const applied = applyRules(rules, namespace, create.labels ?? {})
        const spec = yield* parseLabels(applied.labels)
        const existing = yield* getVolume(create.volume)
        if (existing) return yield* new ClusterError({ reason: "exists", message: `volume ${create.volume} already exists` })
        const [volumes, alive, configs] = yield* Effect.all([listVolumes, aliveSet, listNodeConfigs])
        const randoms = yield* Effect.forEach(Array.from({ length: 16 }), () => Random.next)
        let drawn = 0
        const placement = placeVolume(create.volume, spec, [...alive].sort(), loadOf(volumes.map((v) => v.value)), () => randoms[drawn++ % randoms.length]!, topologyOf(configs))
        if (placement instanceof ClusterError) return yield* placement
        if (placement.warning !== undefined) publish("placement-warning", `warning: ${placement.warning}`, create.volume)
        const uid = (yield* Effect.forEach([0, 1, 2], () => Random.nextIntBetween(0, 0x7fffffff))).map((n) => n.toString(36)).join("")
        // Encrypted: a fresh volume key, sealed by the namespace key, goes into the record; a node that cannot seal it creates nothing.
        const encryption = spec.encryption === true ? yield* sealNewVolumeKey(control, options.keyRing, create.volume, uid, now()) : undefined
        const epoch = yield* firstEpoch
        const record: VolumeRecord = {
          volume: create.volume, uid, sizeBytes: create.sizeBytes, labels: applied.labels, spec, createdAtMs: now(),
          epoch, createdEpoch: epoch, master: placement.master, replicas: placement.replicas.map((n) => ({ node: n, state: "provisioned" as const })),
          rulesApplied: applied.applied, ...(encryption ? { encryption } : {}),
        }
        const created = yield* control.transaction({ compare: [{ key: keys.volume(create.volume), revision: 0 }], put: [{ key: keys.volume(create.volume), value: encode(record) }] })
        if (!created.succeeded) return yield* new ClusterError({ reason: "exists", message: `volume ${create.volume} already exists` })
        publish("volume-created", `${create.volume} created: master ${placement.master}, replicas ${placement.replicas.join(", ") || "none"}`, create.volume)
        return volumeInfo(record, alive)
      })

    /**
     * A volume's labels changed at run time, validated as at creation. More replicas: the
     * controller places and syncs them (with progress); fewer: in-sync replicas are kept first,
     * and the surplus in-sync ones are dropped by the serving master, not here (volumeInfo.ts
     * `withReplicaCount`; this waits up to `updateTrimWaitMs` for it). A count the uncordoned nodes
     * cannot hold is refused, naming what is allowed; nothing changes.
     */
    const changeVolumeLabels = (volume: string, change: VolumeLabelChange) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 10; attempt++) {
          const found = yield* getVolume(volume)
          if (!found) return yield* notFound(volume)
          const record = found.value
          const labels = Object.fromEntries(Object.entries({ ...record.labels, ...change.setLabels }).filter(([key]) => !(change.removeLabels ?? []).includes(key)))
          const spec = yield* parseLabels(labels)
          const immutable = checkSpecChange(record.spec, spec, labels)
          if (immutable) return yield* immutable
          const [alive, configs] = yield* Effect.all([aliveSet, listNodeConfigs])
          const usable = [...alive].filter((n) => !configs.get(n)?.value.cordoned).length
          const held = new Set([record.master, ...record.replicas.map((r) => r.node)].filter((n) => n !== undefined)).size
          if (spec.replicas > record.spec.replicas && spec.replicas > Math.max(usable, held) - 1) {
            return yield* new ClusterError({ reason: "too-few-nodes", message: `cannot give ${volume} ${spec.replicas} replicas: only ${usable} uncordoned node${usable === 1 ? " is" : "s are"} up (allowed: at most ${Math.max(usable, held) - 1} replicas); nothing was changed` })
          }
          // Fewer replicas only while a master serves: it holds every acknowledged write. Without
          // one, a dropped replica may be the copy a promotion needs (and its node deletes copies
          // that no record claims).
          const masterServes = record.master !== undefined && alive.has(record.master) && record.unavailableReason === undefined
          if (spec.replicas < record.replicas.length && !masterServes) {
            return yield* new ClusterError({ reason: "no-master", message: `cannot drop replicas of ${volume} now: its master ${record.master ?? "(none)"} is not serving, and a replica may be the copy a promotion needs; try again once it serves (replivol volume inspect ${volume}); nothing was changed` })
          }
          const next = withReplicaCount({ ...record, labels, spec })
          const done = yield* control.transaction({ compare: [{ key: keys.volume(volume), revision: found.revision }], put: [{ key: keys.volume(volume), value: encode(next) }] })
          if (!done.succeeded) continue
          const dropped = record.replicas.filter((r) => !next.replicas.includes(r)).map((r) => r.node)
          const trimming = next.trimReplicas === true ? `; its master ${next.master ?? "(none)"} drops ${next.replicas.length - spec.replicas} in-sync ${next.replicas.length - spec.replicas === 1 ? "replica" : "replicas"}` : ""
          publish("volume-updated", `${volume} updated: replicas ${record.spec.replicas} → ${spec.replicas}, failure mode ${spec.failureMode} (tolerance ${spec.failureTolerance})${dropped.length > 0 ? `, replicas dropped from ${dropped.join(", ")}` : ""}${trimming}`, volume)
          return volumeInfo(next.trimReplicas === true ? yield* awaitTrim(volume, uidOf(next)) : next, alive)
        }
        return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} kept changing while updating; try again` })
      })

    /** Waits (bounded) for the serving master to drop a lowered count's surplus replicas; the record as it is then. */
    const awaitTrim = (volume: string, uid: string) =>
      pollUntil(
        Effect.flatMap(getVolume(volume), (found) => (found ? Effect.succeed(found.value) : Effect.fail(notFound(volume)))),
        (record) => record.trimReplicas !== true || uidOf(record) !== uid,
        updateTrimWaitMs,
        Math.min(100, tickMs),
      ).pipe(Effect.map(({ value }) => value))

    /**
     * Grows a live volume (lib/cluster/resize.ts): the request is recorded (a shrink or a bad size
     * is refused and nothing changes), then the master grows every in-sync copy and commits; this
     * waits up to `waitMs` for that and returns the volume as it is then (`resizingToBytes` while
     * it is still under way: it completes once the master can grow every in-sync copy).
     */
    const resizeVolume = (volume: string, sizeBytes: number, waitMs: number = resizeWaitMsDefault) =>
      Effect.gen(function* () {
        const { record, asked } = yield* recordResize(volume, sizeBytes)
        if (asked) publish("volume-resize-requested", `${volume}: grows from ${record.sizeBytes} to ${sizeBytes} bytes (master ${record.master ?? "(none yet)"} grows every copy, then the size is recorded)`, volume)
        const done = yield* awaitResize(volume, sizeBytes, waitMs, Math.min(100, tickMs))
        return volumeInfo(done, yield* aliveSet)
      })

    const waitHealthy = (volume: string, timeoutMs: number) =>
      Effect.gen(function* () {
        const { value: info, settled } = yield* pollUntil(inspectVolume(volume), (info) => info.health === "healthy", timeoutMs, Math.min(100, tickMs))
        if (!settled) return yield* new ClusterError({ reason: "timeout", message: `volume ${volume} is still ${info.health} after ${timeoutMs} ms: ${info.reason}` })
        return info
      })

    /**
     * An operator accepts, for the volume's current epoch, that copies which are away may hold
     * writes the copy that serves lacks (records.ts `acceptLoss`): a master waiting for them serves
     * what its copy holds, and a lost master's in-sync replica that cannot prove its recent writes
     * may be promoted. While a master serves nothing waits, and nothing changes. Says which.
     */
    const acceptLoss = (volume: string) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
          const found = yield* getVolume(volume)
          if (!found) return yield* notFound(volume)
          const record = found.value
          const lease = yield* getMasterLease(volume)
          const nodeRows = yield* listNodes
          const alive = new Set(nodeRows.map((n) => n.value.name))
          if (record.master !== undefined && lease?.value.node === record.master && lease.value.epoch === record.epoch && lease.value.serving === true) {
            return { accepted: false, message: `${volume} is served by ${record.master} at epoch ${record.epoch}: no copy waits, so there is no loss to accept; nothing was changed`, volume: volumeInfo(record, alive) }
          }
          // Only a wait for copies that are away can be ended: the lost master, or an in-sync replica on a lost node.
          const away = [...(record.master === undefined || alive.has(record.master) ? [] : [record.master]), ...inSyncAway(record, (n) => alive.has(n))]
          if (away.length === 0) {
            return { accepted: false, message: `${volume}: no copy it could wait for is away (${record.master === undefined ? "no master recorded" : `master ${record.master}`} and every in-sync replica are up); nothing was changed (replivol volume inspect ${volume})`, volume: volumeInfo(record, alive) }
          }
          // Bound to the waiting master's process (a later restart of it waits again) and to the copies away now.
          const waiting = record.master !== undefined && alive.has(record.master) ? nodeRows.find((n) => n.value.name === record.master)?.value.incarnation : undefined
          const next: VolumeRecord = { ...record, acceptLoss: { epoch: record.epoch, requestedAtMs: now(), nodes: away, ...(waiting === undefined ? {} : { incarnation: waiting }) } }
          const done = yield* control.transaction({
            // The master lease as read too: a master that began serving meanwhile is not given an acceptance.
            compare: [{ key: keys.volume(volume), revision: found.revision }, { key: keys.master(volume), revision: lease?.revision ?? 0 }],
            put: [{ key: keys.volume(volume), value: encode(next) }],
          })
          if (!done.succeeded) continue
          const message = `${volume}: the loss of writes only ${away.join(", ")} may hold is accepted for epoch ${record.epoch}; ${record.master === undefined || !alive.has(record.master) ? "an in-sync replica here may now be promoted" : `${record.master} serves what its copy holds`}`
          publish("volume-loss-accepted", message, volume)
          return { accepted: true, message, volume: volumeInfo(next, alive) }
        }
        return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} kept changing while accepting the loss (${casAttemptsMax} tries); try again` })
      })

    /** Deletes the record as read; one that changed meanwhile (sync progress, an in-sync mark) is read again, up to `casAttemptsMax` times. */
    const deleteVolume = (volume: string) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
          const found = yield* getVolume(volume)
          if (!found) return yield* notFound(volume)
          const done = yield* control.transaction({ compare: [{ key: keys.volume(volume), revision: found.revision }], delete: [keys.volume(volume), keys.master(volume), keys.moveStatus(volume)] })
          if (!done.succeeded) continue
          publish("volume-deleted", `${volume} deleted`, volume)
          return
        }
        return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} kept changing while deleting (${casAttemptsMax} tries); try again` })
      })

    const listNodesInfo = Effect.gen(function* () {
      const [rows, configs] = yield* Effect.all([listNodes, listNodeConfigs])
      const ctl = yield* control.get(keys.controller)
      const controllerNode = ctl ? (JSON.parse(ctl.value) as { node?: string }).node : undefined
      return rows.map((r): NodeInfo => {
        const config = configs.get(r.value.name)?.value
        return { ...r.value, alive: true, controller: r.value.name === controllerNode, labels: config?.labels ?? {}, cordoned: config?.cordoned ?? false }
      })
    })

    /** Compare-and-swap on the node's config; a node that never registered (and has no config) is unknown. */
    const configureNode = (name: string, change: NodeConfigChange) =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 10; attempt++) {
          const row = yield* control.get(keys.nodeConfig(name))
          const decoded = row ? decodeNodeConfig(row.key, row.value) : undefined
          if (decoded instanceof ClusterError) return yield* decoded
          if (!decoded && !(yield* control.get(keys.node(name)))) {
            return yield* new ClusterError({ reason: "not-found", message: `node ${name} is not known: it has never registered with this cluster (see replivol node ls)` })
          }
          const current: NodeConfig = decoded ?? { name, labels: {}, cordoned: false }
          const bad = nodeLabelError(change, current)
          if (bad) return yield* bad
          const labels = Object.fromEntries(Object.entries({ ...current.labels, ...change.setLabels }).filter(([key]) => !(change.removeLabels ?? []).includes(key)))
          const next: NodeConfig = { name, labels, cordoned: change.cordoned ?? current.cordoned }
          const done = yield* control.transaction({ compare: [{ key: keys.nodeConfig(name), revision: row?.revision ?? 0 }], put: [{ key: keys.nodeConfig(name), value: encode(next) }] })
          if (done.succeeded) {
            if (next.cordoned !== current.cordoned) publish(next.cordoned ? "node-cordoned" : "node-uncordoned", `${name} ${next.cordoned ? "is cordoned: no new copy is placed on it and no replica on it is promoted" : "is uncordoned"}`)
            return next
          }
        }
        return yield* new ClusterError({ reason: "conflict", message: `node ${name}'s config kept changing; try again` })
      })

    const putRule = (input: unknown) =>
      Effect.gen(function* () {
        const rule = validateRule(input)
        if ("_tag" in rule) return yield* rule
        yield* control.put(keys.rule(rule.namespace, rule.name), encode(rule))
        publish("rule-saved", `rule ${rule.namespace}/${rule.name} saved`)
        return rule
      })

    const deleteRule = (namespace: string, name: string) =>
      Effect.gen(function* () {
        const existing = yield* control.get(keys.rule(namespace, name))
        if (!existing) return yield* new ClusterError({ reason: "not-found", message: `rule ${namespace}/${name} does not exist` })
        yield* control.delete(keys.rule(namespace, name))
      })

    /** The serving master of `volume` reachable from this process, or the error saying where it is. */
    const verifyingMaster = (volume: string) =>
      Effect.gen(function* () {
        const found = yield* getVolume(volume)
        if (!found) return yield* notFound(volume)
        const record = found.value
        const notServing = () => new ClusterError({ reason: "no-master", message: `volume ${volume} has no serving master right now (${record.master === undefined ? "none recorded" : `${record.master} at epoch ${record.epoch}`}); try again once it is healthy` })
        if (record.master === undefined) return yield* notServing()
        const local = record.master === me ? ownMaster(volume) : undefined
        if (local) return local.isFenced() || local.epoch !== record.epoch ? yield* notServing() : local
        const location = yield* locateMaster(volume)
        const inProcess = location && location.epoch === record.epoch ? inProcessMaster(location, volume) : undefined
        if (inProcess) return inProcess
        if (record.master === me) return yield* notServing()
        const masterNode = (yield* listNodes).find((n) => n.value.name === record.master)?.value
        return yield* new ClusterError({
          reason: "remote-master",
          message: `volume ${volume} is served by ${record.master}, in another process: run the verify against that node's admin API${masterNode?.api ? ` (replivol --api ${masterNode.api} volume verify ${volume})` : " (start it with --api)"}`,
        })
      })

    const verifyStatus = (volume: string) =>
      Effect.flatMap(verifyingMaster(volume), (master) => {
        const report = master.lastVerify()
        return report ? Effect.succeed(report) : Effect.fail(new ClusterError({ reason: "not-found", message: `no verify of ${volume} ran since its master opened (epoch ${master.epoch}): start one with replivol volume verify ${volume}` }))
      })

    return { createVolume, deleteVolume, changeVolumeLabels, resizeVolume, acceptLoss, waitHealthy, listNodesInfo, configureNode, putRule, deleteRule, verifyingMaster, verifyStatus }
  })
