/**
 * Placement and the controller's decisions, as pure functions of the cluster's state.
 *
 * `placeVolume` chooses a master (the `storageos.com/hint.master` node when it is available) and
 * replicas on distinct other nodes, least-loaded first, spread across failure domains: distinct
 * values of a node label (the volume's `storageos.com/topology-key`, else
 * `topology.kubernetes.io/zone`, else StorageOS v1's `iaas/failure-domain`) — best effort, with a
 * warning when the nodes cannot give every copy its own domain. Cordoned nodes get no new copy
 * and no promotion. `planVolume` is the controller's whole policy for one volume: promote an
 * in-sync replica when the master's node is lost (only after its master lease is gone, raising
 * the epoch; the longest-running of those that vouch for their copy), mark replicas on lost nodes failed, replace
 * a failed replica whose node stayed away past the grace period, and fill missing replicas.
 * Being pure, both are tested table by table and driven by the simulator's seeded random.
 */
import { ClusterError, keepingFormerMark, lossAccepted, promotedFromOf, type ReplicaRecord, type VolumeRecord } from "./records.ts"
import { defaultTopologyKey, legacyTopologyKey, type VolumeSpec } from "../volume/labels.ts"
import { assert } from "../core/assert.ts"
import { replicasKept } from "./volumeInfo.ts"

export interface Placement {
  readonly master: string
  readonly replicas: ReadonlyArray<string>
  /** Set when the copies could not be spread across distinct failure domains. */
  readonly warning?: string
}

/** What operators said about nodes: which are cordoned, and each node's labels. */
export interface NodeTopology {
  readonly cordoned: ReadonlySet<string>
  readonly labelsOf: (node: string) => Readonly<Record<string, string>> | undefined
}

export const noTopology: NodeTopology = { cordoned: new Set(), labelsOf: () => undefined }

/** The label key whose values are `spec`'s failure domains (for messages). */
export const topologyKeyOf = (spec: VolumeSpec): string => spec.topologyKey ?? defaultTopologyKey

/** The failure domain of `node` for `spec`: its value of the volume's key (default: the zone, else StorageOS v1's key). */
export const domainOf = (spec: VolumeSpec, topology: NodeTopology, node: string): string | undefined => {
  const labels = topology.labelsOf(node)
  if (labels === undefined) return undefined
  return spec.topologyKey !== undefined ? labels[spec.topologyKey] : labels[defaultTopologyKey] ?? labels[legacyTopologyKey]
}

/**
 * Picks `count` nodes of `ordered` (least loaded first), first those in a failure domain no copy
 * is in yet, then the rest. `spread` is false only when domains are known (some node has the
 * label) and the copies — those in `usedDomains` and the picked ones — do not each have their
 * own; a single copy needs no spreading.
 */
const pickSpread = (ordered: ReadonlyArray<string>, count: number, domain: (node: string) => string | undefined, usedDomains: ReadonlyArray<string | undefined>) => {
  const picked: string[] = []
  const taken = new Set(usedDomains.filter((d) => d !== undefined))
  for (const node of ordered) {
    if (picked.length === count) break
    const d = domain(node)
    if (d !== undefined && !taken.has(d)) {
      picked.push(node)
      taken.add(d)
    }
  }
  for (const node of ordered) {
    if (picked.length === count) break
    if (!picked.includes(node)) picked.push(node)
  }
  const all = [...usedDomains, ...picked.map(domain)]
  const known = all.filter((d) => d !== undefined)
  const domainsKnown = known.length > 0 || ordered.some((node) => domain(node) !== undefined)
  const spread = all.length <= 1 || !domainsKnown || (known.length === all.length && new Set(known).size === all.length)
  return { picked, spread }
}

const spreadWarning = (volume: string, spec: VolumeSpec, nodes: ReadonlyArray<string>, topology: NodeTopology) =>
  `${volume}: its copies on ${nodes.join(", ")} could not each get their own ${topologyKeyOf(spec)} (${nodes.map((n) => domainOf(spec, topology, n) ?? "none").join(", ")}): too few failure domains; placed anyway`

/** Copies (master or replica) per node, for least-loaded placement. */
export const loadOf = (volumes: ReadonlyArray<VolumeRecord>): Map<string, number> => {
  const load = new Map<string, number>()
  const add = (node: string | undefined) => node !== undefined && load.set(node, (load.get(node) ?? 0) + 1)
  for (const volume of volumes) {
    add(volume.master)
    for (const replica of volume.replicas) add(replica.node)
  }
  return load
}

