/**
 * Every bound in replivol, in one place (TigerBeetle style: a limit on everything).
 *
 * Names end in their unit: `…BytesMax`, `…Ms`, `…Count`. Settings a user may override
 * (timeouts, region sizes) have their defaults here and are passed explicitly through the API;
 * hard limits (frame sizes, counts) are fixed by the wire format and asserted at load.
 */
import { assert } from "./assert.ts"

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB
export const TiB = 1024 * GiB

/** Replicas per volume (StorageOS v1: 0..5). */
export const replicasMax = 5
/** Failure tolerance (StorageOS v1: 0..4, and at most the replica count). */
export const failureToleranceMax = 4
/** Largest volume. Offsets stay exact in a JS number (< 2^53) with a wide margin. */
export const volumeSizeBytesMax = 64 * TiB
/** Volume sizes are whole sectors. */
export const sectorBytes = 512

/** Largest data payload of one replication frame; bigger writes are split into several frames. */
export const writeChunkBytesMax = 1 * MiB
/** Largest frame body on the wire (compressed or raw); a body never exceeds the raw payload limit. */
export const frameBodyBytesMax = writeChunkBytesMax
/** Largest body of a control frame (handshake, error text, open-volume request). */
export const controlBodyBytesMax = 64 * KiB
/** Worker threads of the encryption-at-rest cipher (lib/platform/cryptWorkers.ts), at most one per core. */
export const cryptWorkersMax = 2
/** Runs of the volume cipher this big or bigger go to a worker thread; smaller ones are done inline (the hand-over costs tens of µs). */
export const cryptWorkerRunBytesMin = 64 * KiB
/** Shared input slots of those threads, `writeChunkBytesMax` each (8 MiB at most, made on first use). */
export const cryptWorkerSlotsMax = 8
/** Received frame bodies (raw, spanning socket chunks) one connection keeps for reuse, `frameBodyBytesMax` each (lib/wire/bodyPool.ts). */
export const receiveBodySlabsMax = 4
/** Fixed frame header size (see lib/wire/FORMAT.md). */
export const frameHeaderBytes = 56

/** Writes in flight from one master to one replica before the master waits (back-pressure). */
export const inflightWritesPerReplicaMax = 256
/** Bytes in flight from one master to one replica before the master waits. */
export const inflightBytesPerReplicaMax = 64 * MiB
/** Bytes a connection may buffer for sending before the sender waits. */
export const sendBufferBytesMax = 16 * MiB

/** Authenticated connections one node accepts at once. */
export const connectionsPerNodeMax = 1024
/** Connections waiting in the handshake at once (the rest are closed at accept). */
export const handshakesPendingMax = 64
/** Volume names: namespace/name, each a DNS-label-like word. */
export const volumeNameBytesMax = 253
/** Node names. */
export const nodeNameBytesMax = 63
/** Random nonce of the authentication handshake. */
export const nonceBytes = 32
/** Cluster secrets shorter than this are refused. */
export const secretBytesMin = 16

/** Dirty regions per replica bitmap (2^24 bits = 2 MiB of memory per replica link). */
export const dirtyRegionsPerVolumeMax = 2 ** 24

/** The dirty-region size for a volume: the configured floor, raised to keep the bitmap bounded. */
export const dirtyRegionBytesFor = (sizeBytes: number, floorBytes: number): number => {
  let region = floorBytes
  while (Math.ceil(sizeBytes / region) > dirtyRegionsPerVolumeMax) region *= 2
  return region
}

/**
 * Planned moves (`volume move`, `node drain`; lib/cluster/handover.ts): a fenced master waits at
 * most `handoverDrainMs` for its in-flight writes (twice the ack timeout: a replica slower than
 * that is failed anyway) before it gives the hand-over up and serves again; a move not armed by its
 * target or not handed over within `moveHandoverMs` is abandoned; a copy made for a move or a drain
 * must be in sync within `moveSyncMs`.
 */
export const handoverDrainMs = 10_000
/** Copies a volume may have beyond its replica count while a move or drain syncs a new one. */
export const relocationCopiesMax = 1
export const moveHandoverMs = 30_000
export const moveSyncMs = 6 * 3_600_000
/**
 * A move's or a drain's status is kept in the control store (lib/cluster/opStatus.ts) so any node
 * answers for it: written at every change of state, and its sync progress at most every
 * `opStatusWriteMs`; a failed write is tried `opStatusWriteAttemptsMax` times in all, every
 * `opStatusRetryMs`, and the final one (done or failed) `opStatusFinalWriteAttemptsMax` times (a
 * control store out of reach for half a minute), since no later write would correct it.
 */
export const opStatusWriteMs = 500
export const opStatusRetryMs = 200
export const opStatusWriteAttemptsMax = 5
export const opStatusFinalWriteAttemptsMax = 150

/**
 * A client's Open at a node that does not serve the volume at the client's epoch yet waits at
 * most this long for that master to start (a hand-over's target, a promoted replica, a new
 * volume: the record names the node before its master serves), rather than being refused and
 * retrying on the client's backoff. Short: a client that located a stale master only loses this.
 */
export const clientOpenWaitMs = 250

/**
 * A `volume update` that lowers the replica count below the in-sync replicas waits at most this
 * long for the serving master to drop them (records.ts `trimReplicas`), then returns with the drop
 * still pending (it happens once a master serves).
 */
export const updateTrimWaitMs = 10_000

/** Default settings, each overridable through the API. */
export const defaults = {
  /** Port of the replication protocol (StorageOS: tcp/5703). */
  replicationPort: 5703,
  /** A replica that does not acknowledge within this time is marked failed. */
  ackTimeoutMs: 5_000,
  /**
   * A master whose own fdatasync (or identity record write) takes longer than this treats its
   * disk as failed: the flush fails, the master fences itself (`store-failed`) and a replica
   * takes over. DRBD's disk-timeout; long, because a legitimate fdatasync of much dirty data on
   * a slow device takes seconds.
   */
  diskTimeoutMs: 30_000,
  /** The authentication handshake must finish within this time. */
  handshakeTimeoutMs: 2_000,
  /** Reconnect backoff: first delay, ceiling. */
  reconnectBaseMs: 10,
  reconnectCeilingMs: 500,
  /**
   * Size of one dirty region tracked for delta resync (a floor: volumes too large for this many
   * regions get the next power of two that fits `dirtyRegionsPerVolumeMax`).
   */
  dirtyRegionBytes: 64 * KiB,
} as const

assert(frameBodyBytesMax >= writeChunkBytesMax, "a raw write chunk must fit in a frame body")
assert(controlBodyBytesMax <= frameBodyBytesMax, "control bodies are frame bodies")
assert(inflightBytesPerReplicaMax >= writeChunkBytesMax, "one full chunk must fit in flight")
assert(volumeSizeBytesMax < Number.MAX_SAFE_INTEGER, "offsets must be exact numbers")
assert(failureToleranceMax < replicasMax, "tolerance counts failed replicas out of at most replicasMax")
assert(handoverDrainMs >= 2 * defaults.ackTimeoutMs && handoverDrainMs < moveHandoverMs, "a drain outlasts a replica's ack timeout and fits in a hand-over")
assert(defaults.dirtyRegionBytes % sectorBytes === 0, "dirty regions are whole sectors")
