/**
 * A local cluster: N cluster nodes in one process sharing one control store, each in its own
 * Scope so one can crash (`kill`) and come back (`revive`) while the others run.
 *
 * A kill imitates a crash, not a shutdown: the node's view of the control store is cut first
 * (every call fails `unreachable`, so its lease is neither renewed nor revoked and must expire,
 * as when a machine dies), then its scope is closed, which stops its listener and drops its
 * connections. A revive starts the node again with the same name, address and data directory.
 *
 * `createLocalCluster` is the Promise facade the examples use; `startLocalCluster` is the
 * Effect API the CLI's `cluster up` builds on (it provides the layers itself).
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { startClusterNode, type AcceptLossResult, type ClusterEvent, type ClusterNode, type ClusterNodeOptions, type DrainStatus, type MoveStatus, type NodeConfigChange, type VolumeInfo, type VolumeLabelChange } from "../cluster/clusterNode.ts"
import type { NodeConfig } from "../cluster/records.ts"
import type { VolumeClient } from "../cluster/volumeClient.ts"
import { ControlStore, type ControlStoreShape } from "../control/ControlStore.ts"
import { gatedControlStore } from "../control/gated.ts"
import { layerMemory } from "../control/embedded.ts"
import { layerFile } from "../control/embeddedFile.ts"
import { makeMetrics, type Metrics } from "../core/metrics.ts"
import type { Transport } from "../net/Transport.ts"
import { layerFileStores } from "../platform/fileStores.ts"
import { localClusterTransport } from "../platform/nodeTransport.ts"
import { makeMemoryStores, Stores } from "../store/Stores.ts"
import { AdminError } from "../admin/errors.ts"
import { makeEventLog, type EventLog } from "../admin/events.ts"
import { instrumentClient } from "../admin/metrics.ts"
import type { LocalControl, LocalNodeStatus } from "../admin/routes.ts"
import type { VerifyOptions, VerifyReport } from "../replication/verify.ts"
import type { KeyRing } from "../crypt/keys.ts"
import { EncryptionError } from "../crypt/primitives.ts"
import { ensureKeyRing, nodeCrypto } from "../platform/nodeCrypto.ts"

/** Most nodes a local cluster runs (one master and up to five replicas need six). */
export const localNodesMax = 16
export const replicationPortDefault = 5703

export interface LocalClusterOptions {
  /** Number of nodes, n1..nN (default 3). */
  readonly nodes?: number
  /** Node i listens on `${hostBase}${i}` (default "127.0.0."). */
  readonly hostBase?: string
  /** Replication port of every node (default 5703). */
  readonly port?: number
  /** Node i keeps its copies under `${dataDir}/n${i}`. */
  readonly dataDir: string
  /** Cluster secret (at least 16 bytes). */
  readonly secret: string
  /** Extra node options (timeouts, lease TTL, grace period). */
  readonly node?: Partial<Omit<ClusterNodeOptions, "name" | "address" | "dataDir" | "secret" | "onClusterEvent">>
  readonly onEvent?: (event: ClusterEvent) => void
  readonly metrics?: Metrics
  /** Labels each node sets on itself at start, by node name (e.g. { n1: { "topology.kubernetes.io/zone": "a" } }). */
  readonly nodeLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** Every node's unwrapping key for encrypted volumes (`cluster up`: <data>/encryption.key). */
  readonly keyRing?: KeyRing
  /** Per node, instead of `keyRing` (a node without the key, or with another one: tests of the refusals). */
  readonly nodeKeyRings?: Readonly<Record<string, KeyRing>>
}

export interface LocalCluster {
  readonly names: ReadonlyArray<string>
  /** The named node if running; without a name, the first running node. */
  readonly node: (name?: string) => ClusterNode | undefined
  readonly isRunning: (name: string) => boolean
  readonly kill: (name: string) => Effect.Effect<void, AdminError>
  readonly revive: (name: string) => Effect.Effect<void, AdminError>
  readonly statuses: () => ReadonlyArray<LocalNodeStatus>
  readonly control: LocalControl
  readonly events: EventLog
  readonly metrics: Metrics
}