/** Nodes ordered least-loaded first; ties broken by `random` (uniform in [0,1)). */
const byLoad = (nodes: ReadonlyArray<string>, load: ReadonlyMap<string, number>, random: () => number): string[] =>
  nodes
    .map((node) => ({ node, load: load.get(node) ?? 0, tie: random() }))
    .sort((a, b) => a.load - b.load || a.tie - b.tie || (a.node < b.node ? -1 : 1))
    .map((entry) => entry.node)

export const placeVolume = (
  volume: string,
  spec: VolumeSpec,
  liveNodes: ReadonlyArray<string>,
  load: ReadonlyMap<string, number>,
  random: () => number,
  topology: NodeTopology = noTopology,
): Placement | ClusterError => {
  const availableNodes = liveNodes.filter((node) => !topology.cordoned.has(node))
  const cordoned = liveNodes.length - availableNodes.length
  const cordonedText = cordoned === 0 ? "" : ` (${cordoned} more ${cordoned === 1 ? "is" : "are"} cordoned)`
  if (availableNodes.length === 0) return new ClusterError({ reason: "no-nodes", message: `cannot place ${volume}: no node is available${cordonedText}` })
  if (spec.replicas > availableNodes.length - 1) {
    return new ClusterError({
      reason: "too-few-nodes",
      message: `cannot place ${volume}: it asks for ${spec.replicas} replica${spec.replicas === 1 ? "" : "s"} on distinct nodes other than the master, but only ${availableNodes.length} node${availableNodes.length === 1 ? " is" : "s are"} available${cordonedText} (allowed: at most ${availableNodes.length - 1} replicas); nothing was created`,
    })
  }
  const ordered = byLoad(availableNodes, load, random)
  const master = spec.hintMaster !== undefined && availableNodes.includes(spec.hintMaster) ? spec.hintMaster : ordered[0]!
  const domain = (node: string) => domainOf(spec, topology, node)
  const { picked, spread } = pickSpread(ordered.filter((node) => node !== master), spec.replicas, domain, [domain(master)])
  return spread ? { master, replicas: picked } : { master, replicas: picked, warning: spreadWarning(volume, spec, [master, ...picked], topology) }
}

export interface ClusterView {
  readonly nowMs: number
  /** Nodes whose lease is alive. */
  readonly aliveNodes: ReadonlySet<string>
  /** Volumes whose master lease exists. */
  readonly masterLeased: ReadonlySet<string>
  /**
   * `volume@node@epoch` of each master lease marked serving (records.ts `MasterLease`): that
   * master opened its session. Absent: every leased master counts as serving, as before.
   */
  readonly masterServing?: ReadonlySet<string>
  readonly load: ReadonlyMap<string, number>
  readonly graceMs: number
  readonly random: () => number
  /** Cordons and node labels (default: none). */
  readonly topology?: NodeTopology
  /** Process incarnation of each alive node (records.ts `incarnation`; absent: every replica vouches, as before). */
  readonly incarnations?: ReadonlyMap<string, number | undefined>
  /** How long each lost node has been seen lost (monotonic); with `inSyncFailAfterMs`, see step 2 of `planVolume`. */
  readonly lostForMs?: ReadonlyMap<string, number>
  /** An in-sync replica on a lost node is failed only once its node has been lost this long (absent: at once). */
  readonly inSyncFailAfterMs?: number
}

/**
 * An in-sync replica vouches for its copy while its node's process has not started again since it
 * was recorded in sync (records.ts `syncedIncarnation`; records without it vouch).
 */
export const vouches = (replica: ReplicaRecord, incarnations: ReadonlyMap<string, number | undefined> | undefined): boolean =>
  replica.syncedIncarnation === undefined || incarnations === undefined || incarnations.get(replica.node) === replica.syncedIncarnation

/**
 * The candidate whose node's process has run the longest (lowest incarnation), ties and nodes of
 * unknown incarnation drawn at random. Its page cache covers the most: of copies that restarted,
 * it lost the least; and a master promoted from it does not step down again for an older one (a
 * chain of step-downs drops a good copy at each step).
 */
const longestRunning = (candidates: ReadonlyArray<ReplicaRecord>, view: ClusterView): ReplicaRecord => {
  const incarnationOf = (r: ReplicaRecord) => view.incarnations?.get(r.node) ?? Infinity
  const oldest = Math.min(...candidates.map(incarnationOf))
  const first = candidates.filter((r) => incarnationOf(r) === oldest)
  return first[Math.floor(view.random() * first.length)]!
}

