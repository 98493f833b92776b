/**
 * The cluster simulator's applications: one writer per volume, keeping up to `depth` (1..32)
 * writes in flight through a volume handle on some running node, with occasional flushes.
 *
 * Writes are mostly one 4 KiB block, sometimes a run of blocks, now and then more than one
 * write chunk (so the handle splits it), anywhere in the volume (big sparse volumes: zero
 * skipping and long resyncs). Every lane reuses its buffer the way applications do: right after a
 * write returns — acknowledged or not — the lane scribbles over it, and its next one-block write
 * passes the very same buffer object again. A resend that still carried the caller's buffer would
 * put those scribbles on a replica.
 */
import { Effect } from "effect"
import { writeChunkBytesMax } from "../core/limits.ts"
import { mulberry32 } from "../core/seeded.ts"
import type { VolumeClient } from "../cluster/volumeClient.ts"
import { blockBytes } from "./clusterModel.ts"
import { nodeCount, type SimNodeSlot, type SimVolume, type SimWorld } from "./clusterWorld.ts"

/** Operations one lane issues per handle before the writer picks a node again. */
const opsPerBatch = 20
/** The largest write: a little over two write chunks (split by the handle). */
const writeBlocksMax = (2 * writeChunkBytesMax) / blockBytes + 3
const scribble = 0x5a

/**
 * The bytes of write `writeIndex` to a block: distinct for every (seed, volume, write), and every
 * 512-byte sector of it distinct from every sector of another write (so a torn write is seen
 * sector by sector). Cheap: a seeded start, then a stride; no 4-byte sequence repeats in a block.
 */
export const pattern = (seed: number, volumeIndex: number, writeIndex: number): Uint8Array => {
  const start = mulberry32((seed * 131 + volumeIndex * 7919 + writeIndex * 104729) >>> 0).nextUint32()
  const out = new Uint8Array(blockBytes)
  const words = new Uint32Array(out.buffer)
  for (let i = 0; i < words.length; i++) words[i] = (start + Math.imul(i, 0x9e3779b1)) >>> 0
  return out
}

export interface WorkloadShape {
  /** Probability that an operation is a flush. */
  readonly flushProbability: number
  /** Probability that a write covers a run of blocks, and that such a run exceeds a write chunk. */
  readonly runProbability: number
  readonly hugeProbability: number
}

interface Lane {
  /** The one-block buffer, passed again and again (same object). */
  readonly block: Uint8Array
  /** Room for the largest write. */
  readonly large: Uint8Array
}

const makeLane = (): Lane => ({ block: new Uint8Array(blockBytes), large: new Uint8Array(writeBlocksMax * blockBytes) })

/** A free run of blocks to write, or undefined when the draws keep hitting blocks in flight. */
const chooseRun = (world: SimWorld, volume: SimVolume, shape: WorkloadShape): { first: number; count: number } | undefined => {
  const random = world.workloadRandom
  const blockCount = volume.sizeBytes / blockBytes
  for (let attempt = 0; attempt < 5; attempt++) {
    const huge = random.next() < shape.hugeProbability
    const run = huge || random.next() < shape.runProbability
    const wanted = huge ? writeChunkBytesMax / blockBytes + 1 + Math.floor(random.next() * (writeBlocksMax - writeChunkBytesMax / blockBytes)) : run ? 2 + Math.floor(random.next() * 7) : 1
    const count = Math.min(wanted, blockCount)
    const first = Math.floor(random.next() * (blockCount - count + 1))
    let free = true
    for (let b = first; b < first + count && free; b++) free = !volume.busy.has(b)
    if (free) return { first, count }
  }
  return undefined
}

/** One write through `handle`, told to the model before and after. */
const writeOnce = (world: SimWorld, volume: SimVolume, handle: VolumeClient, lane: Lane, shape: WorkloadShape, next: () => number) =>
  Effect.gen(function* () {
    const run = chooseRun(world, volume, shape)
    if (!run) return
    const model = volume.model
    const buffer = run.count === 1 ? lane.block : lane.large.subarray(0, run.count * blockBytes)
    const parts: Uint8Array[] = []
    for (let i = 0; i < run.count; i++) {
      const data = pattern(world.seed, volume.index, next())
      parts.push(data)
      buffer.set(data, i * blockBytes)
      volume.busy.add(run.first + i)
      model.issue(run.first + i, data)
    }
    const result = yield* Effect.result(handle.write(run.first * blockBytes, buffer))
    // The application reuses its buffer at once, whatever the outcome.
    buffer.fill(scribble)
    for (let i = 0; i < run.count; i++) {
      volume.busy.delete(run.first + i)
      if (result._tag === "Success") model.acknowledge(run.first + i, parts[i]!)
    }
    if (result._tag === "Success") world.counters.acknowledged += run.count
    else {
      world.counters.refused++
      yield* Effect.sleep(50)
    }
  })

const flushOnce = (world: SimWorld, volume: SimVolume, handle: VolumeClient) =>
  Effect.gen(function* () {
    const model = volume.model
    const covers = model.flushIssued()
    const result = yield* Effect.result(handle.flush)
    if (result._tag === "Success") model.flushSucceeded(covers)
    else world.counters.refused++
  })

const laneBatch = (world: SimWorld, volume: SimVolume, handle: VolumeClient, lane: Lane, client: SimNodeSlot, shape: WorkloadShape, next: () => number) =>
  Effect.gen(function* () {
    for (let op = 0; op < opsPerBatch && world.running && !volume.suspended; op++) {
      // An application on a paused machine is paused too.
      yield* client.host.awaitRunning
      if (world.workloadRandom.next() < shape.flushProbability) yield* flushOnce(world, volume, handle)
      else yield* writeOnce(world, volume, handle, lane, shape, next)
      // Deep queues keep many writes in flight, not many more per second: a lane's pace slows with depth.
      yield* Effect.sleep(Math.ceil((5 + world.workloadRandom.next() * 20) * Math.max(1, volume.depth / 1.5)))
    }
  })

/** The node whose application writes next: the first running one, starting from the volume's own. */
const chooseClient = (world: SimWorld, volume: SimVolume): SimNodeSlot | undefined => {
  for (let i = 0; i < nodeCount; i++) {
    const slot = world.slots[(i + volume.index) % nodeCount]!
    if (slot.node && !slot.host.isPaused()) return slot
  }
  return undefined
}

/** The writer of one volume, until the run stops. */
export const writer = (world: SimWorld, volume: SimVolume, shape: WorkloadShape) =>
  Effect.gen(function* () {
    const lanes = Array.from({ length: volume.depth }, makeLane)
    let writeIndex = 0
    const next = () => writeIndex++
    while (world.running) {
      const client = volume.suspended ? undefined : chooseClient(world, volume)
      if (!client) {
        volume.idle = true
        yield* Effect.sleep(50)
        continue
      }
      volume.idle = false
      const batch = Effect.scoped(Effect.gen(function* () {
        const handle = yield* client.node!.openVolume(volume.name)
        yield* Effect.forEach(lanes, (lane) => laneBatch(world, volume, handle, lane, client, shape, next), { concurrency: "unbounded", discard: true })
      }))
      const done = yield* Effect.result(batch)
      volume.idle = true
      if (done._tag === "Failure") yield* Effect.sleep(100)
    }
    volume.idle = true
  })
