/**
 * The master copy of a volume: local writes fanned out to every replica, completed by acks.
 *
 * Write path (one network round trip): under the order lock, the chunk is written to the local
 * store and queued on every in-sync replica link in the same step, so every copy sees overlapping
 * writes in one order. The lock is released before waiting; many writes are in flight at once,
 * bounded by `inflightWritesPerReplicaMax`. The write completes when the master and every replica
 * that was in sync when it was queued acknowledged it, or — when a replica failed meanwhile — when
 * the failure mode (hard / soft + tolerance / alwayson) says the volume is still usable without
 * it. A master superseded by a newer epoch (a replica answers StaleEpoch) or whose lease was lost
 * fails every later IO with `VolumeUnavailable` (DESIGN invariant 2).
 *
 * Reads are served by the master. Flush reaches fdatasync on the master and every in-sync replica.
 */
import { Clock, Deferred, Effect, Semaphore, Scope } from "effect"
import { assert } from "../core/assert.ts"
import { defaults, inflightWritesPerReplicaMax, writeChunkBytesMax } from "../core/limits.ts"
import type { BlockStore, StoreError } from "../store/BlockStore.ts"
import { assessVolume, type Assessment, type Health } from "../volume/health.ts"
import type { VolumeSpec } from "../volume/labels.ts"
import { MessageType } from "../wire/index.ts"
import type { Connection } from "../net/connection.ts"
import { checkRange, VolumeIoError, VolumeUnavailable, type OutOfRange, type VolumeError } from "./errors.ts"
import { volumeIdOf } from "./protocol.ts"
import { makeReplicaLink, type LinkFailure, type ReplicaLink, type ReplicaState, type ReplicaTarget } from "./replicaLink.ts"

export interface ReplicaStatus {
  readonly node: string
  readonly address: string
  readonly state: ReplicaState
  readonly reason: string | undefined
  readonly dirtyBytes: number
}

export interface VolumeStatus {
  readonly volume: string
  readonly sizeBytes: number
  readonly master: string
  readonly epoch: number
  readonly health: Health
  readonly usable: boolean
  readonly reason: string
  readonly replicas: ReadonlyArray<ReplicaStatus>
  readonly spec: VolumeSpec
}

export interface VolumeEvent {
  readonly volume: string
  readonly atMs: number
  readonly kind: "replica-failed" | "superseded" | "health-changed"
  readonly message: string
}

export interface MasterVolumeOptions {
  readonly volume: string
  readonly spec: VolumeSpec
  readonly epoch: number
  readonly store: BlockStore
  readonly nodeName: string
  readonly replicas: ReadonlyArray<ReplicaTarget>
  readonly connect: (target: ReplicaTarget) => Effect.Effect<Connection, unknown>
  readonly ackTimeoutMs?: number
  readonly reconnectBaseMs?: number
  readonly reconnectCeilingMs?: number
  readonly dirtyRegionBytes?: number
  readonly onEvent?: (event: VolumeEvent) => void
}

export interface MasterVolume {
  readonly name: string
  readonly sizeBytes: number
  readonly write: (offset: number, data: Uint8Array) => Effect.Effect<void, VolumeError>
  readonly read: (offset: number, length: number) => Effect.Effect<Uint8Array, VolumeError>
  readonly flush: Effect.Effect<void, VolumeError>
  readonly status: Effect.Effect<VolumeStatus>
  /** Stops serving IO at once (lease lost, or handing over); every later IO fails with `reason`. */
  readonly fence: (reason: VolumeUnavailable["reason"], message: string) => void
  readonly links: ReadonlyArray<ReplicaLink>
  readonly close: Effect.Effect<void>
}

const storeFailure = (volume: string) => (error: StoreError): VolumeIoError =>
  new VolumeIoError({ volume, reason: error.reason === "no-space" ? "no-space" : error.reason === "closed" ? "closed" : "io", message: `volume ${volume}: the master's store failed: ${error.message}`, cause: error })

