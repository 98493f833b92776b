/**
 * One replivol node as its own OS process, for the multi-process tests.
 *
 *   replica --name n2 --host 127.0.0.2 --data DIR --secret S --volume ns/vol --size BYTES
 *   master  --name n1 --host 127.0.0.1 --data DIR --secret S --volume ns/vol --size BYTES
 *           --mode soft|hard|alwayson --replicas n2=127.0.0.2,n3=127.0.0.3 [--ack-timeout-ms MS]
 *   TLS: --tls-dir DIR (DIR/ca.crt, DIR/<name>.crt, DIR/<name>.key: certificates.ts ensureLocalPki),
 *   or --plaintext (plain TCP); without either, this process's own throwaway CA (no peer trusts it).
 *
 * Prints one JSON line per event on stdout. The master then reads JSON commands on stdin:
 *   {"cmd":"random","bytes":N,"seed":S}   random non-overlapping concurrent writes (unaligned offsets
 *                                          and sizes), flush, then reads the whole volume back and
 *                                          compares it with its model
 *   {"cmd":"blocks","seed":S,"blockBytes":B,"first":I,"count":C,"concurrency":Q}
 *                                          writes block i (first ≤ i < first+count) with patternBytes(S, i);
 *                                          reports which were acknowledged and how the others failed
 *   {"cmd":"exit"}
 * Exits by itself when stdin closes.
 */
import { createInterface } from "node:readline"
import { createNode, type VolumeHandle } from "../../lib/index.ts"
import { mulberry, patternBytes } from "./pattern.ts"
import { tlsFromArgs } from "./tlsArgs.ts"

const args = process.argv.slice(2)
const role = args[0]
const flag = (name: string, fallback?: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)

const node = await createNode({
  ...tlsFromArgs(args, flag("name")),
  name: flag("name"),
  address: { host: flag("host"), port: Number(flag("port", "5703")) },
  dataDir: flag("data"),
  secret: flag("secret"),
  ackTimeoutMs: Number(flag("ack-timeout-ms", "1000")),
})
const volumeName = flag("volume")
const sizeBytes = Number(flag("size"))

const randomWorkload = async (volume: VolumeHandle, totalBytes: number, seed: number) => {
  const random = mulberry(seed)
  const model = new Uint8Array(sizeBytes)
  const active: Array<[number, number]> = []
  let written = 0, writes = 0
  const pick = (): [number, number] => {
    for (;;) {
      const length = 1 + Math.floor(random() * (random() < 0.7 ? 65536 : 1 << 20))
      const offset = Math.floor(random() * (sizeBytes - length))
      if (active.every(([o, l]) => offset + length <= o || o + l <= offset)) return [offset, length]
    }
  }
  const worker = async () => {
    while (written < totalBytes) {
      const [offset, length] = pick()
      written += length
      const data = patternBytes(seed, writes++, length)
      const range: [number, number] = [offset, length]
      active.push(range)
      await volume.write(offset, data)
      active.splice(active.indexOf(range), 1)
      model.set(data, offset)
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  await volume.flush()
  let mismatches = 0
  for (let at = 0; at < sizeBytes; at += 1 << 20) {
    const back = await volume.read(at, Math.min(1 << 20, sizeBytes - at))
    for (let i = 0; i < back.length; i++) if (back[i] !== model[at + i]) { mismatches++; break }
  }
  return { writes, bytes: written, mismatches }
}

const blockWorkload = async (volume: VolumeHandle, seed: number, blockBytes: number, first: number, count: number, concurrency: number) => {
  const acked: number[] = []
  const failed: Record<string, number> = {}
  let next = first
  const started = performance.now()
  const worker = async () => {
    while (next < first + count) {
      const index = next++
      try {
        await volume.write(index * blockBytes, patternBytes(seed, index, blockBytes))
        acked.push(index)
        if (acked.length % 50 === 0) say({ event: "progress", acked: acked.length, atMs: Math.round(performance.now() - started) })
      } catch (error) {
        const tag = (error as { _tag?: string })._tag ?? "unknown"
        failed[tag] = (failed[tag] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { acked, failed }
}

if (role === "replica") {
  await node.hostReplica(volumeName, sizeBytes)
  say({ event: "ready", role, name: node.name })
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as Record<string, unknown>
    if (command.cmd === "stats") say({ event: "stats", rssBytes: process.memoryUsage().rss, heapBytes: process.memoryUsage().heapUsed, node: node.stats(), replicas: node.hostedReplicas(), rejections: node.effect.rejections() })
    else if (command.cmd === "exit") break
  }
  await node.close()
  process.exit(0)
} else if (role === "master") {
  const replicas = flag("replicas").split(",").filter(Boolean).map((entry) => {
    const [name, host] = entry.split("=")
    return { node: name!, address: { host: host!, port: Number(flag("port", "5703")) } }
  })
  const volume = await node.openVolume({
    volume: volumeName, sizeBytes, replicas,
    labels: { "storageos.com/replicas": String(replicas.length), "storageos.com/failure.mode": flag("mode", "soft") },
  })
  say({ event: "ready", role, name: node.name, status: await volume.status() })
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    const command = JSON.parse(line) as Record<string, number | string>
    try {
      if (command.cmd === "random") say({ event: "random-done", ...(await randomWorkload(volume, Number(command.bytes), Number(command.seed))) })
      else if (command.cmd === "blocks") {
        const result = await blockWorkload(volume, Number(command.seed), Number(command.blockBytes), Number(command.first), Number(command.count), Number(command.concurrency ?? 4))
        say({ event: "blocks-done", ...result, status: await volume.status() })
      } else if (command.cmd === "exit") break
    } catch (error) {
      say({ event: "error", tag: (error as { _tag?: string })._tag, message: String((error as Error).message) })
    }
  }
  await node.close()
  process.exit(0)
}
process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
