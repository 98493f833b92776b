/**
 * A replica node for the replication benchmarks, as its own OS process:
 *
 *   replica-process.ts --name n2 --host 127.0.0.2 --port 5703 --data DIR --secret S
 *                      --volumes bench/r1=268435456,bench/r2=268435456 [--echo-port 5704]
 *
 * Hosts every listed volume. With `--echo-port` it also runs a plain TCP echo server on the same
 * host: for every `blockBytes` received it answers `ackBytes` bytes (set by the first 8 bytes a
 * client sends: two u32 LE). That is the baseline round trip of the latency benchmark, measured
 * between the very same two processes that replicate, so both see the same CPU placement.
 *
 * JSON lines on stdout: {"event":"ready"} or {"event":"error","reason":…}. Commands on stdin:
 *   {"cmd":"stats"} → {"event":"stats","rchar":N,"replicas":[…]}  (rchar: bytes this process read
 *                      through read(2) and friends, from /proc/self/io — sockets included)
 *   {"cmd":"exit"}
 * Exits by itself when stdin closes (its parent died), so it never outlives the benchmark.
 */
import { readFileSync } from "node:fs"
import * as net from "node:net"
import { createInterface } from "node:readline"
import { startProfiler } from "./profiler.ts"
import { tlsFromArgs } from "../../support/tlsArgs.ts"
import { createNode, type NodeHandle } from "../../../lib/index.ts"

const args = process.argv.slice(2)
const flag = (name: string, fallback?: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)

/** Bytes read by this process so far (rchar of /proc/self/io); undefined where there is no procfs. */
const readCharBytes = (): number | undefined => {
  try {
    const match = /^rchar:\s*(\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

const echoServer = (host: string, port: number) =>
  new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, (socket) => {
      let blockBytes = 0, ackBytes = 0, received = 0
      let setup = Buffer.alloc(0)
      let ack = Buffer.alloc(0)
      socket.on("data", (chunk: Buffer) => {
        if (blockBytes === 0) {
          setup = Buffer.concat([setup, chunk])
          if (setup.length < 8) return
          blockBytes = setup.readUInt32LE(0)
          ackBytes = setup.readUInt32LE(4)
          ack = Buffer.alloc(ackBytes, 1)
          chunk = setup.subarray(8)
        }
        received += chunk.length
        while (received >= blockBytes) {
          received -= blockBytes
          socket.write(ack)
        }
      })
      socket.on("error", () => socket.destroy())
    })
    server.once("error", reject)
    server.listen({ host, port }, () => resolve(server))
  })

let node: NodeHandle
let echo: net.Server | undefined
try {
  node = await createNode({ ...tlsFromArgs(args, flag("name")), name: flag("name"), address: { host: flag("host"), port: Number(flag("port")) }, dataDir: flag("data"), secret: flag("secret") })
  for (const entry of flag("volumes").split(",").filter(Boolean)) {
    const [volume, size] = entry.split("=")
    await node.hostReplica(volume!, Number(size))
  }
  const echoPort = args.includes("--echo-port") ? Number(flag("echo-port")) : undefined
  if (echoPort !== undefined) echo = await echoServer(flag("host"), echoPort)
} catch (error) {
  const { reason, code } = error as { reason?: string; code?: string }
  say({ event: "error", reason: reason ?? (code === "EADDRINUSE" ? "address-in-use" : code ?? "unknown"), message: String((error as Error | undefined)?.message ?? error), detail: String((error as Error | undefined)?.stack ?? error) })
  process.exit(1)
}
const stopProfiler = await startProfiler(`replica-${flag("name")}`)
say({ event: "ready", name: node.name, pid: process.pid })
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { cmd?: string }
  if (command.cmd === "stats") say({ event: "stats", rchar: readCharBytes(), replicas: node.hostedReplicas() })
  else if (command.cmd === "exit") break
}
echo?.close()
await node.close()
await stopProfiler()
process.exit(0)
