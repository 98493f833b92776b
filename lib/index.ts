/**
 * replivol — synchronously replicated block volumes.
 *
 * Two ways in:
 *  - the Effect API: `startNode` (needs the `Transport` and `Stores` services; `layerNodeTls(config)`
 *    provides the real ones: TLS 1.3 and sparse files) returning a `ReplivolNode`, whose volumes are
 *    Effects with typed errors;
 *  - the Promise facade for plain async code: `createNode(...)` → `NodeHandle`, whose methods
 *    return Promises that reject with the same typed errors (`err._tag`, `err.reason`).
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { layerTcp } from "./platform/tcp.ts"
import { layerFileStores } from "./platform/fileStores.ts"
import { transportLayerFor, type TlsOption } from "./platform/nodeTransport.ts"
import { startNode, type NodeOptions, type OpenVolumeOptions, type ReplivolNode, type NodeStats } from "./node/node.ts"
import type { MasterVolume, VolumeStatus } from "./replication/masterVolume.ts"
import type { HostedReplicaStatus } from "./replication/replicaHost.ts"
import type { Address, Transport } from "./net/Transport.ts"
import { layerTls, type TlsConfig } from "./platform/tls.ts"
import type { Stores } from "./store/Stores.ts"

export { startNode, checkVolumeName, checkVolumeSize } from "./node/node.ts"
export type { NodeOptions, OpenVolumeOptions, ReplivolNode, NodeStats } from "./node/node.ts"
export type { MasterVolume, VolumeStatus, ReplicaStatus, VolumeEvent } from "./replication/masterVolume.ts"
export type { VerifyOptions, VerifyReport, RegionDifference, VerifiedCopy } from "./replication/verify.ts"
export type { ReplicaState, ReplicaTarget } from "./replication/replicaLink.ts"
export type { HostedReplicaStatus } from "./replication/replicaHost.ts"
export { VolumeUnavailable, OutOfRange, VolumeIoError, ReplicationError, type VolumeError } from "./replication/errors.ts"
export { NetError, Transport, type Address, type Link } from "./net/Transport.ts"
export { Stores } from "./store/Stores.ts"
export { StoreError, type BlockStore } from "./store/BlockStore.ts"
export { layerTcp } from "./platform/tcp.ts"
export { layerTls, tlsTransport, type TlsConfig } from "./platform/tls.ts"
export { transportLayerFor, type TlsOption } from "./platform/nodeTransport.ts"
export { makeAuthority, issueCertificate, makeLocalPki, ensureLocalPki, readTlsFiles, CertificateError, type Identity, type Authority, type LocalPki, type PkiMember } from "./platform/certificates.ts"
export { layerFileStores } from "./platform/fileStores.ts"
export * as Labels from "./volume/labels.ts"
export { EncryptionError, type CryptoPrimitives } from "./crypt/primitives.ts"
export { makeVolumeCipher, encryptionUnitBytes, type VolumeCipher } from "./crypt/volumeCipher.ts"
export { nodeCrypto, readKeyRing } from "./platform/nodeCrypto.ts"
export type { KeyRing } from "./crypt/keys.ts"
export { parseLabels, validateLabels, LabelError, Label, type VolumeSpec, type FailureMode } from "./volume/labels.ts"
export { assessVolume, type Health, type Assessment } from "./volume/health.ts"
export * as Policy from "./policy/index.ts"
export * as Limits from "./core/limits.ts"

/** The real services with plain TCP (no TLS) and sparse backing files; prefer `layerNodeTls`. */
export const layerNodePlaintext = Layer.merge(layerTcp, layerFileStores)
/** The real services: TLS 1.3 on port 5703 with `config`'s CA and certificate, and sparse backing files. */
export const layerNodeTls = (config: TlsConfig) => Layer.merge(layerTls(config), layerFileStores)

export interface CreateNodeOptions extends NodeOptions {
  /**
   * Port 5703's security: certificate, key and CA files (or PEM text) from the cluster CA;
   * `"insecure-plaintext"` for plain TCP (logged as a warning). Default: a certificate from this
   * process's throwaway CA, so nodes in one process talk encrypted with no setup, and nodes in
   * other processes are refused until all are given files from one CA.
   */
  readonly tls?: TlsOption
}

