/**
 * A small pool of worker threads (node:worker_threads) that run AES-256-XTS over runs of data
 * units: `XtsCipher.background` (lib/crypt/primitives.ts) on Node.
 *
 * Why: a 1 MiB run costs ~1.5 ms of CPU even over ECB (~2.5 ms with node:crypto's XTS, which
 * needs a cipher object per 4 KiB unit); on the event loop that time is taken from the node's
 * synchronous file writes and its sockets (TLS included), and the two serialise. On worker threads
 * the cipher overlaps them, and two runs go on two cores.
 *
 * How: the run's bytes are copied into a shared slot (or a buffer of their own): the caller's
 * buffer is never shared with another thread. The slot and the key go to the least busy worker,
 * whose result is handed back (transferred, not copied). Workers are started on first use and do not
 * keep the process alive while idle. A worker that cannot be started or dies fails its runs over
 * to the inline cipher (same bytes), and the pool stops using threads: never an error.
 *
 * The worker's code is a string (`eval`): it needs nothing but node:crypto and one pure function's
 * source, and so works the same from the TypeScript sources, from a package and from a bundle.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import { cryptWorkerRunBytesMin, cryptWorkerSlotsMax, cryptWorkersMax, writeChunkBytesMax } from "../core/limits.ts"
import type { XtsBackground, XtsCipher } from "../crypt/primitives.ts"
import { maskRun } from "../crypt/xts.ts"

/**
 * The worker: XTS over native aes-256-ecb, as lib/crypt/xts.ts does it (its `maskRun`, by source
 * text): ~40 % less CPU than a native XTS cipher object per unit. The input (a shared slot, or a
 * transferred copy) is masked in place; the ECB output, the worker's own fresh memory, is the
 * result, transferred back. The unit tests compare its bytes with the inline cipher's.
 */
const workerSource = `
const { parentPort } = require("node:worker_threads")
const crypto = require("node:crypto")
const maskRun = ${maskRun.toString()}
const ecb = (decrypt, key, data) => {
  const cipher = decrypt ? crypto.createDecipheriv("aes-256-ecb", key, null) : crypto.createCipheriv("aes-256-ecb", key, null)
  cipher.setAutoPadding(false)
  const head = cipher.update(data)
  const tail = cipher.final()
  return tail.length === 0 ? head : Buffer.concat([head, tail])
}
/** XTS of \`input\` (a view the worker may overwrite) into a buffer of the worker's own, handed back. */
const run = (job, input) => {
  const units = Math.ceil(input.length / job.unitBytes)
  const seedBytes = Buffer.alloc(units * 16)
  for (let u = 0; u < units; u++) {
    const index = job.firstUnit + u
    seedBytes.writeUInt32LE(index >>> 0, u * 16)
    seedBytes.writeUInt32LE(Math.floor(index / 0x100000000), u * 16 + 4)
  }
  const seeds = new Int32Array(units * 4)
  new Uint8Array(seeds.buffer).set(ecb(false, job.key.subarray(32, 64), seedBytes))
  const masked = new Int32Array(input.buffer, input.byteOffset, input.length / 4)
  maskRun(seeds, masked, masked, job.unitBytes / 4, masked.length)
  let out = ecb(job.decrypt, job.key.subarray(0, 32), input)
  if (out.byteOffset !== 0 || out.buffer.byteLength !== out.length) out = new Uint8Array(out)
  const words = new Int32Array(out.buffer, 0, out.length / 4)
  maskRun(seeds, words, words, job.unitBytes / 4, words.length)
  return out.buffer
}
parentPort.on("message", (job) => {
  let buffer
  try {
    buffer = run(job, job.shared ? new Uint8Array(job.shared, 0, job.length) : new Uint8Array(job.buffer))
  } catch {
    buffer = undefined
  }
  parentPort.postMessage({ id: job.id, buffer }, buffer ? [buffer] : [])
})
`

interface Job {
  readonly resolve: (result: Uint8Array | undefined) => void
  /** The shared slot the run's input was copied into, free again once the worker replied. */
  readonly slot: SharedArrayBuffer | undefined
}

/**
 * Shared input slots (`cryptWorkerSlotsMax` of `writeChunkBytesMax`, made on first use, then
 * reused): the event loop copies a run into warm memory instead of allocating a fresh buffer per
 * run, whose page faults and external-memory GCs cost it more than the copy (~1 ms per MiB here).
 * A run bigger than a slot, or when all are busy, goes in a transferred copy instead.
 */