/** The control store as one node sees it: `sever()` makes every call fail, as if its machine died. */
const severable = (store: ControlStoreShape, name: string) => {
  let severed = false
  return { shape: gatedControlStore(store, () => severed, () => `node ${name} was killed`), sever: () => void (severed = true) }
}

interface Member {
  readonly name: string
  readonly address: { readonly host: string; readonly port: number }
  running: { readonly node: ClusterNode; readonly scope: Scope.Closeable; readonly sever: () => void } | undefined
}

/** The nodes of a local cluster: n1..nN on `${hostBase}1`..`${hostBase}N`. */
export const localMembers = (count: number, hostBase = "127.0.0."): ReadonlyArray<{ readonly name: string; readonly host: string }> =>
  Array.from({ length: count }, (_, i) => ({ name: `n${i + 1}`, host: `${hostBase}${i + 1}` }))

export const startLocalCluster = (options: LocalClusterOptions): Effect.Effect<LocalCluster, AdminError, Scope.Scope | ControlStore | Transport | Stores> =>
  Effect.gen(function* () {
    const count = options.nodes ?? 3
    if (!Number.isInteger(count) || count < 1 || count > localNodesMax) return yield* new AdminError({ reason: "bad-request", message: `--nodes must be 1..${localNodesMax}, got ${count}` })
    const store = yield* ControlStore
    const context = yield* Effect.context<Transport | Stores>()
    const parent = yield* Effect.scope
    const events = makeEventLog()
    const metrics = options.metrics ?? makeMetrics()
    const onEvent = (event: ClusterEvent) => {
      events.push(event)
      options.onEvent?.(event)
    }
    const members: Member[] = localMembers(count, options.hostBase).map((m) => ({
      name: m.name, address: { host: m.host, port: options.port ?? replicationPortDefault }, running: undefined,
    }))
    const find = (name: string) => Effect.suspend(() => {
      const member = members.find((m) => m.name === name)
      return member ? Effect.succeed(member) : Effect.fail(new AdminError({ reason: "not-found", message: `no node ${name} in this local cluster: allowed ${members.map((m) => m.name).join(", ")}` }))
    })
    const start = (member: Member) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(parent)
        const view = severable(store, member.name)
        const nodeOptions = {
          ...options.node, name: member.name, address: member.address, dataDir: `${options.dataDir}/${member.name}`,
          secret: options.secret, onClusterEvent: onEvent, metrics,
          ...(options.nodeLabels?.[member.name] ? { labels: options.nodeLabels[member.name] } : {}),
          ...(options.nodeKeyRings?.[member.name] ?? options.keyRing ? { keyRing: options.nodeKeyRings?.[member.name] ?? options.keyRing } : {}),
        } as ClusterNodeOptions
        const node = yield* startClusterNode(nodeOptions).pipe(
          Scope.provide(scope), Effect.provideService(ControlStore, view.shape), Effect.provide(context),
          Effect.onError(() => Scope.close(scope, Exit.void)),
          Effect.mapError((e) => new AdminError({ reason: "internal", message: `node ${member.name} could not start: ${e.message}` })),
        )
        member.running = { node, scope, sever: view.sever }
      })
    const kill = (name: string) =>
      Effect.gen(function* () {
        const member = yield* find(name)
        const running = member.running
        if (!running) return yield* new AdminError({ reason: "bad-request", message: `node ${name} is not running` })
        member.running = undefined
        running.sever()
        yield* Scope.close(running.scope, Exit.void)
        onEvent({ atMs: 0, node: name, kind: "node-killed", message: `${name} was killed (crash drill): its lease will expire` })
      })
    const revive = (name: string) =>
      Effect.gen(function* () {
        const member = yield* find(name)
        if (member.running) return yield* new AdminError({ reason: "bad-request", message: `node ${name} is already running` })
        yield* start(member)
        onEvent({ atMs: 0, node: name, kind: "node-revived", message: `${name} was started again with its data` })
      })
    yield* Effect.forEach(members, start, { discard: true })
    const statuses = () => members.map((m) => ({ name: m.name, address: `${m.address.host}:${m.address.port}`, running: m.running !== undefined }))
    return {
      names: members.map((m) => m.name),
      node: (name) => (name === undefined ? members.find((m) => m.running) : members.find((m) => m.name === name))?.running?.node,
      isRunning: (name) => members.some((m) => m.name === name && m.running !== undefined),
      kill, revive, statuses,
      control: { kill, revive, nodes: statuses },
      events, metrics,
    }
  })

