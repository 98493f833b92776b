/**
 * The master side of the replication benchmarks, as its own OS process (the replicas are other
 * processes): it opens every volume it is given and a plain local file, and runs timed
 * workloads on command, so that the baseline (the local file) and the subjects (replicated
 * volumes) run in the same kind of process, interleaved by the parent.
 *
 *   master-process.ts --name n1 --host 127.0.0.1 --port 5703 --data DIR --secret S
 *                     --volumes '[{"volume":"bench/r1","sizeBytes":N,"labels":{…},"replicas":[{"node":"n2","host":"127.0.0.2"}]}]'
 *                     --local-bytes N
 *
 * Commands on stdin (one JSON line each; `target` is a volume name or "local"):
 *   {"cmd":"seq","target":T,"totalBytes":N,"chunkBytes":C,"depth":D,"payload":"random"|"half"}
 *       sequential writes from offset 0 with D in flight, then one flush (fdatasync for "local",
 *       where writes are fs.writeSync one after another) → {"event":"seq-done","ms":…,"writeMs":…,"flushMs":…}
 *   {"cmd":"lat","target":T,"count":N,"blockBytes":B,"spanBytes":S,"seed":K}
 *       N writes of B bytes at queue depth 1, at random B-aligned offsets below S
 *       → {"event":"lat-done","samplesUs":[…]}
 *   {"cmd":"rtt","host":H,"port":P,"count":N,"blockBytes":B,"ackBytes":A}
 *       N round trips: send B bytes to the replica's echo server, wait for its A-byte answer
 *       → {"event":"rtt-done","samplesUs":[…]}
 *   {"cmd":"status"} → {"event":"status","volumes":[…]}
 *   {"cmd":"exit"}
 * Prints {"event":"ready"} once every volume is open, {"event":"error",…} when a command fails.
 * Exits by itself when stdin closes.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { startProfiler } from "./profiler.ts"
import { tlsFromArgs } from "../../support/tlsArgs.ts"
import { createNode, type NodeHandle, type VolumeHandle } from "../../../lib/index.ts"
import { randomBytes } from "node:crypto"
import { makeVolumeCipher } from "../../../lib/crypt/volumeCipher.ts"
import { nodeCrypto, nodeCryptoViaEcb } from "../../../lib/platform/nodeCrypto.ts"
import type { CryptoPrimitives } from "../../../lib/crypt/primitives.ts"
import { mulberry } from "../../support/pattern.ts"
import { payloadOf, type PayloadKind } from "./data.ts"

interface VolumeArg {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels: Record<string, string>
  readonly replicas: ReadonlyArray<{ readonly node: string; readonly host: string }>
}

const args = process.argv.slice(2)
const flag = (name: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : undefined
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
const nowUs = () => Number(process.hrtime.bigint()) / 1000

const poolBytes = 16 * 1024 * 1024
const pools = new Map<PayloadKind, Uint8Array>()
/** The `index`-th chunk of a reused pool of `kind` data (generated once, outside any timing). */
const chunkOf = (kind: PayloadKind, index: number, chunkBytes: number): Uint8Array => {
  let pool = pools.get(kind)
  if (!pool) pools.set(kind, (pool = payloadOf(kind, poolBytes)))
  const perPool = Math.floor(poolBytes / chunkBytes)
  const at = (index % perPool) * chunkBytes
  return pool.subarray(at, at + chunkBytes)
}

let node: NodeHandle
const volumes = new Map<string, VolumeHandle>()
const localPath = join(flag("data"), "local.img")
let localFd = -1
try {
  const port = Number(flag("port"))
  node = await createNode({ ...tlsFromArgs(args, flag("name")), name: flag("name"), address: { host: flag("host"), port }, dataDir: flag("data"), secret: flag("secret") })
  for (const spec of JSON.parse(flag("volumes")) as VolumeArg[]) {
    const replicas = spec.replicas.map((r) => ({ node: r.node, address: { host: r.host, port } }))
    // An encrypted volume gets a random key of its own (the cluster's key hierarchy is not part of this benchmark).
    // BENCH_XTS=ecb: XTS computed over ECB (lib/crypt/xts.ts, Bun's and Deno's path) instead of the native cipher.
    const primitives = (process.env.BENCH_XTS === "ecb" ? nodeCryptoViaEcb() : nodeCrypto()) as CryptoPrimitives
    const cipher = spec.labels["storageos.com/encryption"] === "true" ? makeVolumeCipher(primitives.xts(new Uint8Array(randomBytes(64)))) : undefined
    volumes.set(spec.volume, await node.openVolume({ volume: spec.volume, sizeBytes: spec.sizeBytes, labels: spec.labels, replicas, ...(cipher ? { cipher } : {}) }))
  }
  fs.mkdirSync(flag("data"), { recursive: true })
  localFd = fs.openSync(localPath, "w+")
  fs.ftruncateSync(localFd, Number(flag("local-bytes")))
} catch (error) {
  const { reason, code } = error as { reason?: string; code?: string }
  say({ event: "error", reason: reason ?? code ?? "unknown", message: String((error as Error | undefined)?.message ?? error), detail: String((error as Error | undefined)?.stack ?? error) })
  process.exit(1)
}

