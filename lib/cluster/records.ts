/**
 * The cluster's shared truth, as records in the control store, and their keys.
 *
 *   replivol/nodes/<node>            NodeRecord     leased by the node (gone when the node is lost)
 *   replivol/nodeconfig/<node>       NodeConfig     the operator's labels and cordon of a node (kept while it is away)
 *   replivol/volumes/<ns>/<name>     VolumeRecord   changed only by compare-and-swap
 *   replivol/masters/<ns>/<name>     MasterLease    leased by the master's node: it serves IO only while this lives
 *   replivol/rules/<ns>/<name>       Rule
 *   replivol/nskeys/<ns>             NamespaceKeyRecord  the namespace key, sealed by the nodes' unwrapping key (lib/crypt/keys.ts)
 *   replivol/controller              { node }       leased by the elected controller
 *   replivol/status/moves/<ns>/<name>  MoveStatus  the running or last move of a volume (opStatus.ts; deleted with it)
 *   replivol/status/drains/<node>    DrainStatus    the running or last drain of a node (opStatus.ts)
 *
 * Records are JSON; decoding validates them (a corrupt record is a typed error, never a crash).
 */
import { isCount, isRecord } from "../core/guards.ts"
import { Data } from "effect"
import type { Rule } from "../policy/rules.ts"
import type { VolumeSpec } from "../volume/labels.ts"
import { isVolumeEncryption, type VolumeEncryption } from "../crypt/keys.ts"

export const keys = {
  prefix: "replivol/",
  nodes: "replivol/nodes/",
  node: (name: string) => `replivol/nodes/${name}`,
  nodeConfigs: "replivol/nodeconfig/",
  nodeConfig: (name: string) => `replivol/nodeconfig/${name}`,
  volumes: "replivol/volumes/",
  volume: (name: string) => `replivol/volumes/${name}`,
  masters: "replivol/masters/",
  master: (name: string) => `replivol/masters/${name}`,
  rules: "replivol/rules/",
  rule: (namespace: string, name: string) => `replivol/rules/${namespace}/${name}`,
  controller: "replivol/controller",
  namespaceKey: (namespace: string) => `replivol/nskeys/${namespace}`,
  moveStatus: (volume: string) => `replivol/status/moves/${volume}`,
  drainStatus: (node: string) => `replivol/status/drains/${node}`,
} as const

export interface NodeRecord {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly api?: string
  readonly startedAtMs: number
  /**
   * The control store's revision when the node's process started: fresh and higher at every start
   * of the process, kept by a re-registration after a lost lease (the process, and its page cache,
   * ran on). Of two nodes, the lower has run since earlier.
   */
  readonly incarnation?: number
}

/** What operators set on a node: labels (failure domains and their own) and whether it is cordoned. */
export interface NodeConfig {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  /** No new copy is placed on a cordoned node and no replica on it is promoted. */
  readonly cordoned: boolean
}

export type ReplicaRecordState = "provisioned" | "syncing" | "in-sync" | "failed"

export interface ReplicaRecord {
  readonly node: string
  readonly state: ReplicaRecordState
  readonly reason?: string
  /** When it was marked failed (control-store clock of the writer); the grace period counts from here. */
  readonly failedAtMs?: number
  /** The epoch in which it was last in sync (a returning copy from an older epoch gets a full sync). */
  readonly syncedEpoch?: number
  /**
   * Its node's process incarnation (NodeRecord `incarnation`) when it was recorded in sync. A node
   * that started again since may have lost unflushed writes in a power loss it cannot tell from a
   * restart: until recorded in sync again it does not vouch for its copy.
   */
  readonly syncedIncarnation?: number
  /**
   * The master this epoch's promotion replaced, kept as an in-sync replica (placement.ts `promote`)
   * until the new master serves: should the promoted copy turn out unable to prove its recent
   * writes (its node restarted), it waits for this copy and steps down for it. Its
   * `syncedIncarnation` is 0 (it never vouches) until its node's agent proves the process that
   * served at `syncedEpoch` still holds it (agent.ts `continueInSync`). Not counted against the
   * replica count; dropped by the controller once the new master serves.
   */
  readonly formerMaster?: true
  /**
   * A former master that had itself been promoted at `syncedEpoch` from an in-sync replica: the
   * process it was promoted under (the record's `promotedFrom`). That process, or one continuing
   * it, proves the copy too, whether or not it served (agent.ts `continueInSync`): a promoted
   * master paused before it served, then replaced, held every acknowledged write and was not
   * waited for (cluster simulator sweep seed 8470).
   */
  readonly promotedIncarnation?: number
  /** While syncing: bytes copied so far and in all (written by the master about once a second). */
  readonly bytesDone?: number
  readonly bytesTotal?: number
}