// ---- Promise facade

export interface LocalVolume {
  readonly name: string
  readonly sizeBytes: number
  /** Resolves when the master and every in-sync replica have the bytes; a failover is a pause. Buffer rule: `data` belongs to the library until the write settles (resolves or rejects); reuse it only after that. */
  readonly write: (offset: number, data: Uint8Array) => Promise<void>
  readonly read: (offset: number, length: number) => Promise<Uint8Array>
  /** Resolves when every in-sync copy has made earlier writes durable. */
  readonly flush: () => Promise<void>
  /** How many times IO waited for a (new) master so far. */
  readonly retries: () => number
  readonly close: () => Promise<void>
}

export interface LocalClusterHandle {
  readonly names: ReadonlyArray<string>
  readonly createVolume: (volume: string, sizeBytes: number, labels?: Readonly<Record<string, string>>) => Promise<VolumeInfo>
  readonly inspectVolume: (volume: string) => Promise<VolumeInfo>
  /** Changes a live volume's labels (replicas, failure mode and tolerance, compression, hint); IO goes on. */
  readonly updateVolume: (volume: string, change: VolumeLabelChange) => Promise<VolumeInfo>
  /** Grows a live volume on every copy (never shrinks); resolves once every in-sync copy has the new size, or after `waitMs` with it under way. */
  readonly resizeVolume: (volume: string, sizeBytes: number, waitMs?: number) => Promise<VolumeInfo>
  readonly listVolumes: () => Promise<ReadonlyArray<VolumeInfo>>
  readonly deleteVolume: (volume: string) => Promise<void>
  readonly waitHealthy: (volume: string, timeoutMs: number) => Promise<VolumeInfo>
  /** Accepts that copies away may hold writes the serving copy lacks (`ClusterNode.acceptLoss`): a waiting master serves what it holds. */
  readonly acceptLoss: (volume: string) => Promise<AcceptLossResult>
  /** A handle through node `via` (default: a running node other than the volume's master). */
  readonly openVolume: (volume: string, options?: { readonly via?: string }) => Promise<LocalVolume>
  /** Compares every in-sync replica with the master (region checksums) while IO goes on; `repair` re-sends what differs. */
  readonly verifyVolume: (volume: string, options?: VerifyOptions) => Promise<VerifyReport>
  /** Moves the volume's master to node `to` (a planned hand-over; a copy is placed and synced there first if it holds no in-sync one). */
  readonly moveVolume: (volume: string, to: string, onProgress?: (status: MoveStatus) => void) => Promise<MoveStatus>
  /** Cordons the node and moves every master and replica off it; resolves when it holds nothing. */
  readonly drainNode: (name: string, onProgress?: (status: DrainStatus) => void) => Promise<DrainStatus>
  readonly configureNode: (name: string, change: NodeConfigChange) => Promise<NodeConfig>
  readonly killNode: (name: string) => Promise<void>
  readonly reviveNode: (name: string) => Promise<void>
  readonly close: () => Promise<void>
  readonly effect: LocalCluster
}

export interface CreateLocalClusterOptions extends Omit<LocalClusterOptions, "dataDir" | "secret"> {
  /** Sparse files, a persisted control store and the TLS certificates (`tls/`) under this directory; omitted: all in memory. */
  readonly dataDir?: string
  readonly secret?: string
  /**
   * Port 5703 is TLS 1.3 by default, with a throwaway CA and node certificates made at start
   * (in `<dataDir>/tls`, or in memory). `"insecure-plaintext"`: plain TCP, logged as a warning.
   */
  readonly tls?: "insecure-plaintext"
}

/** The local cluster's key ring when none is given: <dataDir>/encryption.key (created once), or a random key in memory. */
const defaultKeyRing = (dataDir: string | undefined): Promise<KeyRing> => {
  if (dataDir !== undefined) return Effect.runPromise(ensureKeyRing(`${dataDir}/encryption.key`))
  const crypto = nodeCrypto()
  if (crypto instanceof EncryptionError) return Promise.reject(crypto)
  return Promise.resolve({ crypto, unwrappingKey: crypto.randomBytes(32), source: "a random key in memory (createLocalCluster without dataDir)" })
}

