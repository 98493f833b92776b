/**
 * A `FuseBackend` over a cluster: every volume of the cluster appears under the mount, and IO goes
 * through a volume handle (`ClusterNode.openVolume`) that follows the volume's master, so a
 * failover is a pause for the process using the file, not an error.
 *
 * One handle per volume, opened on first use through a running node and cached. When that node
 * stops (a local cluster's crash drill), the handle is closed and the next IO — and an IO that was
 * waiting on it — reopens through another running node. Typed volume errors become backend
 * reasons here (VolumeUnavailable → unavailable, OutOfRange → out-of-range, VolumeIoError
 * no-space → no-space, anything else → io) and every op is counted as a front-end metric.
 *
 * Written bytes are copied before they are handed on: libfuse lends the buffer only until the op
 * replies (fuse-native then detaches it), while a queued socket write or a retry after a failover
 * may still hold it. A real copy (`copyBytes`): the Buffer fuse-native passes has a `slice` that is
 * a view, which is what this copied before.
 */
import { Effect, Exit, Scope } from "effect"
import type { ClusterNode } from "../lib/cluster/clusterNode.ts"
import type { VolumeClient } from "../lib/cluster/volumeClient.ts"
import { copyBytes } from "../lib/core/bytes.ts"
import { noMetrics, type Metrics } from "../lib/core/metrics.ts"
import { countOp, type FrontendOp } from "../lib/admin/metrics.ts"
import { FuseBackendError, type FuseBackend, type FuseBackendErrorReason } from "./backend.ts"

export interface ClusterBackendOptions {
  /** A running node to do IO through (undefined when none runs). */
  readonly node: () => ClusterNode | undefined
  /** Whether the named node still runs (default: always); a handle through a stopped node is reopened. */
  readonly isRunning?: (name: string) => boolean
  readonly metrics?: Metrics
}

export interface ClusterBackend extends FuseBackend {
  /** Volumes with an open handle, and the node each goes through. */
  readonly handles: () => ReadonlyMap<string, string>
}

/** How often handles through stopped nodes are looked for. */
export const staleSweepMs = 200

interface Handle {
  readonly via: string
  readonly client: VolumeClient
  readonly scope: Scope.Closeable
}

/** The backend reason for a typed error from a volume handle or the cluster API. */
export const reasonOf = (error: { readonly _tag: string; readonly reason?: string }): FuseBackendErrorReason => {
  switch (error._tag) {
    case "VolumeUnavailable": return "unavailable"
    case "OutOfRange": return "out-of-range"
    case "VolumeIoError": return error.reason === "no-space" ? "no-space" : "io"
    case "ClusterError": return error.reason === "not-found" ? "not-found" : "unavailable"
    case "ControlError": return "unavailable"
    default: return "io"
  }
}

const toBackendError = (error: { readonly _tag: string; readonly reason?: string; readonly message?: string }) =>
  new FuseBackendError({ reason: reasonOf(error), message: error.message ?? error._tag })

export const makeClusterBackend = (options: ClusterBackendOptions): Effect.Effect<ClusterBackend, never, Scope.Scope> =>
  Effect.gen(function* () {
    const parent = yield* Effect.scope
    const metrics = options.metrics ?? noMetrics
    const isRunning = options.isRunning ?? (() => true)
    const handles = new Map<string, Handle>()
    const opening = new Map<string, Promise<Exit.Exit<Handle, FuseBackendError>>>()

    const release = (volume: string, handle: Handle) =>
      Effect.suspend(() => {
        if (handles.get(volume) === handle) handles.delete(volume)
        return Scope.close(handle.scope, Exit.void)
      })

    const open = (volume: string) =>
      Effect.gen(function* () {
        const node = options.node()
        if (!node) return yield* new FuseBackendError({ reason: "unavailable", message: `no node of the cluster is running to serve ${volume}` })
        const scope = yield* Scope.fork(parent)
        const client = yield* node.openVolume(volume).pipe(
          Scope.provide(scope),
          Effect.mapError(toBackendError),
          Effect.onError(() => Scope.close(scope, Exit.void)),
        )
        const handle: Handle = { via: node.name, client, scope }
        handles.set(volume, handle)
        return handle
      })

    /** The cached handle if its node runs; else one opening (shared by concurrent callers). */
    const handleOf = (volume: string): Effect.Effect<Handle, FuseBackendError> =>
      Effect.suspend(() => {
        const cached = handles.get(volume)
        if (cached && isRunning(cached.via)) return Effect.succeed(cached)
        const stale = cached ? release(volume, cached) : Effect.void
        let pending = opening.get(volume)
        if (!pending) {
          pending = Effect.runPromise(Effect.exit(Effect.andThen(stale, open(volume))))
          opening.set(volume, pending)
          void pending.then(() => opening.delete(volume))
        }
        const wait = pending
        return Effect.flatten(Effect.promise(() => wait))
      })

    /** Runs an op on the volume's handle; once more on a fresh handle if its node stopped meanwhile. */
    const withHandle = <A>(namespace: string, name: string, op: FrontendOp, bytes: number, run: (client: VolumeClient) => Effect.Effect<A, { readonly _tag: string; readonly reason?: string; readonly message: string }>) => {
      const volume = `${namespace}/${name}`
      const once = Effect.flatMap(handleOf(volume), (handle) =>
        run(handle.client).pipe(Effect.mapError((error) => ({ error, stale: !isRunning(handle.via) }))))
      const attempt = once.pipe(
        Effect.catch((failure): Effect.Effect<A, FuseBackendError> => {
          if (failure instanceof FuseBackendError) return Effect.fail(failure)
          if (failure.stale) return Effect.flatMap(handleOf(volume), (handle) => Effect.mapError(run(handle.client), toBackendError))
          return Effect.fail(toBackendError(failure.error))
        }),
      )
      return countOp(metrics, volume, op, bytes, attempt)
    }

    const list = Effect.suspend(() => {
      const node = options.node()
      if (!node) return Effect.fail(new FuseBackendError({ reason: "unavailable", message: "no node of the cluster is running" }))
      return node.listVolumes.pipe(
        Effect.map((volumes) => volumes.map((v) => {
          const [namespace, name] = v.volume.split("/") as [string, string]
          return { namespace, name, sizeBytes: v.sizeBytes }
        })),
        Effect.mapError(toBackendError),
      )
    })

    // A handle through a node that stopped is closed at once, so an IO waiting on it fails over
    // to a fresh handle instead of waiting out the pause limit.
    const sweep = Effect.suspend(() =>
      Effect.forEach([...handles].filter(([, h]) => !isRunning(h.via)), ([volume, handle]) => release(volume, handle), { discard: true }))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(staleSweepMs), sweep)))
    yield* Effect.addFinalizer(() => Effect.forEach([...handles], ([volume, handle]) => release(volume, handle), { discard: true }))

    return {
      list,
      read: (namespace, name, offset, length) => withHandle(namespace, name, "read", length, (c) => c.read(offset, length)),
      write: (namespace, name, offset, data) => {
        const copy = copyBytes(data)
        return withHandle(namespace, name, "write", copy.length, (c) => c.write(offset, copy))
      },
      flush: (namespace, name) => withHandle(namespace, name, "flush", 0, (c) => c.flush),
      handles: () => new Map([...handles].map(([volume, handle]) => [volume, handle.via])),
    }
  })