export const openMasterVolume = (options: MasterVolumeOptions): Effect.Effect<MasterVolume, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { volume, spec, store, epoch } = options
    assert(options.replicas.length === spec.replicas, "a master is opened with exactly the requested number of replica targets")
    const sizeBytes = store.sizeBytes
    const volumeId = volumeIdOf(volume)
    const ackTimeoutMs = options.ackTimeoutMs ?? defaults.ackTimeoutMs
    const orderLock = yield* Semaphore.make(1)
    const inflight = yield* Semaphore.make(inflightWritesPerReplicaMax)
    let fenced: VolumeUnavailable | undefined
    const clock = yield* Clock.Clock
    const emit = (kind: VolumeEvent["kind"], message: string) =>
      options.onEvent?.({ volume, atMs: clock.currentTimeMillisUnsafe(), kind, message })

    const links: ReplicaLink[] = []
    for (const target of options.replicas) {
      links.push(yield* makeReplicaLink({
        target, volume, volumeId, sizeBytes, epoch, masterName: options.nodeName, compress: !spec.nocompress, ackTimeoutMs,
        reconnectBaseMs: options.reconnectBaseMs ?? defaults.reconnectBaseMs,
        reconnectCeilingMs: options.reconnectCeilingMs ?? defaults.reconnectCeilingMs,
        dirtyRegionBytes: options.dirtyRegionBytes ?? defaults.dirtyRegionBytes,
        connect: options.connect(target),
        onFailed: (failure: LinkFailure) => {
          if (failure.reason === "stale-epoch") fence("superseded", `volume ${volume}: a newer master exists (${failure.message}); this master stops serving IO`)
          emit("replica-failed", failure.message)
        },
      }))
    }
    yield* Effect.forEach(links, (link) => link.start, { concurrency: "unbounded", discard: true })

    const assess = (): Assessment => {
      let inSync = 0
      let failed = 0
      for (const link of links) {
        const state = link.state()
        if (state === "in-sync" || state === "reconnecting") inSync++
        else if (state === "failed") failed++
      }
      return assessVolume(spec, { inSync, syncing: links.length - inSync - failed, failed })
    }

    const unavailable = (assessment: Assessment) =>
      new VolumeUnavailable({
        volume, health: assessment.health,
        reason: spec.failureMode === "hard" ? "replicas-below-requested" : "tolerance-exceeded",
        message: `volume ${volume} is unavailable: ${assessment.reason}`,
      })

    const checkUsable: Effect.Effect<void, VolumeUnavailable> = Effect.suspend(() => {
      if (fenced) return Effect.fail(fenced)
      const assessment = assess()
      return assessment.usable ? Effect.void : Effect.fail(unavailable(assessment))
    })

    function fence(reason: VolumeUnavailable["reason"], message: string) {
      if (fenced) return
      fenced = new VolumeUnavailable({ volume, reason, health: "unavailable", message })
      emit("superseded", message)
    }

    /** Writes one chunk locally and queues it on every in-sync link, atomically with respect to other chunks. */
    const queueChunk = (type: MessageType, offset: number, data: Uint8Array) =>
      orderLock.withPermits(1)(Effect.gen(function* () {
        yield* checkUsable
        if (type === MessageType.Write) yield* store.write(offset, data).pipe(Effect.mapError(storeFailure(volume)))
        const waits: Array<{ link: ReplicaLink; done: Deferred.Deferred<void, LinkFailure> }> = []
        for (const link of links) {
          const done = link.enqueue(type, offset, data)
          if (done) waits.push({ link, done })
        }
        return waits
      }))

    const awaitReplicas = (waits: ReadonlyArray<{ link: ReplicaLink; done: Deferred.Deferred<void, LinkFailure> }>) =>
      Effect.gen(function* () {
        yield* Effect.forEach(waits, ({ link, done }) => Effect.ignore(link.awaitAck(done)), { concurrency: "unbounded", discard: true })
        // A replica that failed meanwhile is no longer in sync; the failure mode decides.
        yield* checkUsable
      })

    const writeChunk = (offset: number, data: Uint8Array) =>
      inflight.withPermits(1)(Effect.gen(function* () {
        const waits = yield* queueChunk(MessageType.Write, offset, data)
        yield* awaitReplicas(waits)
      }))

    const write = (offset: number, data: Uint8Array): Effect.Effect<void, VolumeError> =>
      Effect.suspend((): Effect.Effect<void, VolumeError> => {
        const rangeError: OutOfRange | undefined = checkRange(volume, sizeBytes, offset, data.length)
        if (rangeError) return Effect.fail(rangeError)
        if (data.length <= writeChunkBytesMax) return writeChunk(offset, data)
        const chunks: Array<[number, Uint8Array]> = []
        for (let at = 0; at < data.length; at += writeChunkBytesMax) chunks.push([offset + at, data.subarray(at, at + writeChunkBytesMax)])
        return Effect.forEach(chunks, ([chunkOffset, chunk]) => writeChunk(chunkOffset, chunk), { concurrency: 8, discard: true })
      })

    const read = (offset: number, length: number): Effect.Effect<Uint8Array, VolumeError> =>
      Effect.suspend((): Effect.Effect<Uint8Array, VolumeError> => {
        const rangeError = checkRange(volume, sizeBytes, offset, length)
        if (rangeError) return Effect.fail(rangeError)
        return Effect.andThen(checkUsable, store.read(offset, length).pipe(Effect.mapError(storeFailure(volume))))
      })

    const flush: Effect.Effect<void, VolumeError> = inflight.withPermits(1)(Effect.gen(function* () {
      const waits = yield* queueChunk(MessageType.Flush, 0, new Uint8Array(0))
      yield* store.flush.pipe(Effect.mapError(storeFailure(volume)))
      yield* awaitReplicas(waits)
    }))

    const status = Effect.sync((): VolumeStatus => {
      const assessment = fenced ? { health: "unavailable" as const, usable: false, reason: fenced.message } : assess()
      return {
        volume, sizeBytes, master: options.nodeName, epoch, spec,
        health: assessment.health, usable: assessment.usable, reason: assessment.reason,
        replicas: links.map((link) => ({
          node: link.target.node, address: `${link.target.address.host}:${link.target.address.port}`,
          state: link.state(), reason: link.failure()?.message, dirtyBytes: link.dirty.dirtyBytes,
        })),
      }
    })

    const close = Effect.gen(function* () {
      fence("closed", `volume ${volume} was closed`)
      yield* Effect.forEach(links, (link) => link.close, { discard: true })
    })
    yield* Effect.addFinalizer(() => close)

    return { name: volume, sizeBytes, write, read, flush, status, fence, links, close } satisfies MasterVolume
  })

