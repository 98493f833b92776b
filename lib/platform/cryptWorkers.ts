/**
 * A small pool of worker threads (node:worker_threads) that run native AES-256-XTS over runs of
 * data units: `XtsCipher.background` (lib/crypt/primitives.ts) on Node.
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
 * The worker's code is a string (`eval`): it needs nothing but node:crypto, and so works the
 * same from the TypeScript sources and from a package.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import { cryptWorkersMax, cryptWorkerRunBytesMin } from "../core/limits.ts"
import type { XtsBackground, XtsCipher } from "../crypt/primitives.ts"

const workerSource = `
const { parentPort } = require("node:worker_threads")
const crypto = require("node:crypto")
const tweak = Buffer.alloc(16)
parentPort.on("message", (job) => {
  const data = new Uint8Array(job.buffer)
  const key = Buffer.from(job.key)
  let ok = true
  try {
    for (let at = 0, unit = job.firstUnit; at < data.length; at += job.unitBytes, unit++) {
      tweak.writeUInt32LE(unit >>> 0, 0)
      tweak.writeUInt32LE(Math.floor(unit / 0x100000000), 4)
      const cipher = job.decrypt ? crypto.createDecipheriv("aes-256-xts", key, tweak) : crypto.createCipheriv("aes-256-xts", key, tweak)
      data.set(cipher.update(data.subarray(at, Math.min(data.length, at + job.unitBytes))), at)
    }
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

/** `inline`'s work on the pool's threads, for a 64-byte XTS key (the workers use node:crypto's native aes-256-xts). */
export const xtsBackground = (key: Uint8Array, inline: Pick<XtsCipher, "encrypt" | "decrypt">): XtsBackground => {
  const own = key.slice()
  const run = (decrypt: boolean) => (firstUnit: number, unitBytes: number, data: Uint8Array) =>
    Effect.map(runOnWorker(own, decrypt, firstUnit, unitBytes, data), (result) => result ?? (decrypt ? inline.decrypt : inline.encrypt)(firstUnit, unitBytes, data))
  return { minBytes: cryptWorkerRunBytesMin, encrypt: run(false), decrypt: run(true) }
}
