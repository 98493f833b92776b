/**
 * A client process for the cluster benchmarks: a volume handle (makeClusterClient, default
 * settings — no node) that follows the master, driven by JSON-line commands on stdin, answering
 * with JSON-line events on stdout. Times are wall-clock ms (Date.now) so the benchmark can line
 * them up with the nodes' cluster events.
 *
 *   --etcd URL --secret S --volume ns/v
 *
 * Commands:
 * - {"cmd":"fill"}: writes the whole volume once, 1 MiB random chunks, 8 in flight, then flushes
 *   → {"event":"filled","bytes","ms"}.
 * - {"cmd":"seq-start"}: sequential 1 MiB writes, 8 in flight, wrapping around the volume, until
 *   {"cmd":"seq-stop"} → {"event":"seq-stopped","bytes"}. Every acknowledgement time is kept;
 *   {"cmd":"count","fromMs","toMs"} → {"event":"count","bytes","writes"} acknowledged in that window.
 * - {"cmd":"steady-start","blockBytes"}: one write at a time (failover); a write that took
 *   ≥ 100 ms prints {"event":"pause-ack","startedAtMs","atMs","tookMs"}; every 500 ms
 *   {"event":"progress","acked"}. {"cmd":"steady-stop"} → {"event":"steady-stopped","acked"}.
 *   {"cmd":"longest","fromMs","toMs"} → {"event":"longest","tookMs","startedAtMs","writes"}: the
 *   slowest steady write that was in flight at some point of the window, and how many ran in it;
 *   {"cmd":"median","fromMs","toMs"} → {"event":"median","tookMs","writes"} of the writes started in it.
 * - {"cmd":"rewrite","bytes","pieceBytes","seed"}: rewrites `bytes` in pieces at random 4 KiB-aligned
 *   offsets, flushes → {"event":"rewritten","writtenBytes","dirtiedBytes" (distinct 4 KiB pages),"ms","slowestWriteMs"}.
 * Failed writes print {"event":"write-failed","tag","reason","message"}. Ends when stdin closes.
 */
import { randomFillSync } from "node:crypto"
import { createInterface } from "node:readline"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { layerEtcd } from "../../../lib/platform/etcdControlStore.ts"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { makeClusterClient } from "../../../lib/cluster/client.ts"
import type { VolumeClient } from "../../../lib/cluster/volumeClient.ts"
import { mulberry } from "../../support/pattern.ts"