export interface Plan {
  readonly record: VolumeRecord
  readonly events: ReadonlyArray<string>
}

const promote = (record: VolumeRecord, view: ClusterView, events: string[]): VolumeRecord => {
  const cordoned = view.topology?.cordoned
  const inSync = record.replicas.filter((r) => r.state === "in-sync" && view.aliveNodes.has(r.node) && !cordoned?.has(r.node))
  const lostMaster = record.master
  // While the lost master may come back with every acknowledged write, only a replica that still
  // vouches is promoted: one whose node restarted since it was recorded in sync may have lost its
  // unflushed writes to a power loss. A master that stepped down (none recorded) proved nothing:
  // then any in-sync replica will do. Found by the cluster simulator (seed 31: a replica lost power
  // while its master was cut off, and was promoted without writes the master had acknowledged).
  // An operator who gave up on the lost master (records.ts `acceptLoss`, given while it was lost) lets one that does not vouch be promoted too.
  const vouching = inSync.filter((r) => vouches(r, view.incarnations))
  const accepted = lostMaster !== undefined && lossAccepted(record, "controller").has(lostMaster)
  const candidates = lostMaster === undefined || vouching.length > 0 || accepted ? (vouching.length > 0 ? vouching : inSync) : []
  if (candidates.length === 0) {
    const waiting = inSync.length > 0 ? `; waiting for it: the in-sync replicas restarted since they were recorded in sync (to promote one anyway, losing what only the master held: replivol volume accept-loss ${record.volume})` : ""
    const reason = `master ${lostMaster ?? "(none)"} is lost and no in-sync replica is available to promote (replicas: ${record.replicas.map((r) => `${r.node} ${r.state}${view.aliveNodes.has(r.node) ? "" : " (node lost)"}${cordoned?.has(r.node) ? " (cordoned)" : ""}`).join(", ") || "none"})${waiting}`
    if (record.unavailableReason === reason) return record
    events.push(`${record.volume}: unavailable: ${reason}`)
    return { ...record, unavailableReason: reason }
  }
  const chosen = longestRunning(candidates, view)
  // The lost master stays listed, as an in-sync replica that does not vouch, until the new master
  // serves: a replica that lost power moments ago still looks alive (and vouching) until its node
  // lease expires, and was promoted while the lost master's copy — the only one with every
  // acknowledged write — was dropped (cluster simulator seeds 211 and 783). A promoted copy that
  // cannot prove its recent writes now waits for the former master and steps down for it.
  const from = record.promotedFrom
  const promotedIncarnation = from !== undefined && from.node === lostMaster && from.epoch === record.epoch ? { promotedIncarnation: from.incarnation } : {}
  const former: ReplicaRecord[] = lostMaster === undefined ? [] : [{ node: lostMaster, state: "in-sync", syncedEpoch: record.epoch, syncedIncarnation: 0, formerMaster: true, ...promotedIncarnation }]
  const replicas: ReplicaRecord[] = [...record.replicas.filter((r) => r.node !== chosen.node && r.formerMaster !== true), ...former]
  events.push(`${record.volume}: promoted ${chosen.node} (epoch ${record.epoch + 1}) after master ${lostMaster ?? "(none)"} was lost`)
  const { unavailableReason: _dropped, promotedFrom: _earlier, acceptLoss: acceptance, ...rest } = record
  // The chosen copy's process may crash before it serves: a later process of its node that
  // continues this one proves the copy (records.ts `promotedFrom`). Without it, the promoted copy
  // came back unproven, stepped down, and the controller promoted the former master, which had
  // lost power (cluster simulator sweep seed 9346).
  const promotedFrom = promotedFromOf(chosen, record.epoch + 1)
  // A promotion the operator's acceptance allowed carries it to the new epoch: the promoted copy
  // does not wait again for the former master the operator gave up on.
  const promotedProcess = view.incarnations?.get(chosen.node)
  const carried = accepted && acceptance !== undefined && vouching.length === 0 && promotedProcess !== undefined
    ? { acceptLoss: { epoch: record.epoch + 1, requestedAtMs: acceptance.requestedAtMs, nodes: acceptance.nodes, incarnation: promotedProcess } } : {}
  return { ...rest, epoch: record.epoch + 1, master: chosen.node, replicas, ...promotedFrom, ...carried }
}

