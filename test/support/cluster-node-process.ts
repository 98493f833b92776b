/**
 * One cluster node as its own OS process, with etcd as the control store (multi-process tests).
 *   --name n1 --host 127.0.0.1 --data DIR --etcd URL --secret S [--lease-ttl-ms 1000] [--grace-ms 30000] [--ack-timeout-ms 1000]
 *   [--tls-dir DIR | --plaintext] (test/support/tlsArgs.ts)
 * Prints every cluster event as a JSON line; stops when stdin closes or on SIGTERM.
 */
import { Effect, Layer } from "effect"
import { layerEtcd } from "../../lib/platform/etcdControlStore.ts"
import { transportLayerFor } from "../../lib/platform/nodeTransport.ts"
import { tlsFromArgs } from "./tlsArgs.ts"
import { layerFileStores } from "../../lib/platform/fileStores.ts"
import { startClusterNode } from "../../lib/cluster/clusterNode.ts"

const args = process.argv.slice(2)
const flag = (name: string, fallback?: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)

const program = Effect.gen(function* () {
  const node = yield* startClusterNode({
    name: flag("name"), address: { host: flag("host"), port: Number(flag("port", "5703")) }, dataDir: flag("data"), secret: flag("secret"),
    leaseTtlMs: Number(flag("lease-ttl-ms", "1000")), graceMs: Number(flag("grace-ms", "30000")), ackTimeoutMs: Number(flag("ack-timeout-ms", "1000")),
    onClusterEvent: (event) => say({ event: "cluster", ...event }),
  })
  say({ event: "ready", name: node.name })
  yield* Effect.callback<void>((resume) => {
    process.stdin.on("end", () => resume(Effect.void))
    process.on("SIGTERM", () => resume(Effect.void))
    process.stdin.resume()
  })
})

const member = { name: flag("name"), host: flag("host") }
const transport = await Effect.runPromise(transportLayerFor(tlsFromArgs(args, member.name).tls, member))
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(transport, layerFileStores, layerEtcd({ hosts: flag("etcd") })))))
process.exit(0)
