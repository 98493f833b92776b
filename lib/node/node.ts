/**
 * A replivol node: one process (or one simulated host) that listens on its replication port,
 * hosts replica copies for other nodes' masters, and opens master volumes of its own.
 *
 * Connections are accepted only after the cluster-secret handshake (lib/net/connection.ts), with
 * bounds on pending handshakes and open connections. Everything the node opens lives in the
 * Scope it was started in: closing the scope stops listening, closes connections and stores.
 */
import { Effect, Queue, Scope } from "effect"
import { connectionsPerNodeMax, defaults, handshakesPendingMax, relocationCopiesMax, sectorBytes, volumeSizeBytesMax } from "../core/limits.ts"
import { clientHandshake, serverHandshake, assertSecret, type Connection } from "../net/connection.ts"
import { formatAddress, type Address, type Link, NetError, Transport } from "../net/Transport.ts"
import { emptyUntilWritten, type BlockStore, type StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { noMetrics, type Metrics } from "../core/metrics.ts"
import { instrumentStore } from "../store/instrumented.ts"
import { instrumentDial, instrumentMaster } from "./instrumented.ts"
import { parseLabels, type LabelError, type VolumeSpec } from "../volume/labels.ts"
import { isDnsLabel } from "../volume/labels.ts"
import { ReplicationError } from "../replication/errors.ts"
import { openMasterVolume, type MasterVolume, type ReplicaPlan, type VolumeEvent } from "../replication/masterVolume.ts"
import { makeReplicaHost, type HostedReplicaStatus } from "../replication/replicaHost.ts"
import { makeMasterDirectory } from "./masterDirectory.ts"
import type { LinkFailure, ReplicaTarget } from "../replication/replicaLink.ts"
import { EncryptionError } from "../crypt/primitives.ts"
import type { VolumeCipher } from "../crypt/volumeCipher.ts"
import { continueCopy } from "../store/continuity.ts"

export interface NodeOptions {
  /** DNS-label node name, unique in the cluster. */
  readonly name: string
  /** Where this node listens for replication traffic (port 5703 by default). */
  readonly address: { readonly host: string; readonly port?: number }
  /** Directory (or, in the simulator, key prefix) of this node's volume copies. */
  readonly dataDir: string
  /** The cluster secret, at least 16 bytes; every connection proves it both ways. */
  readonly secret: Uint8Array | string
  readonly ackTimeoutMs?: number
  /** The master's own fdatasync must finish within this (default `defaults.diskTimeoutMs`), else its disk counts as failed. */
  readonly diskTimeoutMs?: number
  readonly handshakeTimeoutMs?: number
  readonly reconnectBaseMs?: number
  readonly reconnectCeilingMs?: number
  readonly dirtyRegionBytes?: number
  readonly onEvent?: (event: VolumeEvent) => void
  /** Where network, backend and replication metrics go (default: nowhere). */
  readonly metrics?: Metrics
  /** Told of every write a master on this node acknowledged (checkers, metrics). */
  readonly onWriteAcknowledged?: (volume: string, epoch: number, offset: number, length: number) => void
  /** This process's incarnation (cluster nodes: records.ts `NodeRecord.incarnation`), told in every OpenAck of a replica copy. */
  readonly incarnation?: number
}

export interface OpenVolumeOptions {
  /** `namespace/name`. */
  readonly volume: string
  readonly sizeBytes: number
  /** StorageOS labels (`storageos.com/replicas`, …), validated; or a ready spec. */
  readonly labels?: Readonly<Record<string, string>>
  readonly spec?: VolumeSpec
  /**
   * Where the replicas are hosted: exactly `storageos.com/replicas` of them, on other nodes. A bare
   * target is a new copy (synced from the master, zero regions skipped on a fresh copy); a plan
   * with `recorded: "in-sync"` was in sync with the previous master (activity logs reconciled).
   */
  readonly replicas: ReadonlyArray<ReplicaTarget | ReplicaPlan>
  /** The volume's epoch; a later master must use a higher one. Default 1. */
  readonly epoch?: number
  /** Return only once the initial copies are in sync (default true). */
  readonly waitForSync?: boolean
  /** An already open copy (see `openCopy`); by default the node opens its own. */
  readonly store?: BlockStore
  /** The size IO may address, when the copy grew in a resize not recorded yet (see MasterVolumeOptions). */
  readonly visibleSizeBytes?: number
  readonly leaseValid?: () => boolean
  readonly onReplicaFailed?: (node: string, failure: LinkFailure) => Effect.Effect<void, unknown>
  readonly onReplicaInSync?: (node: string, stillInSync: () => boolean, incarnation: number | undefined) => Effect.Effect<void, unknown>
  readonly onReplicaSyncing?: (node: string) => Effect.Effect<void, unknown>
  /** The volume's unique id (clusters: fresh at every create). */
  readonly uid?: string
  readonly ownActivity?: ReadonlyArray<readonly [number, number]> | "all"
  /** The previous session ended in a drained, planned hand-over (see MasterVolumeOptions). */
  readonly previousSessionDrained?: boolean
  readonly resyncShare?: number
  /**
   * The volume's cipher, required when its labels ask for `storageos.com/encryption=true` (a
   * cluster unwraps it from the key hierarchy, lib/crypt/keys.ts; a bare node's caller makes it
   * with `makeVolumeCipher(primitives.xts(key))`). Replicas need none: they store ciphertext.
   */
  readonly cipher?: VolumeCipher
}

export interface NodeStats {
  readonly connectionsAccepted: number
  readonly connectionsOpen: number
  readonly handshakesFailed: number
  readonly refusedOverLimit: number
  /** Failed handshakes by reason (auth-failed, protocol, closed, timeout…). */
  readonly handshakeFailures: Readonly<Record<string, number>>
  /** Malformed frames by WireError reason (each closed its connection). */
  readonly wireRejections: Readonly<Record<string, number>>
}

export interface ReplivolNode {
  readonly name: string
  readonly address: Address
  readonly hostReplica: (volume: string, sizeBytes: number) => Effect.Effect<void, ReplicationError | StoreError, Scope.Scope>
  /** Opens this node's copy of a volume (the store both roles use); closed with the scope. */
  readonly openCopy: (volume: string, sizeBytes: number) => Effect.Effect<BlockStore, ReplicationError | StoreError, Scope.Scope>
  /** Hosts an already open copy as a replica until the scope closes (`handedOver`: see ReplicaHost.host). */
  readonly hostReplicaStore: (volume: string, store: BlockStore, uid?: string, handedOver?: boolean) => Effect.Effect<void, ReplicationError, Scope.Scope>
  readonly unhostReplica: (volume: string) => Effect.Effect<void>
  readonly openVolume: (options: OpenVolumeOptions) => Effect.Effect<MasterVolume, ReplicationError | StoreError | LabelError | EncryptionError, Scope.Scope>
  readonly hostedReplicas: () => ReadonlyArray<HostedReplicaStatus>
  readonly rejections: () => Readonly<Record<string, number>>
  readonly stats: () => NodeStats
  /** Dials another node and authenticates (for clients of this library and tests). */
  readonly connect: (address: Address) => Effect.Effect<Connection, NetError>
  readonly storePath: (volume: string) => string
  /** The directory holding every copy of this node (`storePath` is inside it). */
  readonly copiesDir: string
  /** The master volumes open on this node, by name. */
  readonly masters: () => ReadonlyMap<string, MasterVolume>
  /** The activity log of a hosted replica copy (for a promotion on this node). */
  readonly replicaActivity: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
  /** A write or fdatasync of a hosted replica copy failed since a master's sync last recorded it complete. */
  readonly replicaDamaged: (volume: string) => boolean
  /** Stops hosting a replica copy at once (before this node becomes its master) and returns its activity log. */
  readonly detachReplica: (volume: string) => ReadonlyArray<readonly [number, number]> | "all"
}

const encoder = new TextEncoder()

export const checkVolumeName = (volume: string): ReplicationError | undefined => {
  const parts = volume.split("/")
  if (parts.length === 2 && parts.every((part) => isDnsLabel(part) && part.length > 0)) return undefined
  return new ReplicationError({ reason: "bad-name", volume, message: `volume name "${volume}" is malformed: allowed "namespace/name", each a DNS label (lower-case letters, digits and "-", 1..63 characters)` })
}

export const checkVolumeSize = (volume: string, sizeBytes: number): ReplicationError | undefined =>
  Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % sectorBytes === 0 && sizeBytes <= volumeSizeBytesMax
    ? undefined
    : new ReplicationError({ reason: "bad-size", volume, message: `volume ${volume}: size ${sizeBytes} is not allowed: a whole number of ${sectorBytes}-byte sectors, from ${sectorBytes} bytes to ${volumeSizeBytesMax} bytes (64 TiB)` })

export const startNode = (options: NodeOptions): Effect.Effect<ReplivolNode, NetError | ReplicationError, Scope.Scope | Transport | Stores> =>
  Effect.gen(function* () {
    if (!isDnsLabel(options.name) || options.name.length === 0) {
      return yield* new ReplicationError({ reason: "bad-name", volume: "-", message: `node name "${options.name}" is malformed: allowed a DNS label (lower-case letters, digits and "-", 1..63 characters)` })
    }
    const secret = typeof options.secret === "string" ? encoder.encode(options.secret) : options.secret
    yield* assertSecret(secret)
    const transport = yield* Transport
    const stores = yield* Stores
    const scope = yield* Effect.scope
    const address: Address = { host: options.address.host, port: options.address.port ?? defaults.replicationPort }
    const handshakeFailures: Record<string, number> = {}
    const wireRejections: Record<string, number> = {}
    const bump = (counts: Record<string, number>, key: string) => void (counts[key] = (counts[key] ?? 0) + 1)
    const handshake = {
      secret, nodeName: options.name, timeoutMs: options.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs,
      onWireError: (error: { readonly reason: string }) => bump(wireRejections, error.reason),
    }
    const masters = makeMasterDirectory()
    const metrics = options.metrics ?? noMetrics
    const replicaHost = makeReplicaHost({ nodeName: options.name, lookupMaster: masters.get, awaitMaster: masters.awaitMaster, metrics, ...(options.incarnation === undefined ? {} : { incarnation: options.incarnation }) })
    let accepted = 0, open = 0, pendingHandshakes = 0, handshakesFailed = 0, refusedOverLimit = 0

    const accepts = yield* Queue.unbounded<Link>()
    // Refusals by the transport itself (TLS: another CA, expired, no TLS) count as failed handshakes.
    const refusals = yield* Queue.sliding<NetError>(handshakesPendingMax)
    const listener = yield* transport.listen(address, (link) => {
      if (pendingHandshakes >= handshakesPendingMax || open >= connectionsPerNodeMax) {
        refusedOverLimit++
        return link.close("over the connection limit")
      }
      pendingHandshakes++
      Queue.offerUnsafe(accepts, link)
    }, {
      handshakeTimeoutMs: handshake.timeoutMs,
      onRefused: (error) => {
        handshakesFailed++
        bump(handshakeFailures, error.reason)
        Queue.offerUnsafe(refusals, error)
      },
    })
    yield* Effect.forkIn(
      Effect.forever(Effect.flatMap(Queue.take(refusals), (error) => Effect.logDebug(`node ${options.name}: refused ${error.address}: ${error.message}`))),
      scope,
    )
    const serveLink = (link: Link) =>
      Effect.gen(function* () {
        const result = yield* Effect.result(serverHandshake(link, handshake))
        pendingHandshakes--
        if (result._tag === "Failure") {
          handshakesFailed++
          bump(handshakeFailures, result.failure.reason)
          yield* Effect.logDebug(`node ${options.name}: refused ${link.remote}: ${result.failure.message}`)
          return
        }
        accepted++
        open++
        yield* replicaHost.serve(result.success).pipe(Effect.ensuring(Effect.sync(() => void open--)))
      })
    yield* Effect.forkIn(
      Effect.forever(Effect.flatMap(Queue.take(accepts), (link) => Effect.forkIn(serveLink(link), scope))),
      scope,
    )

    const copiesDir = `${options.dataDir}/copies`
    const storePath = (volume: string) => `${copiesDir}/${volume}.img`
    const openStore = (volume: string, sizeBytes: number): Effect.Effect<BlockStore, ReplicationError | StoreError, Scope.Scope> =>
      Effect.gen(function* () {
        const bad = checkVolumeName(volume) ?? checkVolumeSize(volume, sizeBytes)
        if (bad) return yield* bad
        const path = storePath(volume)
        const opened = yield* stores.open(path, sizeBytes)
        // A cluster node's copies carry continuity across its process restarts (lib/store/continuity.ts).
        const continued = stores.markers && options.incarnation !== undefined ? yield* continueCopy(opened, stores.markers, path, options.incarnation) : opened
        return emptyUntilWritten(instrumentStore(continued, volume, metrics))
      })

    const hostReplicaStore = (volume: string, store: BlockStore, uid?: string, handedOver?: boolean) =>
      Effect.gen(function* () {
        yield* replicaHost.host(volume, store, uid, handedOver)
        yield* Effect.addFinalizer(() => replicaHost.unhost(volume))
      })
    const hostReplica = (volume: string, sizeBytes: number) =>
      Effect.flatMap(openStore(volume, sizeBytes), (store) => hostReplicaStore(volume, store))

    const connect = (target: Address) =>
      Effect.flatMap(transport.dial(target, { from: address.host, timeoutMs: handshake.timeoutMs }), (link) => clientHandshake(link, handshake))

    const openVolume = (volumeOptions: OpenVolumeOptions) =>
      Effect.gen(function* () {
        const spec = volumeOptions.spec ?? (yield* parseLabels(volumeOptions.labels ?? {}))
        // Fewer locations than requested is allowed (no node free yet after a loss): the volume is
        // then degraded or unavailable as its failure mode says, and the cluster adds replicas later.
        // One more while a move or a drain syncs a new copy (limits.ts relocationCopiesMax).
        if (volumeOptions.replicas.length > spec.replicas + relocationCopiesMax) {
          return yield* new ReplicationError({ reason: "bad-request", volume: volumeOptions.volume, message: `volume ${volumeOptions.volume} asks for ${spec.replicas} replicas but ${volumeOptions.replicas.length} locations were given (allowed: at most ${spec.replicas + relocationCopiesMax}, one being relocated)` })
        }
        if (volumeOptions.replicas.some((r) => ("target" in r ? r.target.node : r.node) === options.name)) {
          return yield* new ReplicationError({ reason: "bad-request", volume: volumeOptions.volume, message: `a replica of ${volumeOptions.volume} cannot be on its master's node ${options.name}` })
        }
        if (spec.encryption === true && !volumeOptions.cipher) {
          return yield* new EncryptionError({ reason: "no-key", message: `volume ${volumeOptions.volume} is encrypted (storageos.com/encryption=true) and was opened without its key: node ${options.name} cannot serve it` })
        }
        if (spec.encryption !== true && volumeOptions.cipher) {
          return yield* new ReplicationError({ reason: "bad-request", volume: volumeOptions.volume, message: `volume ${volumeOptions.volume} is not encrypted (no storageos.com/encryption=true) but was opened with a cipher: a volume is encrypted from its creation or never` })
        }
        const store = volumeOptions.store ?? (yield* openStore(volumeOptions.volume, volumeOptions.sizeBytes))
        const plans = volumeOptions.replicas.map((r): ReplicaPlan => ("target" in r ? r : { target: r, recorded: "needs-sync" }))
        const opened = yield* openMasterVolume({
          volume: volumeOptions.volume, spec, epoch: volumeOptions.epoch ?? 1, store, nodeName: options.name,
          replicas: plans, connect: (target) => instrumentDial(connect(target.address), volumeOptions.volume, metrics), metrics,
          ...(options.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: options.ackTimeoutMs }),
          ...(options.diskTimeoutMs === undefined ? {} : { diskTimeoutMs: options.diskTimeoutMs }),
          ...(options.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: options.reconnectBaseMs }),
          ...(options.reconnectCeilingMs === undefined ? {} : { reconnectCeilingMs: options.reconnectCeilingMs }),
          ...(options.dirtyRegionBytes === undefined ? {} : { dirtyRegionBytes: options.dirtyRegionBytes }),
          ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
          ...(volumeOptions.leaseValid === undefined ? {} : { leaseValid: volumeOptions.leaseValid }),
          ...(volumeOptions.onReplicaFailed === undefined ? {} : { onReplicaFailed: volumeOptions.onReplicaFailed }),
          ...(volumeOptions.onReplicaInSync === undefined ? {} : { onReplicaInSync: volumeOptions.onReplicaInSync }),
          ...(volumeOptions.onReplicaSyncing === undefined ? {} : { onReplicaSyncing: volumeOptions.onReplicaSyncing }),
          ...(volumeOptions.uid === undefined ? {} : { uid: volumeOptions.uid }),
          ...(volumeOptions.ownActivity === undefined ? {} : { ownActivity: volumeOptions.ownActivity }),
          ...(volumeOptions.previousSessionDrained === undefined ? {} : { previousSessionDrained: volumeOptions.previousSessionDrained }),
          ...(volumeOptions.resyncShare === undefined ? {} : { resyncShare: volumeOptions.resyncShare }),
          ...(volumeOptions.visibleSizeBytes === undefined ? {} : { visibleSizeBytes: volumeOptions.visibleSizeBytes }),
          ...(volumeOptions.cipher === undefined ? {} : { cipher: volumeOptions.cipher }),
          ...(options.onWriteAcknowledged === undefined ? {} : { onWriteAcknowledged: (offset: number, length: number) => options.onWriteAcknowledged!(volumeOptions.volume, volumeOptions.epoch ?? 1, offset, length) }),
        })
        const volume = instrumentMaster(opened, metrics)
        const remove = masters.add(volumeOptions.volume, volume)
        yield* Effect.addFinalizer(() => Effect.sync(remove))
        if (volumeOptions.waitForSync !== false) yield* volume.awaitSyncs
        return volume
      })

    return {
      name: options.name,
      address: { host: address.host, port: listener.address.port },
      hostReplica,
      openCopy: openStore,
      hostReplicaStore,
      unhostReplica: replicaHost.unhost,
      openVolume,
      hostedReplicas: replicaHost.status,
      rejections: replicaHost.rejections,
      stats: () => ({ connectionsAccepted: accepted, connectionsOpen: open, handshakesFailed, refusedOverLimit, handshakeFailures: { ...handshakeFailures }, wireRejections: { ...wireRejections } }),
      connect,
      storePath,
      copiesDir,
      masters: masters.all,
      replicaActivity: replicaHost.activity,
      replicaDamaged: replicaHost.damaged,
      detachReplica: replicaHost.detach,
    } satisfies ReplivolNode
  })

export { formatAddress, NetError }
