/**
 * A small pool of worker threads (node:worker_threads) that run AES-256-XTS over runs of data
 * units: `XtsCipher.background` (lib/crypt/primitives.ts) on Node.
 *
 * Why: node:crypto's XTS needs one cipher object per 4 KiB unit (the tweak is the IV), so a
 * 1 MiB run costs ~1.5 ms of CPU; on the event loop that time is taken from the node's
 * synchronous file writes and its sockets (TLS included), and the two serialise. On worker threads
 * the cipher overlaps them, and two runs go on two cores.
 *
 * How: the run's bytes are copied into a buffer of their own (the caller's buffer is never shared
 * with another thread), that buffer and the key go to the least busy worker, which encrypts it in
 * place and hands it back (transferred, not copied). Workers are started on first use and do not
 * keep the process alive while idle. A worker that cannot be started or dies fails its runs over
 * to the inline cipher (same bytes), and the pool stops using threads: never an error.
 *
 * The worker's code is a string (`eval`): it needs nothing but node:crypto and one pure function's
 * source, and so works the same from the TypeScript sources, from a package and from a bundle.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import { cryptWorkersMax, cryptWorkerRunBytesMin } from "../core/limits.ts"
import type { XtsBackground, XtsCipher } from "../crypt/primitives.ts"
import { maskRun } from "../crypt/xts.ts"

/**
 * The worker: XTS over native aes-256-ecb, as lib/crypt/xts.ts does it (its `maskRun`, by source
 * text), in place in the transferred buffer: ~40 % less CPU than a native XTS cipher object per
 * unit. The unit tests compare its bytes with the inline cipher's.
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
const run = (job) => {
  const data = new Uint8Array(job.buffer)
  const units = Math.ceil(data.length / job.unitBytes)
  const seedBytes = Buffer.alloc(units * 16)
  for (let u = 0; u < units; u++) {
    const index = job.firstUnit + u
    seedBytes.writeUInt32LE(index >>> 0, u * 16)
    seedBytes.writeUInt32LE(Math.floor(index / 0x100000000), u * 16 + 4)
  }
  const seeds = new Int32Array(units * 4)
  new Uint8Array(seeds.buffer).set(ecb(false, job.key.subarray(32, 64), seedBytes))
  const words = new Int32Array(job.buffer)
  maskRun(seeds, words, words, job.unitBytes / 4, words.length)
  data.set(ecb(job.decrypt, job.key.subarray(0, 32), data))
  maskRun(seeds, words, words, job.unitBytes / 4, words.length)
}
parentPort.on("message", (job) => {
  let ok = true
  try {
    run(job)
  } catch {
    ok = false
  }
  parentPort.postMessage({ id: job.id, ok, buffer: job.buffer }, [job.buffer])
})
`

interface Job {
  readonly resolve: (result: Uint8Array | undefined) => void
}

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
  for (const job of entry.jobs.values()) job.resolve(undefined)
  entry.jobs.clear()
  workers = workers?.filter((other) => other !== entry)
  void entry.worker.terminate()
}

const start = (): PoolWorker => {
  const worker = new Worker(workerSource, { eval: true })
  const entry: PoolWorker = { worker, jobs: new Map() }
  worker.unref()
  worker.on("message", (reply: { id: number; ok: boolean; buffer: ArrayBuffer }) => {
    const job = entry.jobs.get(reply.id)
    if (!job) return
    entry.jobs.delete(reply.id)
    if (entry.jobs.size === 0) worker.unref()
    job.resolve(reply.ok ? new Uint8Array(reply.buffer) : undefined)
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
    const copy = new Uint8Array(data.length)
    copy.set(data)
    entry.jobs.set(id, { resolve: (result) => resume(Effect.succeed(result)) })
    if (entry.jobs.size === 1) entry.worker.ref()
    try {
      entry.worker.postMessage({ id, decrypt, firstUnit, unitBytes, key, buffer: copy.buffer }, [copy.buffer])
    } catch {
      entry.jobs.delete(id)
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
