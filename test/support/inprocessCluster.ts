/**
 * An in-process cluster for tests: N cluster nodes on <hostBase>1..N (real TLS, a throwaway CA), the embedded
 * control store, memory stores that survive a node's crash; crash(i) keeps the node's lease (it
 * must expire), restart(i) starts it again with the same data.
 */
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { layerMemory } from "../../lib/control/embedded.ts"
import { ControlStore } from "../../lib/control/ControlStore.ts"
import { localClusterTransport } from "../../lib/platform/nodeTransport.ts"
import { localMembers } from "../../lib/cli/localCluster.ts"
import { makeMemoryStores } from "../../lib/store/Stores.ts"
import { Transport } from "../../lib/net/Transport.ts"
import { Stores } from "../../lib/store/Stores.ts"
import { startClusterNode, type ClusterNode, type ClusterNodeOptions } from "../../lib/cluster/clusterNode.ts"

export interface InProcessCluster {
  readonly nodes: Array<ClusterNode | undefined>
  readonly run: <A, E>(effect: Effect.Effect<A, E, ControlStore | Transport | Stores | Scope.Scope>) => Promise<A>
  readonly crash: (index: number) => Promise<void>
  readonly restart: (index: number) => Promise<ClusterNode>
  readonly any: () => ClusterNode
  readonly byName: (name: string) => ClusterNode | undefined
  readonly stores: ReturnType<typeof makeMemoryStores>
  readonly close: () => Promise<void>
}

export const startInProcessCluster = async (options: {
  readonly count: number
  readonly hostBase: string
  readonly port: number
  readonly node?: Partial<ClusterNodeOptions>
}): Promise<InProcessCluster> => {
  const stores = makeMemoryStores()
  const transport = await Effect.runPromise(localClusterTransport(localMembers(options.count, options.hostBase), undefined))
  const runtime = ManagedRuntime.make(Layer.mergeAll(transport.layer, stores.layer, layerMemory))
  const scopes: Array<Scope.Closeable | undefined> = []
  const nodes: Array<ClusterNode | undefined> = []
  const run = <A, E>(effect: Effect.Effect<A, E, ControlStore | Transport | Stores | Scope.Scope>) => runtime.runPromise(Effect.scoped(effect))
  const start = async (i: number) => {
    const scope = await runtime.runPromise(Scope.make())
    const node = await runtime.runPromise(startClusterNode({
      name: `n${i + 1}`, address: { host: `${options.hostBase}${i + 1}`, port: options.port }, dataDir: `/mem/n${i + 1}`,
      secret: "in-process-cluster-secret", ackTimeoutMs: 1000, leaseTtlMs: 1000, ...options.node,
    }).pipe(Scope.provide(scope)))
    scopes[i] = scope
    nodes[i] = node
    return node
  }
  for (let i = 0; i < options.count; i++) await start(i)
  return {
    nodes, run, stores,
    crash: async (i) => {
      nodes[i]?.crash()
      nodes[i] = undefined
      if (scopes[i]) await runtime.runPromise(Scope.close(scopes[i]!, Exit.void))
      scopes[i] = undefined
    },
    restart: (i) => start(i),
    any: () => nodes.find((n) => n !== undefined)!,
    byName: (name) => nodes.find((n) => n?.name === name),
    close: async () => {
      for (const scope of scopes) if (scope) await runtime.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    },
  }
}