export interface VolumeRecord {
  readonly volume: string
  /** Unique id, fresh at every create (a volume deleted and created again is another volume). Absent in records made before it existed. */
  readonly uid?: string
  /** The size IO may address: every in-sync copy has at least this many bytes. Only grows. */
  readonly sizeBytes: number
  /**
   * A resize asked for and not done yet (lib/cluster/resize.ts): the master grows every copy to
   * this, then moves `sizeBytes` here in one compare-and-swap. Absent when none is under way.
   */
  readonly resizeToBytes?: number
  /** Labels after the namespace's rules were applied. */
  readonly labels: Readonly<Record<string, string>>
  readonly spec: VolumeSpec
  readonly createdAtMs: number
  /** Raised by every promotion; replicas refuse frames from a lower epoch. */
  readonly epoch: number
  /**
   * The epoch the volume was created at. An epoch above it means a master change, and every master
   * change follows a master that served (a promotion or hand-over needs an in-sync copy, synced by
   * a serving master): the volume has held data, so a copy without one is not the volume (agentPlan.ts
   * `stepDownDecision`). Absent in records made before it existed.
   */
  readonly createdEpoch?: number
  /**
   * Set by a promotion (placement.ts `promote`): the promoted copy's node and the process under
   * which it was last recorded in sync as a replica. A later process of that node that continues
   * it (it crashed, the machine stayed up: lib/store/continuity.ts) proves the copy holds every
   * acknowledged write, as a replica's re-stamp does (agent.ts `continueInSync`). Only for `epoch`.
   */
  readonly promotedFrom?: { readonly node: string; readonly incarnation: number; readonly epoch: number }
  /**
   * An operator accepted that the copies in `nodes`, away, may hold writes the copy that serves
   * lacks (`replivol volume accept-loss`): the recorded master's process `incarnation` serves what
   * it holds instead of waiting for them (agentPlan.ts `stepDownDecision`); given while the master
   * was lost (no `incarnation`), the controller may promote an in-sync replica that does not vouch
   * (placement.ts `promote`), and the promotion carries it to the promoted copy's process. Only
   * for `epoch` and those nodes; the controller removes it once the master serves.
   */
  readonly acceptLoss?: LossAcceptance
  /** The master's node, or undefined when no copy can serve (`unavailableReason` says why). */
  readonly master: string | undefined
  readonly replicas: ReadonlyArray<ReplicaRecord>
  readonly unavailableReason?: string
  /** Rules applied at creation, in order. */
  readonly rulesApplied: ReadonlyArray<string>
  /** An encrypted volume's sealed key (spec.encryption; lib/crypt/keys.ts). */
  readonly encryption?: VolumeEncryption
  /** A planned master change in progress (`volume move`, `node drain`; cluster/handover.ts). */
  readonly move?: VolumeMove
  /** The master of `epoch` took over from `from` by a planned hand-over that drained every write (cluster/handover.ts). */
  readonly handover?: { readonly from: string; readonly epoch: number }
  /**
   * A volume update lowered the replica count below the in-sync replicas: the serving master
   * drops the surplus (volumeInfo.ts `trimmedRecord`), never the API — only a master that serves
   * is sure to hold every acknowledged write, and one that died a moment ago still looks alive
   * until its lease expires. Absent when nothing is to drop.
   */
  readonly trimReplicas?: true
}

