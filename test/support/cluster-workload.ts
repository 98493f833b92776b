/**
 * A workload process (no node): writes numbered blocks to a volume through its master, wherever
 * it is, then verifies every acknowledged block.
 *   --etcd URL --secret S --volume ns/v --block-bytes B --count N --seed S
 * Prints {"event":"ack","index":i,"atMs":…} per acknowledged write and {"event":"done",…} at the end.
 */
import { Effect, Layer } from "effect"
import { layerEtcd } from "../../lib/platform/etcdControlStore.ts"
import { transportLayerFor } from "../../lib/platform/nodeTransport.ts"
import { tlsFromArgs } from "./tlsArgs.ts"
import { makeClusterClient } from "../../lib/cluster/client.ts"
import { patternBytes } from "./pattern.ts"

const args = process.argv.slice(2)
const flag = (name: string, fallback?: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
const blockBytes = Number(flag("block-bytes", "65536"))
const count = Number(flag("count", "1000"))
const seed = Number(flag("seed", "1"))

const program = Effect.gen(function* () {
  let retries = 0
  const client = yield* makeClusterClient({ name: "workload", secret: flag("secret"), ackTimeoutMs: 1000, onRetry: () => void retries++ })
  const volume = yield* client.openVolume(flag("volume"))
  const acked: number[] = []
  const failed: Record<string, number> = {}
  for (let index = 0; index < count; index++) {
    const result = yield* Effect.result(volume.write(index * blockBytes, patternBytes(seed, index, blockBytes)))
    if (result._tag === "Success") {
      acked.push(index)
      say({ event: "ack", index, atMs: Date.now() })
    } else {
      failed[result.failure._tag] = (failed[result.failure._tag] ?? 0) + 1
      say({ event: "write-failed", index, tag: result.failure._tag, message: result.failure.message })
    }
  }
  yield* Effect.result(volume.flush)
  let mismatches = 0
  for (const index of acked) {
    const back = yield* Effect.result(volume.read(index * blockBytes, blockBytes))
    const expected = patternBytes(seed, index, blockBytes)
    if (back._tag === "Failure" || !back.success.every((b, i) => b === expected[i])) mismatches++
  }
  say({ event: "done", acked: acked.length, failed, mismatches, retries })
})

const member = { name: "workload", host: "127.0.0.1" }
const transport = await Effect.runPromise(transportLayerFor(tlsFromArgs(args, member.name).tls, member))
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.mergeAll(transport, layerEtcd({ hosts: flag("etcd") })))))
process.exit(0)