const freeSlots: SharedArrayBuffer[] = []
let slotCount = 0
const takeSlot = (length: number): SharedArrayBuffer | undefined => {
  if (length > writeChunkBytesMax) return undefined
  const free = freeSlots.pop()
  if (free) return free
  if (slotCount >= cryptWorkerSlotsMax) return undefined
  slotCount++
  return new SharedArrayBuffer(writeChunkBytesMax)
}
const releaseSlot = (slot: SharedArrayBuffer | undefined) => void (slot && freeSlots.push(slot))

interface PoolWorker {
  readonly worker: Worker
  readonly jobs: Map<number, Job>
}

let workers: PoolWorker[] | undefined
let broken = false
let nextId = 0
const counts = { onWorkers: 0, inline: 0 }

/** Runs done on the threads and runs that fell back inline since the process started (tests, diagnostics). */
export const cryptWorkerCounts = (): { readonly onWorkers: number; readonly inline: number } => ({ ...counts })

/** Ends a worker's runs (they fall back inline) and stops using threads. */
const fail = (entry: PoolWorker) => {
  broken = true
  for (const job of entry.jobs.values()) {
    releaseSlot(job.slot)
    job.resolve(undefined)
  }
  entry.jobs.clear()
  workers = workers?.filter((other) => other !== entry)
  void entry.worker.terminate()
}

const start = (): PoolWorker => {
  const worker = new Worker(workerSource, { eval: true })
  const entry: PoolWorker = { worker, jobs: new Map() }
  worker.unref()
  worker.on("message", (reply: { id: number; buffer: ArrayBuffer | undefined }) => {
    const job = entry.jobs.get(reply.id)
    if (!job) return
    entry.jobs.delete(reply.id)
    releaseSlot(job.slot)
    if (entry.jobs.size === 0) worker.unref()
    job.resolve(reply.buffer ? new Uint8Array(reply.buffer) : undefined)
  })
  worker.on("error", () => fail(entry))
  worker.on("exit", () => fail(entry))
  return entry
}

const poolSize = (): number => {
  try {
    return Math.min(cryptWorkersMax, availableParallelism())
  } catch {
    return 1
  }
}

/** The least busy worker (starting the pool on first use), or undefined when threads are not to be used. */
const pick = (): PoolWorker | undefined => {
  if (broken) return undefined
  if (!workers) {
    try {
      workers = Array.from({ length: poolSize() }, start)
    } catch {
      broken = true
      return undefined
    }
  }
  let best: PoolWorker | undefined
  for (const entry of workers) if (!best || entry.jobs.size < best.jobs.size) best = entry
  return best
}

/** One run on a worker: its result, or undefined when the worker could not do it. */
const runOnWorker = (key: Uint8Array, decrypt: boolean, firstUnit: number, unitBytes: number, data: Uint8Array) =>
  Effect.callback<Uint8Array | undefined>((resume) => {
    const entry = pick()
    if (!entry) return resume(Effect.succeed(undefined))
    const id = nextId++
    const slot = takeSlot(data.length)
    const copy = slot ? new Uint8Array(slot, 0, data.length) : new Uint8Array(data.length)
    copy.set(data)
    entry.jobs.set(id, { resolve: (result) => resume(Effect.succeed(result)), slot })
    if (entry.jobs.size === 1) entry.worker.ref()
    try {
      const job = { id, decrypt, firstUnit, unitBytes, key, length: data.length }
      if (slot) entry.worker.postMessage({ ...job, shared: slot })
      else entry.worker.postMessage({ ...job, buffer: copy.buffer }, [copy.buffer as ArrayBuffer])
    } catch {
      entry.jobs.delete(id)
      releaseSlot(slot)
      if (entry.jobs.size === 0) entry.worker.unref()
      resume(Effect.succeed(undefined))
    }
  })

/** Whether this runtime can run the pool (Node: native XTS and worker threads; at least two cores, or it only adds hand-overs). */
export const cryptWorkersAvailable = (): boolean => poolSize() > 1

/** `inline`'s work on the pool's threads, for a 64-byte XTS key (the workers use node:crypto's aes-256-ecb). */
export const xtsBackground = (key: Uint8Array, inline: Pick<XtsCipher, "encrypt" | "decrypt">): XtsBackground => {
  const own = key.slice()
  const run = (decrypt: boolean) => (firstUnit: number, unitBytes: number, data: Uint8Array) =>
    Effect.map(runOnWorker(own, decrypt, firstUnit, unitBytes, data), (result) => {
      counts[result ? "onWorkers" : "inline"]++
      return result ?? (decrypt ? inline.decrypt : inline.encrypt)(firstUnit, unitBytes, data)
    })
  return { minBytes: cryptWorkerRunBytesMin, encrypt: run(false), decrypt: run(true) }
}