/**
 * The new master serves: a former master's entry goes — unless this master synced that copy since
 * (in sync at this epoch) while the count lacks in-sync copies: it is then an ordinary in-sync
 * replica, kept. Dropping it lost every acknowledged write when the new master had just lost
 * power, its lease still marked serving: the re-synced former master was the only other copy that
 * held them (cluster simulator sweep seed 3439). A kept one takes the slot of a replica not in
 * sync yet (`dropForKept`); a count already full of in-sync copies drops it as before, and a
 * move's or drain's extra copy keeps its place.
 */
const settleFormerMasters = (record: VolumeRecord, events: string[]): VolumeRecord => {
  const ordinary = record.replicas.filter((r) => r.formerMaster !== true)
  let room = record.spec.replicas - ordinary.filter((r) => r.state === "in-sync").length
  const replicas: ReplicaRecord[] = []
  for (const r of record.replicas) {
    if (r.formerMaster !== true) replicas.push(r)
    else if (r.state === "in-sync" && r.syncedEpoch === record.epoch && room > 0) {
      room--
      const { formerMaster: _mark, ...replica } = r
      replicas.push(replica)
      events.push(`${record.volume}: former master ${r.node}'s copy kept as an in-sync replica: master ${record.master} serves and synced it`)
    } else events.push(`${record.volume}: former master ${r.node}'s copy dropped: master ${record.master} serves`)
  }
  return { ...record, replicas: dropForKept(replicas, replicas.length - Math.max(record.spec.replicas, ordinary.length), record.volume, events) }
}

/**
 * Drops `surplus` replicas not in sync, ranked as a lowered count ranks them (volumeInfo.ts
 * `replicasKept`: failed first, then provisioned, then syncing; the last listed first); the rest
 * keep their order.
 */
const dropForKept = (replicas: ReadonlyArray<ReplicaRecord>, surplus: number, volume: string, events: string[]): ReadonlyArray<ReplicaRecord> => {
  if (surplus <= 0) return replicas
  const kept = new Set(replicasKept(replicas, replicas.length - surplus))
  const dropped = replicas.filter((r) => !kept.has(r))
  assert(dropped.every((r) => r.state !== "in-sync"), `${volume}: a kept former master needs a replica slot not in sync (room was counted)`)
  for (const r of dropped) events.push(`${volume}: replica on ${r.node} (${r.state}) dropped: the kept former master's copy takes its slot`)
  return replicas.filter((r) => kept.has(r))
}