/** Starts a local cluster on loopback, encrypted with TLS; rejects with AdminError when a node cannot start. */
export const createLocalCluster = async (options: CreateLocalClusterOptions = {}): Promise<LocalClusterHandle> => {
  const stores = options.dataDir === undefined ? makeMemoryStores().layer : layerFileStores
  const control = options.dataDir === undefined ? layerMemory : layerFile(`${options.dataDir}/control.json`)
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  const count = options.nodes ?? 3
  const members = Number.isInteger(count) && count >= 1 && count <= localNodesMax ? localMembers(count, options.hostBase) : [] // else startLocalCluster refuses it
  const transport = await run(localClusterTransport(members, options.dataDir === undefined ? undefined : `${options.dataDir}/tls`, options.tls))
  const scope = Effect.runSync(Scope.make())
  const services = buildIn(Layer.build(Layer.mergeAll(transport.layer, stores, control)), scope)
  const keyRing = options.keyRing ?? await defaultKeyRing(options.dataDir)
  const cluster = await run(startLocalCluster({ ...options, keyRing, dataDir: options.dataDir ?? "/memory", secret: options.secret ?? "local-cluster-secret-0123456789" }).pipe(
    Scope.provide(scope), Effect.provide(await services),
  )).catch(async (error: unknown) => {
    await run(Scope.close(scope, Exit.void))
    throw error
  })
  const any = () => {
    const node = cluster.node()
    if (!node) throw new AdminError({ reason: "no-node", message: "no node of the local cluster is running" })
    return node
  }
  const openVolume = async (volume: string, open: { readonly via?: string } = {}): Promise<LocalVolume> => {
    const info = await run(any().inspectVolume(volume))
    const via = open.via ?? cluster.names.find((n) => n !== info.master && cluster.isRunning(n)) ?? any().name
    const node = cluster.node(via)
    if (!node) throw new AdminError({ reason: "not-found", message: `node ${via} is not running` })
    const child = Effect.runSync(Scope.fork(scope))
    const client: VolumeClient = instrumentClient(await run(node.openVolume(volume).pipe(Scope.provide(child))), cluster.metrics)
    const local: Omit<LocalVolume, "sizeBytes"> = {
      name: client.name,
      write: (offset, data) => run(client.write(offset, data)),
      read: (offset, length) => run(client.read(offset, length)),
      flush: () => run(client.flush),
      retries: client.retries,
      close: () => run(Scope.close(child, Exit.void)),
    }
    // Read through: the handle learns a grown size.
    return Object.defineProperty(local, "sizeBytes", { get: () => client.sizeBytes, enumerable: true }) as LocalVolume
  }
  return {
    names: cluster.names,
    createVolume: (volume, sizeBytes, labels) => run(any().createVolume({ volume, sizeBytes, ...(labels ? { labels } : {}) })),
    inspectVolume: (volume) => run(any().inspectVolume(volume)),
    updateVolume: (volume, change) => run(any().updateVolume(volume, change)),
    resizeVolume: (volume, sizeBytes, waitMs) => run(any().resizeVolume(volume, sizeBytes, waitMs)),
    listVolumes: () => run(any().listVolumes),
    deleteVolume: (volume) => run(any().deleteVolume(volume)),
    waitHealthy: (volume, timeoutMs) => run(any().waitHealthy(volume, timeoutMs)),
    acceptLoss: (volume) => run(any().acceptLoss(volume)),
    openVolume,
    verifyVolume: (volume, verifyOptions) => run(any().verifyVolume(volume, verifyOptions)),
    moveVolume: (volume, to, onProgress) => run(any().moveVolume(volume, to, onProgress)),
    drainNode: (name, onProgress) => run(any().drainNode(name, onProgress)),
    configureNode: (name, change) => run(any().configureNode(name, change)),
    killNode: (name) => run(cluster.kill(name)),
    reviveNode: (name) => run(cluster.revive(name)),
    close: () => run(Scope.close(scope, Exit.void)),
    effect: cluster,
  }
}

const buildIn = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>, scope: Scope.Scope) => Effect.runPromise(Scope.provide(scope)(effect))
