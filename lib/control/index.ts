/**
 * The control plane's store: the `ControlStore` contract, its embedded implementation (memory or
 * file), and lease helpers. The etcd implementation is in lib/platform/etcdControlStore.ts.
 */
export * from "./ControlStore.ts"
export { layerMemory, layerPersisted, make as makeEmbedded, type EmbeddedOptions } from "./embedded.ts"
export { layerFile } from "./embeddedFile.ts"
export { keepLeaseAlive, withLease, type ScopedLease } from "./lease.ts"
export {
  keyBytesMax,
  valueBytesMax,
  txnOpsMax,
  txnBytesMax,
  leaseTtlMsMax,
  watchBufferEventsMax,
} from "./limits.ts"
export { type SnapshotStorage, encodeSnapshot, decodeSnapshot } from "./snapshot.ts"
