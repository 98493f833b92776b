/**
 * Typed access to the cluster's records in the control store: read, list, and update by
 * compare-and-swap with bounded retries (read the record, apply a pure change, write it only if
 * nobody changed it meanwhile).
 */
import { Effect } from "effect"
import { ControlStore, type ControlError } from "../control/ControlStore.ts"
import { waitsForSync, type ReplicaCounts } from "../volume/health.ts"
import { ClusterError, decodeMasterLease, decodeNode, decodeNodeConfig, decodeVolume, encode, keys, type MasterLease, type NodeRecord, type VolumeRecord } from "./records.ts"

/** Compare-and-swap attempts before an update gives up with `conflict`. */
export const casAttemptsMax = 20

export interface Versioned<A> {
  readonly value: A
  readonly revision: number
  readonly lease: string | undefined
}

const collect = <A>(rows: ReadonlyArray<{ key: string; value: string; revision: number; lease: string | undefined }>, decode: (key: string, text: string) => A | ClusterError) => {
  const out: Array<Versioned<A>> = []
  for (const row of rows) {
    const value = decode(row.key, row.value)
    if (!(value instanceof ClusterError)) out.push({ value, revision: row.revision, lease: row.lease })
  }
  return out
}

export const listNodes = ControlStore.use((store) => Effect.map(store.list(keys.nodes), (rows) => collect(rows, decodeNode)))
/** Operators' node configs (labels, cordon), by node name. */
export const listNodeConfigs = ControlStore.use((store) =>
  Effect.map(store.list(keys.nodeConfigs), (rows) => new Map(collect(rows, decodeNodeConfig).map((row) => [row.value.name, row] as const))))
export const listVolumes = ControlStore.use((store) => Effect.map(store.list(keys.volumes), (rows) => collect(rows, decodeVolume)))
/** Master leases by volume name. */
export const listMasterLeases = ControlStore.use((store) =>
  Effect.map(store.list(keys.masters), (rows) => {
    const out = new Map<string, Versioned<MasterLease>>()
    for (const row of rows) {
      const value = decodeMasterLease(row.key, row.value)
      if (!(value instanceof ClusterError)) out.set(row.key.slice(keys.masters.length), { value, revision: row.revision, lease: row.lease })
    }
    return out
  }))

export const getVolume = (volume: string): Effect.Effect<Versioned<VolumeRecord> | undefined, ControlError | ClusterError, ControlStore> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const row = yield* store.get(keys.volume(volume))
    if (!row) return undefined
    const value = decodeVolume(row.key, row.value)
    if (value instanceof ClusterError) return yield* value
    return { value, revision: row.revision, lease: row.lease }
  })

export const getNode = (name: string): Effect.Effect<NodeRecord | undefined, ControlError, ControlStore> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const row = yield* store.get(keys.node(name))
    if (!row) return undefined
    const value = decodeNode(row.key, row.value)
    return value instanceof ClusterError ? undefined : value
  })

export const getMasterLease = (volume: string): Effect.Effect<Versioned<MasterLease> | undefined, ControlError, ControlStore> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    const row = yield* store.get(keys.master(volume))
    if (!row) return undefined
    const value = decodeMasterLease(row.key, row.value)
    return value instanceof ClusterError ? undefined : { value, revision: row.revision, lease: row.lease }
  })

/**
 * Applies `change` to the volume's record by compare-and-swap, re-reading on conflict.
 * `change` returns the new record, or undefined to leave it (the update then succeeds as a no-op).
 */
export const updateVolume = (
  volume: string,
  change: (record: VolumeRecord) => VolumeRecord | undefined | ClusterError,
): Effect.Effect<VolumeRecord | undefined, ControlError | ClusterError, ControlStore> =>
  Effect.map(updateVolumeVersioned(volume, change), (versioned) => versioned.value)

/**
 * `updateVolume`, telling the record's mod revision as it left it: the new one when `change`
 * wrote, else the one it read (`change` is given it too).
 */
export const updateVolumeVersioned = (
  volume: string,
  change: (record: VolumeRecord, revision: number) => VolumeRecord | undefined | ClusterError,
): Effect.Effect<{ readonly value: VolumeRecord; readonly revision: number }, ControlError | ClusterError, ControlStore> =>
  Effect.gen(function* () {
    const store = yield* ControlStore
    for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
      const current = yield* getVolume(volume)
      if (!current) return yield* new ClusterError({ reason: "not-found", message: `volume ${volume} does not exist` })
      const next = change(current.value, current.revision)
      if (next instanceof ClusterError) return yield* next
      if (next === undefined) return { value: current.value, revision: current.revision }
      const result = yield* store.transaction({ compare: [{ key: keys.volume(volume), revision: current.revision }], put: [{ key: keys.volume(volume), value: encode(next) }] })
      if (result.succeeded) return { value: next, revision: result.revision }
    }
    return yield* new ClusterError({ reason: "conflict", message: `volume ${volume} kept changing; gave up after ${casAttemptsMax} attempts` })
  })

/** The record's replica states counted against the requested replicas (slots not placed yet are failed). */
export const recordCounts = (record: VolumeRecord): ReplicaCounts => {
  const requested = record.spec.replicas
  const inSync = Math.min(record.replicas.filter((r) => r.state === "in-sync").length, requested)
  const syncing = Math.min(record.replicas.filter((r) => r.state === "syncing" || r.state === "provisioned").length, requested - inSync)
  return { inSync, syncing, failed: requested - inSync - syncing }
}

/**
 * Where the volume's master is now, from its record and its node's record (undefined: none yet),
 * and whether the record says a failure-mode refusal is only a wait for syncing replicas.
 */
export const locateMaster = (volume: string) =>
  Effect.gen(function* () {
    const current = yield* getVolume(volume)
    if (!current || current.value.master === undefined) return undefined
    const master = yield* getNode(current.value.master)
    if (!master) return undefined
    return {
      node: master.name, address: { host: master.host, port: master.port }, epoch: current.value.epoch,
      waitsForSync: waitsForSync(current.value.spec, recordCounts(current.value)),
    }
  })