/**
 * A planned hand-over of a volume's master to `to`, an in-sync replica: the API writes it, the
 * target's agent arms (watches the record, so it takes over as soon as it is named master) and
 * sets `armed`, then the master's agent fences, drains and writes the hand-over.
 */
export interface VolumeMove {
  readonly to: string
  /** The target watches the record: the master may hand over. */
  readonly armed?: boolean
  /** The old master's copy is dropped (a copy was added for the move) instead of staying as an in-sync replica. */
  readonly dropOld?: boolean
  readonly requestedAtMs: number
  /** The hand-over was given up, and why (the requester reports it and clears the move). */
  readonly abandoned?: string
}

export interface MasterLease {
  readonly node: string
  readonly epoch: number
  /**
   * Set by the master once its session is open and serves IO (masterRole.ts `noteServing`). The
   * lease is taken before the open, which can take long (a replica that does not answer, a
   * resize): until then the volume is not healthy, whatever its record says.
   */
  readonly serving?: true
}

export class ClusterError extends Data.TaggedError("ClusterError")<{
  readonly reason: "not-found" | "exists" | "no-nodes" | "too-few-nodes" | "corrupt-record" | "conflict" | "no-master" | "timeout" | "bad-request" | "remote-master"
  readonly message: string
  readonly cause?: unknown
}> {}


const parse = (key: string, text: string): Record<string, unknown> | ClusterError => {
  try {
    const value: unknown = JSON.parse(text)
    if (isRecord(value)) return value
  } catch {
    // fall through
  }
  return new ClusterError({ reason: "corrupt-record", message: `record ${key} is not a JSON object` })
}

export const decodeNode = (key: string, text: string): NodeRecord | ClusterError => {
  const value = parse(key, text)
  if (value instanceof ClusterError) return value
  if (typeof value.name !== "string" || typeof value.host !== "string" || !isCount(value.port) || !isCount(value.startedAtMs) || !(value.incarnation === undefined || isCount(value.incarnation))) {
    return new ClusterError({ reason: "corrupt-record", message: `node record ${key} lacks name/host/port/startedAtMs` })
  }
  return value as unknown as NodeRecord
}

export const decodeNodeConfig = (key: string, text: string): NodeConfig | ClusterError => {
  const value = parse(key, text)
  if (value instanceof ClusterError) return value
  const labels = value.labels
  const ok = typeof value.name === "string" && typeof value.cordoned === "boolean" && isRecord(labels) && Object.values(labels).every((v) => typeof v === "string")
  if (!ok) return new ClusterError({ reason: "corrupt-record", message: `node config ${key} is malformed (expected name, labels of strings, cordoned)` })
  return value as unknown as NodeConfig
}

const replicaStates = new Set(["provisioned", "syncing", "in-sync", "failed"])