const volumeOf = (target: string): VolumeHandle => {
  const volume = volumes.get(target)
  if (!volume) throw new Error(`no volume ${target} is open (open: ${[...volumes.keys()].join(", ")})`)
  return volume
}

const writeLocal = (offset: number, data: Uint8Array) => {
  let done = 0
  while (done < data.length) done += fs.writeSync(localFd, data, done, data.length - done, offset + done)
}

interface SeqCommand { target: string; totalBytes: number; chunkBytes: number; depth: number; payload: PayloadKind }

const sequential = async ({ target, totalBytes, chunkBytes, depth, payload }: SeqCommand) => {
  const count = Math.ceil(totalBytes / chunkBytes)
  for (let i = 0; i < Math.min(count, poolBytes / chunkBytes); i++) chunkOf(payload, i, chunkBytes)
  const started = performance.now()
  if (target === "local") {
    for (let i = 0; i < count; i++) writeLocal(i * chunkBytes, chunkOf(payload, i, chunkBytes))
  } else {
    const volume = volumeOf(target)
    let next = 0
    const worker = async () => {
      while (next < count) {
        const index = next++
        await volume.write(index * chunkBytes, chunkOf(payload, index, chunkBytes))
      }
    }
    await Promise.all(Array.from({ length: depth }, worker))
  }
  const written = performance.now()
  if (target === "local") fs.fdatasyncSync(localFd)
  else await volumeOf(target).flush()
  const flushed = performance.now()
  return { event: "seq-done", target, bytes: count * chunkBytes, ms: flushed - started, writeMs: written - started, flushMs: flushed - written }
}

interface LatCommand { target: string; count: number; blockBytes: number; spanBytes: number; seed: number }

const latency = async ({ target, count, blockBytes, spanBytes, seed }: LatCommand) => {
  const random = mulberry(seed)
  const slots = Math.floor(spanBytes / blockBytes)
  const samplesUs: number[] = []
  const volume = target === "local" ? undefined : volumeOf(target)
  for (let i = 0; i < count; i++) {
    const offset = Math.floor(random() * slots) * blockBytes
    const data = chunkOf("random", i, blockBytes)
    const started = nowUs()
    if (volume) await volume.write(offset, data)
    else writeLocal(offset, data)
    samplesUs.push(nowUs() - started)
  }
  return { event: "lat-done", target, samplesUs: samplesUs.map((us) => Math.round(us * 10) / 10) }
}

/** One persistent connection per echo server, with a FIFO of waiting round trips. */
const echoLinks = new Map<string, { socket: net.Socket; waiters: Array<{ bytes: number; resolve: () => void }> }>()
const echoLink = async (host: string, port: number, blockBytes: number, ackBytes: number) => {
  const key = `${host}:${port}:${blockBytes}:${ackBytes}`
  const existing = echoLinks.get(key)
  if (existing) return existing
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true }, () => resolve(s))
    s.once("error", reject)
  })
  const link = { socket, waiters: [] as Array<{ bytes: number; resolve: () => void }> }
  socket.on("data", (chunk: Buffer) => {
    let left = chunk.length
    while (left > 0 && link.waiters.length > 0) {
      const head = link.waiters[0]!
      const take = Math.min(left, head.bytes)
      head.bytes -= take
      left -= take
      if (head.bytes === 0) link.waiters.shift()!.resolve()
    }
  })
  const setup = Buffer.alloc(8)
  setup.writeUInt32LE(blockBytes, 0)
  setup.writeUInt32LE(ackBytes, 4)
  socket.write(setup)
  echoLinks.set(key, link)
  return link
}

interface RttCommand { host: string; port: number; count: number; blockBytes: number; ackBytes: number }

const roundTrips = async ({ host, port, count, blockBytes, ackBytes }: RttCommand) => {
  const link = await echoLink(host, port, blockBytes, ackBytes)
  const samplesUs: number[] = []
  for (let i = 0; i < count; i++) {
    const data = chunkOf("random", i, blockBytes)
    const started = nowUs()
    await new Promise<void>((resolve) => {
      link.waiters.push({ bytes: ackBytes, resolve })
      link.socket.write(data)
    })
    samplesUs.push(nowUs() - started)
  }
  return { event: "rtt-done", samplesUs: samplesUs.map((us) => Math.round(us * 10) / 10) }
}

const stopProfiler = await startProfiler(`master-${flag("name")}`)
say({ event: "ready", name: node.name, pid: process.pid })
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { cmd?: string }
  try {
    if (command.cmd === "seq") say(await sequential(command as unknown as SeqCommand))
    else if (command.cmd === "lat") say(await latency(command as unknown as LatCommand))
    else if (command.cmd === "rtt") say(await roundTrips(command as unknown as RttCommand))
    else if (command.cmd === "status") say({ event: "status", volumes: await Promise.all([...volumes.values()].map((v) => v.status())) })
    else if (command.cmd === "exit") break
    else say({ event: "error", reason: "bad-command", message: `unknown command ${line}` })
  } catch (error) {
    say({ event: "error", reason: (error as { _tag?: string })._tag ?? "exception", message: String((error as Error).message) })
  }
}
for (const { socket } of echoLinks.values()) socket.destroy()
fs.closeSync(localFd)
await node.close()
await stopProfiler()
process.exit(0)