/** The controller's next record for one volume, or undefined when nothing is to change. */
export const planVolume = (record: VolumeRecord, view: ClusterView): Plan | undefined => {
  const events: string[] = []
  let next = record
  // 1. The master is lost: promote once its lease is gone.
  const masterLost = next.master === undefined || !view.aliveNodes.has(next.master)
  if (masterLost && !view.masterLeased.has(next.volume)) next = promote(next, view, events)
  // The master is back (or never left) and holds its lease: a stale "unavailable" note goes.
  if (next.unavailableReason !== undefined && next.master !== undefined && view.aliveNodes.has(next.master) && view.masterLeased.has(next.volume)) {
    const { unavailableReason: _cleared, ...rest } = next
    next = rest
    events.push(`${record.volume}: master ${next.master} is serving again`)
  }
  // 2. Replicas on lost nodes are failed — only while a master serves. Without one no write is
  // acknowledged, so a replica that is away misses nothing: an in-sync one stays a candidate for
  // promotion when it returns. (Failing it left a volume whose master had stepped down with no
  // copy to promote, unavailable for good: found by the cluster simulator, seed 43.)
  // Serving means holding the master lease too: a master that is alive but waits (its copy cannot
  // prove it holds every acknowledged write, or its first lease TTL) acknowledges nothing, and
  // failing the replica it waits for left nothing to promote (cluster simulator seed 105).
  const masterServes = next.master !== undefined && view.aliveNodes.has(next.master) && view.masterLeased.has(next.volume)
  // The former master's copy is not needed once the new master serves (it holds every acknowledged
  // write): serves, not merely holds its lease. A promoted master that crashed or lost power while
  // opening its session still holds its lease until it expires; dropping the former master then left
  // no copy with every acknowledged write, and the promoted one served what its disk kept (cluster
  // simulator sweep seeds 5578 and 6415).
  const opened = view.masterServing === undefined || view.masterServing.has(`${next.volume}@${next.master}@${next.epoch}`)
  if (masterServes && opened && next.replicas.some((r) => r.formerMaster === true)) next = settleFormerMasters(next, events)
  // An accepted loss ends with the wait it ended: kept, it would let a later restart of this epoch's
  // master that lost power again serve at once while a better copy is away.
  if (masterServes && opened && next.acceptLoss !== undefined) {
    const { acceptLoss: _ended, ...rest } = next
    next = rest
  }
  if (masterServes) {
    next = {
      ...next,
      replicas: next.replicas.map((r) => {
        if (view.aliveNodes.has(r.node) || r.state === "failed") return r
        // An in-sync replica waits until a master that died with it (a power outage takes both)
        // has lost its lease too: failing it for a dead master that looked alive dropped the only
        // copy with every acknowledged write, and the master, back after a power loss, served
        // what its disk kept (cluster simulator seed 1705). A serving master records a failure
        // itself before it acknowledges a write without the replica.
        if (r.state === "in-sync" && (view.lostForMs?.get(r.node) ?? Infinity) < (view.inSyncFailAfterMs ?? 0)) return r
        events.push(`${record.volume}: replica on ${r.node} failed (node lost)`)
        // A former master's entry keeps its mark: it goes once the master has opened (above), never counted as a replica.
        return keepingFormerMark(r, { node: r.node, state: "failed", reason: "node lost", failedAtMs: view.nowMs })
      }),
    }
  }
  // 3. A failed replica whose node stayed away past the grace period is replaced.
  const expired = next.replicas.filter((r) => r.state === "failed" && !view.aliveNodes.has(r.node) && view.nowMs - (r.failedAtMs ?? 0) >= view.graceMs)
  if (expired.length > 0) {
    next = { ...next, replicas: next.replicas.filter((r) => !expired.includes(r)) }
    for (const r of expired) events.push(`${record.volume}: replica on ${r.node} dropped after the ${view.graceMs} ms grace period`)
  }
  // 4. Fill missing replicas on available nodes (never on the master's node or twice on one node).
  const used = new Set([next.master, ...next.replicas.map((r) => r.node)])
  // A failed replica still holds its slot during the grace period (it may come back and catch up by delta).
  const wanted = next.spec.replicas - next.replicas.filter((r) => r.formerMaster !== true).length
  if (wanted > 0 && next.master !== undefined && view.aliveNodes.has(next.master)) {
    const topology = view.topology ?? noTopology
    const spec = next.spec
    const ordered = byLoad([...view.aliveNodes].filter((n) => !used.has(n) && !topology.cordoned.has(n)), view.load, view.random)
    const copies = [next.master, ...next.replicas.map((r) => r.node)]
    const { picked: free, spread } = pickSpread(ordered, Math.min(wanted, ordered.length), (node) => domainOf(spec, topology, node), copies.map((node) => domainOf(spec, topology, node)))
    if (free.length > 0) {
      next = { ...next, replicas: [...next.replicas, ...free.map((node): ReplicaRecord => ({ node, state: "provisioned" }))] }
      for (const node of free) events.push(`${record.volume}: replica placed on ${node}`)
      if (!spread) events.push(`warning: ${spreadWarning(record.volume, spec, [...copies, ...free], topology)}`)
    }
  }
  return events.length === 0 && next === record ? undefined : { record: next, events }
}

/**
 * A node for one more copy of the volume (a move to a node that holds none, a drain replacing a
 * copy): alive, uncordoned, holding no copy of it and not in `exclude`; least loaded, in a failure
 * domain no other copy is in when there is one. Undefined: no node can take it.
 */
export const placeExtraCopy = (record: VolumeRecord, view: ClusterView, exclude: ReadonlySet<string>): string | undefined => {
  const topology = view.topology ?? noTopology
  const used = new Set([record.master, ...record.replicas.map((r) => r.node)])
  const free = [...view.aliveNodes].filter((n) => !used.has(n) && !exclude.has(n) && !topology.cordoned.has(n))
  const staying = [record.master, ...record.replicas.map((r) => r.node)].filter((n): n is string => n !== undefined && !exclude.has(n))
  const { picked } = pickSpread(byLoad(free, view.load, view.random), 1, (node) => domainOf(record.spec, topology, node), staying.map((node) => domainOf(record.spec, topology, node)))
  return picked[0]
}