export const decodeVolume = (key: string, text: string): VolumeRecord | ClusterError => {
  const value = parse(key, text)
  if (value instanceof ClusterError) return value
  const ok = typeof value.volume === "string" && isCount(value.sizeBytes) && isCount(value.epoch) && isRecord(value.spec) && isRecord(value.labels) &&
    (value.master === undefined || typeof value.master === "string") && Array.isArray(value.replicas) &&
    value.replicas.every((r) => isRecord(r) && typeof r.node === "string" && replicaStates.has(r.state as string)) &&
    (value.resizeToBytes === undefined || (isCount(value.resizeToBytes) && value.resizeToBytes > (value.sizeBytes as number))) &&
    (value.encryption === undefined || isVolumeEncryption(value.encryption)) &&
    (value.move === undefined || (isRecord(value.move) && typeof value.move.to === "string" && isCount(value.move.requestedAtMs))) &&
    (value.trimReplicas === undefined || value.trimReplicas === true) &&
    (value.createdEpoch === undefined || (isCount(value.createdEpoch) && value.createdEpoch <= (value.epoch as number))) &&
    (value.acceptLoss === undefined || (isRecord(value.acceptLoss) && isCount(value.acceptLoss.epoch) && isCount(value.acceptLoss.requestedAtMs) &&
      Array.isArray(value.acceptLoss.nodes) && value.acceptLoss.nodes.every((n) => typeof n === "string") && (value.acceptLoss.incarnation === undefined || isCount(value.acceptLoss.incarnation)))) &&
    (value.promotedFrom === undefined || (isRecord(value.promotedFrom) && typeof value.promotedFrom.node === "string" && isCount(value.promotedFrom.incarnation) && isCount(value.promotedFrom.epoch)))
  if (!ok) return new ClusterError({ reason: "corrupt-record", message: `volume record ${key} is malformed` })
  return { rulesApplied: [], ...value } as unknown as VolumeRecord
}

export const decodeMasterLease = (key: string, text: string): MasterLease | ClusterError => {
  const value = parse(key, text)
  if (value instanceof ClusterError) return value
  if (typeof value.node !== "string" || !isCount(value.epoch) || (value.serving !== undefined && value.serving !== true)) return new ClusterError({ reason: "corrupt-record", message: `master lease ${key} is malformed` })
  return value as unknown as MasterLease
}

export const encode = (record: object): string => JSON.stringify(record)

/** The volume's unique id; records made before uids existed get one derived from name and creation time. */
/** `next`, an update of replica entry `from`, keeping `from`'s former-master mark: a state change never turns a former master into a counted replica. */
export const keepingFormerMark = (from: ReplicaRecord, next: ReplicaRecord): ReplicaRecord =>
  from.formerMaster === true && next.formerMaster !== true ? { ...next, formerMaster: true } : next

/**
 * `promotedFrom` for a record naming `entry`'s node master at `epoch` (a promotion or a hand-over):
 * the process it was in sync under; none when that is unknown (an entry of no recorded process, or
 * a former master's 0).
 */
export const promotedFromOf = (entry: ReplicaRecord | undefined, epoch: number): Pick<VolumeRecord, "promotedFrom"> =>
  entry?.syncedIncarnation === undefined || entry.syncedIncarnation === 0 ? {} : { promotedFrom: { node: entry.node, incarnation: entry.syncedIncarnation, epoch } }

/** The nodes of the record's in-sync replicas that are away (`alive` says no): copies that may hold writes no copy up holds. */
export const inSyncAway = (record: VolumeRecord, alive: (node: string) => boolean): ReadonlyArray<string> =>
  record.replicas.filter((r) => r.state === "in-sync" && !alive(r.node)).map((r) => r.node)

/** What `volume accept-loss` gave up on (records.ts VolumeRecord `acceptLoss`). */
export interface LossAcceptance {
  readonly epoch: number
  readonly requestedAtMs: number
  /** The copies that were away, given up on: the lost master and in-sync replicas on lost nodes. */
  readonly nodes: ReadonlyArray<string>
  /** The process of the recorded master that was waiting; absent when the master was lost. */
  readonly incarnation?: number
}

/**
 * The copies an operator gave up on for the record's epoch, as `process` sees them: the waiting
 * master's process (`process` its incarnation), or the controller (`process` "controller": only
 * an acceptance given while the master was lost). None when there is no acceptance for this epoch.
 */
export const lossAccepted = (record: VolumeRecord, process: number | "controller"): ReadonlySet<string> => {
  const accepted = record.acceptLoss
  if (accepted === undefined || accepted.epoch !== record.epoch) return new Set()
  if (process === "controller" ? accepted.incarnation !== undefined : accepted.incarnation !== process) return new Set()
  return new Set(accepted.nodes)
}

export const uidOf = (record: VolumeRecord): string => record.uid ?? `c${record.createdAtMs.toString(36)}`