export interface VolumeHandle {
  readonly name: string
  readonly sizeBytes: number
  /** Resolves when the master and every in-sync replica have the bytes. Buffer rule: `data` belongs to the library until the write settles (resolves or rejects); reuse it only after that. */
  readonly write: (offset: number, data: Uint8Array) => Promise<void>
  readonly read: (offset: number, length: number) => Promise<Uint8Array>
  /** Resolves when every in-sync copy has made earlier writes durable (fdatasync). */
  readonly flush: () => Promise<void>
  readonly status: () => Promise<VolumeStatus>
  readonly close: () => Promise<void>
  /** The underlying Effect API object. */
  readonly effect: MasterVolume
}

export interface NodeHandle {
  readonly name: string
  readonly address: Address
  readonly hostReplica: (volume: string, sizeBytes: number) => Promise<void>
  readonly openVolume: (options: OpenVolumeOptions) => Promise<VolumeHandle>
  readonly hostedReplicas: () => ReadonlyArray<HostedReplicaStatus>
  readonly stats: () => NodeStats
  readonly close: () => Promise<void>
  readonly effect: ReplivolNode
}

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/**
 * Starts a node on TLS (or, when asked, plain TCP) and files (Promise facade). Rejects with
 * `NetError` (e.g. the address is in use), `ReplicationError` (a bad name or secret) or
 * `CertificateError` (a TLS file cannot be read or does not match its key).
 */
export const createNode = async (options: CreateNodeOptions): Promise<NodeHandle> => {
  const transport = await run(transportLayerFor(options.tls, { name: options.name, host: options.address.host }))
  const services = Layer.merge(transport, layerFileStores)
  const scope = await run(Scope.make())
  const within = <A, E>(child: Scope.Scope, effect: Effect.Effect<A, E, Scope.Scope | Transport | Stores>) =>
    run(effect.pipe(Scope.provide(child), Effect.provide(services)))
  let node: ReplivolNode
  try {
    node = await within(scope, startNode(options))
  } catch (error) {
    await run(Scope.close(scope, Exit.void))
    throw error
  }
  const hostReplica = async (volume: string, sizeBytes: number) => {
    await within(scope, node.hostReplica(volume, sizeBytes))
  }
  const openVolume = async (volumeOptions: OpenVolumeOptions): Promise<VolumeHandle> => {
    const child = await run(Scope.fork(scope))
    let volume: MasterVolume
    try {
      volume = await within(child, node.openVolume(volumeOptions))
    } catch (error) {
      await run(Scope.close(child, Exit.void))
      throw error
    }
    return {
      name: volume.name,
      sizeBytes: volume.sizeBytes,
      write: (offset, data) => run(volume.write(offset, data)),
      read: (offset, length) => run(volume.read(offset, length)),
      flush: () => run(volume.flush),
      status: () => run(volume.status),
      close: () => run(Scope.close(child, Exit.void)),
      effect: volume,
    }
  }
  return {
    name: node.name,
    address: node.address,
    hostReplica,
    openVolume,
    hostedReplicas: node.hostedReplicas,
    stats: node.stats,
    close: () => run(Scope.close(scope, Exit.void)),
    effect: node,
  }
}

// ---- The cluster: placement, failover, resync (see lib/cluster/).
export { startClusterNode, volumeInfo } from "./cluster/clusterNode.ts"
export type { AcceptLossResult, ClusterNode, ClusterNodeOptions, ClusterEvent, VolumeInfo, ReplicaInfo, NodeInfo, CreateVolumeOptions, VolumeLabelChange, NodeConfigChange } from "./cluster/clusterNode.ts"
export { makeClusterClient } from "./cluster/client.ts"
export type { ClusterClient, ClusterClientOptions } from "./cluster/client.ts"
export type { VolumeClient } from "./cluster/volumeClient.ts"
export { ClusterError, keys as ClusterKeys } from "./cluster/records.ts"
export type { VolumeRecord, ReplicaRecord, NodeRecord } from "./cluster/records.ts"
export { ControlStore, ControlError } from "./control/ControlStore.ts"
export { layerMemory as layerControlMemory } from "./control/embedded.ts"
export { layerFile as layerControlFile } from "./control/embeddedFile.ts"
export { createLocalCluster, startLocalCluster } from "./cli/localCluster.ts"
export type { LocalCluster, LocalClusterHandle, LocalClusterOptions, CreateLocalClusterOptions, LocalVolume } from "./cli/localCluster.ts"
export { makeMetrics, type Metrics } from "./core/metrics.ts"