const args = process.argv.slice(2)
const flag = (name: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : undefined
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
const MiB = 1 << 20
const depth = 8
const pageBytes = 4096

const runtime = ManagedRuntime.make(Layer.mergeAll(layerTcp, layerEtcd({ hosts: flag("etcd") })))
const scope = await runtime.runPromise(Scope.make())
const volume: VolumeClient = await runtime.runPromise(
  Effect.flatMap(makeClusterClient({ name: "bench-writer", secret: flag("secret") }), (client) => client.openVolume(flag("volume"))).pipe(Scope.provide(scope)),
)
const pool = Array.from({ length: 16 }, () => randomFillSync(new Uint8Array(MiB)))

/** One write; true when acknowledged (a failure is printed). */
const write = async (offset: number, data: Uint8Array): Promise<boolean> => {
  const result = await runtime.runPromise(Effect.result(volume.write(offset, data)))
  if (result._tag === "Success") return true
  const error = result.failure as { _tag?: string; reason?: string; message?: string }
  say({ event: "write-failed", tag: error._tag, reason: error.reason, message: error.message })
  return false
}

/** Runs `depth` writers over `next()` offsets until it returns undefined. */
const pump = async (next: () => number | undefined, data: (offset: number) => Uint8Array, onAck: (offset: number) => void) => {
  const worker = async () => {
    for (let offset = next(); offset !== undefined; offset = next()) if (await write(offset, data(offset))) onAck(offset)
  }
  await Promise.all(Array.from({ length: depth }, worker))
}

const fill = async () => {
  const started = Date.now()
  let at = 0
  await pump(() => (at < volume.sizeBytes ? (at += MiB) - MiB : undefined), () => randomFillSync(new Uint8Array(MiB)), () => {})
  await runtime.runPromise(volume.flush)
  say({ event: "filled", bytes: volume.sizeBytes, ms: Date.now() - started })
}

let seqRunning = false
let seqDone: Promise<void> = Promise.resolve()
let seqCursor = 0
const ackTimesMs: number[] = []
const seqStart = () => {
  if (seqRunning) return
  seqRunning = true
  let chunk = 0
  seqDone = pump(
    () => {
      if (!seqRunning) return undefined
      const offset = seqCursor
      seqCursor = (seqCursor + MiB) % volume.sizeBytes
      return offset
    },
    () => pool[chunk++ % pool.length]!,
    () => void ackTimesMs.push(Date.now()),
  )
}

let steadyRunning = false
let steadyDone: Promise<void> = Promise.resolve()
let steadyAcked = 0
/** Steady writes as [startedAtMs, ackedAtMs], the last `steadyKeptMax` of them. */
const steadyWrites: Array<readonly [number, number]> = []
const steadyKeptMax = 200_000
const steadyStart = (blockBytes: number) => {
  if (steadyRunning) return
  steadyRunning = true
  const data = pool[0]!.subarray(0, blockBytes)
  const progress = setInterval(() => say({ event: "progress", acked: steadyAcked }), 500)
  steadyDone = (async () => {
    for (let offset = 0; steadyRunning; offset = (offset + blockBytes) % volume.sizeBytes) {
      const startedAtMs = Date.now()
      if (!(await write(offset, data))) continue
      steadyAcked++
      const atMs = Date.now()
      steadyWrites.push([startedAtMs, atMs])
      if (steadyWrites.length > steadyKeptMax) steadyWrites.splice(0, steadyWrites.length - steadyKeptMax)
      if (atMs - startedAtMs >= 100) say({ event: "pause-ack", startedAtMs, atMs, tookMs: atMs - startedAtMs })
    }
    clearInterval(progress)
  })()
}

const rewrite = async (bytes: number, pieceBytes: number, seed: number) => {
  const random = mulberry(seed)
  const pages = new Set<number>()
  let written = 0
  let slowestMs = 0
  const started = Date.now()
  while (written < bytes) {
    const offset = Math.floor(random() * ((volume.sizeBytes - pieceBytes) / pageBytes)) * pageBytes
    const writeStarted = Date.now()
    if (await write(offset, randomFillSync(new Uint8Array(pieceBytes)))) written += pieceBytes
    slowestMs = Math.max(slowestMs, Date.now() - writeStarted)
    for (let page = offset; page < offset + pieceBytes; page += pageBytes) pages.add(page)
  }
  await runtime.runPromise(volume.flush)
  say({ event: "rewritten", writtenBytes: written, dirtiedBytes: pages.size * pageBytes, ms: Date.now() - started, slowestWriteMs: slowestMs })
}

const handle = async (command: Record<string, unknown>) => {
  switch (command.cmd) {
    case "fill": return fill()
    case "seq-start": return seqStart()
    case "seq-stop":
      seqRunning = false
      await seqDone
      return say({ event: "seq-stopped", bytes: ackTimesMs.length * MiB })
    case "count": {
      const writes = ackTimesMs.filter((t) => t >= Number(command.fromMs) && t <= Number(command.toMs)).length
      return say({ event: "count", writes, bytes: writes * MiB })
    }
    case "steady-start": return steadyStart(Number(command.blockBytes ?? 65536))
    case "steady-stop":
      steadyRunning = false
      await steadyDone
      return say({ event: "steady-stopped", acked: steadyAcked })
    case "longest": {
      const inWindow = steadyWrites.filter(([s, a]) => a >= Number(command.fromMs) && s <= Number(command.toMs))
      const slowest = inWindow.reduce<readonly [number, number] | undefined>((best, w) => (!best || w[1] - w[0] > best[1] - best[0] ? w : best), undefined)
      return say({ event: "longest", tookMs: slowest ? slowest[1] - slowest[0] : -1, startedAtMs: slowest?.[0], writes: inWindow.length })
    }
    case "median": {
      const took = steadyWrites.filter(([s]) => s >= Number(command.fromMs) && s <= Number(command.toMs)).map(([s, a]) => a - s).sort((x, y) => x - y)
      return say({ event: "median", tookMs: took.length ? took[Math.floor(took.length / 2)] : -1, writes: took.length })
    }
    case "rewrite": return rewrite(Number(command.bytes), Number(command.pieceBytes ?? 65536), Number(command.seed ?? 1))
    default: return say({ event: "unknown-command", command })
  }
}

say({ event: "ready", pid: process.pid })
const lines = createInterface({ input: process.stdin })
lines.on("line", (line) => void handle(JSON.parse(line) as Record<string, unknown>).catch((error) => say({ event: "write-failed", tag: "command", message: String(error) })))
await new Promise<void>((resolve) => lines.on("close", resolve))
seqRunning = false
steadyRunning = false
await Promise.all([seqDone, steadyDone])
await runtime.runPromise(Scope.close(scope, Exit.void))
await runtime.dispose()
process.exit(0)
