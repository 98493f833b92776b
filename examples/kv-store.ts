/**
 * A key-value store keeping its data on a replicated volume: an append-only log of checksummed
 * records, with its index rebuilt by scanning the volume when the store opens.
 *
 *   bun examples/kv-store.ts          (or: node --import tsx examples/kv-store.ts)
 *
 * Record layout (little-endian): magic "KVR1" (u32) · payload bytes (u32) · CRC-32 of the payload
 * (u32) · payload = key bytes (u16) · key · value. A scan stops at the first record whose magic or
 * checksum is wrong (the unwritten zeros after the log, or a torn last write), so a crash loses
 * at most the record being written. Every `put` returns once the master and every in-sync
 * replica have the record; `sync()` makes the log durable on their disks.
 *
 * The example runs a 3-node cluster with its data in a temporary directory, writes keys, stops
 * the whole cluster, starts it again from the same directory, reopens the store (scanning the
 * log) and checks every value. Environment: REPLIVOL_PORT (default 5723), REPLIVOL_HOST_BASE.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLocalCluster, type LocalVolume } from "../lib/cli/localCluster.ts"

const magic = 0x3152564b // "KVR1"
const headerBytes = 12
const scanChunkBytes = 1024 * 1024
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const crcTable = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
const crc32 = (bytes: Uint8Array): number => {
  let c = 0xffffffff
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** A DataView over exactly these bytes (a read may return a view into a larger buffer). */
const viewOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

interface Entry { readonly offset: number; readonly length: number }

class KvStore {
  private constructor(private readonly volume: LocalVolume, private readonly index: Map<string, Entry>, private end: number) {}

  /** Opens the store: scans the log from the start and rebuilds the index. */
  static async open(volume: LocalVolume): Promise<KvStore> {
    const index = new Map<string, Entry>()
    let at = 0
    for (;;) {
      if (at + headerBytes > volume.sizeBytes) break
      const header = viewOf(await volume.read(at, headerBytes))
      const payloadBytes = header.getUint32(4, true)
      if (header.getUint32(0, true) !== magic || at + headerBytes + payloadBytes > volume.sizeBytes || payloadBytes > scanChunkBytes) break
      const payload = await volume.read(at + headerBytes, payloadBytes)
      if (crc32(payload) !== header.getUint32(8, true)) break
      const keyBytes = viewOf(payload).getUint16(0, true)
      const key = decoder.decode(payload.subarray(2, 2 + keyBytes))
      index.set(key, { offset: at + headerBytes + 2 + keyBytes, length: payloadBytes - 2 - keyBytes })
      at += headerBytes + payloadBytes
    }
    return new KvStore(volume, index, at)
  }

  get size(): number { return this.index.size }
  get logBytes(): number { return this.end }

  async put(key: string, value: string): Promise<void> {
    const k = encoder.encode(key)
    const v = encoder.encode(value)
    const payload = new Uint8Array(2 + k.length + v.length)
    new DataView(payload.buffer).setUint16(0, k.length, true)
    payload.set(k, 2)
    payload.set(v, 2 + k.length)
    const record = new Uint8Array(headerBytes + payload.length)
    const view = new DataView(record.buffer)
    view.setUint32(0, magic, true)
    view.setUint32(4, payload.length, true)
    view.setUint32(8, crc32(payload), true)
    record.set(payload, headerBytes)
    if (this.end + record.length > this.volume.sizeBytes) throw new Error(`the log is full (${this.volume.sizeBytes} bytes)`)
    await this.volume.write(this.end, record)
    this.index.set(key, { offset: this.end + headerBytes + 2 + k.length, length: v.length })
    this.end += record.length
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.index.get(key)
    return entry === undefined ? undefined : decoder.decode(await this.volume.read(entry.offset, entry.length))
  }

  sync(): Promise<void> { return this.volume.flush() }
}

const port = Number(process.env.REPLIVOL_PORT ?? 5723)
const hostBase = process.env.REPLIVOL_HOST_BASE ?? "127.0.0."
const dataDir = await mkdtemp(join(tmpdir(), "replivol-kv-"))
const expected = new Map<string, string>()
try {
  const first = await createLocalCluster({ nodes: 3, hostBase, port, dataDir })
  try {
    await first.createVolume("apps/kv", 8 * 1024 * 1024, { "storageos.com/replicas": "2" })
    await first.waitHealthy("apps/kv", 30_000)
    const store = await KvStore.open(await first.openVolume("apps/kv"))
    for (let i = 0; i < 200; i++) {
      const key = `user:${i % 150}`
      const value = `{"id":${i % 150},"visits":${i},"note":"${"x".repeat(i % 40)}"}`
      await store.put(key, value)
      expected.set(key, value)
    }
    await store.sync()
    console.log(`wrote 200 records (${store.size} keys, ${store.logBytes} log bytes) to apps/kv on a 3-copy volume`)
  } finally {
    await first.close()
  }
  console.log("cluster stopped; starting it again from the same data directory")
  const second = await createLocalCluster({ nodes: 3, hostBase, port, dataDir })
  try {
    const info = await second.waitHealthy("apps/kv", 30_000)
    const store = await KvStore.open(await second.openVolume("apps/kv"))
    let same = 0
    for (const [key, value] of expected) if ((await store.get(key)) === value) same++
    console.log(`recovered index by scanning: ${store.size} keys, ${store.logBytes} log bytes; master ${info.master}, health ${info.health}`)
    console.log(`values intact: ${same}/${expected.size}`)
    await store.put("user:new", "after restart")
    console.log(`put after restart: ${await store.get("user:new")}`)
  } finally {
    await second.close()
  }
} finally {
  await rm(dataDir, { recursive: true, force: true })
}
