/**
 * One cluster node as its own OS process for the cluster benchmarks, with etcd as the control
 * store and file stores, using startClusterNode's DEFAULT settings (lease TTL, ack timeout, tick,
 * grace) unless a flag is given — test/support/cluster-node-process.ts forces a 1 s ack timeout,
 * which a failover benchmark "with default settings" must not do.
 *
 *   --name n1 --host 127.0.7.1 [--port 5703] --data DIR --etcd URL --secret S [--grace-ms N]
 *
 * Prints {"event":"ready"} and then every cluster event as {"event":"cluster",…} (JSON lines).
 * stdin commands (JSON lines): {"cmd":"link-stats","volume":V} → {"event":"link-stats","links":[…]}
 * (the master's links to its replicas: node, state, syncBytesSent); {"cmd":"move","volume":V,"to":N}
 * → {"event":"moved","volume","to","epoch","atMs"} or {"event":"move-failed","message"} (a planned
 * master move, ClusterNode.moveVolume); {"cmd":"exit"}. Stops when
 * stdin closes, on "exit" or on SIGTERM. With BENCH_CPU_PROF=DIR it writes a CPU profile there when
 * it stops cleanly (support/profiler.ts).
 */
import { createInterface } from "node:readline"
import { Effect, Layer } from "effect"
import { layerEtcd } from "../../../lib/platform/etcdControlStore.ts"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { layerFileStores } from "../../../lib/platform/fileStores.ts"
import { startClusterNode, type ClusterNode } from "../../../lib/cluster/clusterNode.ts"
import { startProfiler } from "./profiler.ts"

const args = process.argv.slice(2)
const flag = (name: string, fallback?: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const optional = (name: string): number | undefined => (args.includes(`--${name}`) ? Number(flag(name)) : undefined)
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
const graceMs = optional("grace-ms")

const linkStats = (node: ClusterNode, volume: string) => {
  const master = node.node.masters().get(volume)
  const links = master ? master.links().map((link) => ({ node: link.target.node, state: link.state(), syncBytesSent: link.syncBytesSent(), reconnects: link.reconnects() })) : []
  say({ event: "link-stats", volume, master: master !== undefined, links })
}

const program = Effect.gen(function* () {
  const node = yield* startClusterNode({
    name: flag("name"), address: { host: flag("host"), port: Number(flag("port", "5703")) }, dataDir: flag("data"), secret: flag("secret"),
    ...(graceMs === undefined ? {} : { graceMs }),
    onClusterEvent: (event) => say({ event: "cluster", ...event }),
  })
  say({ event: "ready", name: node.name, pid: process.pid })
  yield* Effect.callback<void>((resume) => {
    const lines = createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      const command = JSON.parse(line) as { cmd?: string; volume?: string; to?: string }
      if (command.cmd === "link-stats") linkStats(node, String(command.volume))
      else if (command.cmd === "move") {
        void Effect.runPromise(Effect.result(node.moveVolume(String(command.volume), String(command.to)))).then((result) =>
          result._tag === "Success"
            ? say({ event: "moved", volume: command.volume, to: command.to, epoch: result.success.epoch, atMs: Date.now() })
            : say({ event: "move-failed", volume: command.volume, message: result.failure.message }))
      }
      else if (command.cmd === "exit") resume(Effect.void)
    })
    lines.on("close", () => resume(Effect.void))
    process.on("SIGTERM", () => resume(Effect.void))
  })
})

const stopProfiler = await startProfiler(`node-${flag("name")}`)
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(layerTcp, layerFileStores, layerEtcd({ hosts: flag("etcd") })))))
await stopProfiler()
process.exit(0)
