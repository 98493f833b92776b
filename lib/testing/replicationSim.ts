/**
 * Deterministic simulation of one replicated volume (the VOPR idea, TigerBeetle).
 *
 * A master and two replicas run in one process on the simulated network, memory stores and
 * Effect's TestClock; every choice — workload, delays, resets, bit flips, partitions, nonces —
 * comes from one seed, so `SEED=n` replays a run exactly. Phase 1 (safety) runs a concurrent
 * workload of random and overlapping writes and flushes under faults; phase 2 (liveness) heals
 * the network and lets the volume quiesce. Checkers:
 *  - every acknowledged write is on every replica that was in sync when it was acknowledged
 *    (checked at the moment of the ack, against each store's apply log);
 *  - after quiescence every in-sync copy is byte-identical to the master;
 *  - the master's contents equal the replay of its apply log (no lost or torn write);
 *  - `verify`, run again and again during the workload and once after quiescence, never reports
 *    a differing region of a copy that stayed in sync (no false difference under writes in flight).
 *
 * With `encryption` (the volume labelled `storageos.com/encryption=true`, its key drawn from the
 * seed) the stores hold ciphertext: the ack checker decrypts what each store applied and looks
 * for the acknowledged bytes inside it (an unaligned write lands as whole 4 KiB units), and a
 * further checker fails the run if any store ever applied an acknowledged write's plaintext.
 */
import { Effect, Fiber, Layer, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { crc32c } from "../core/checksum.ts"
import { startNode } from "../node/node.ts"
import { Entropy, seededEntropy } from "../net/entropy.ts"
import { wrapStore, type BlockStore } from "../store/BlockStore.ts"
import { makeMemoryStore, type MemoryStore } from "../store/memory.ts"
import { Stores } from "../store/Stores.ts"
import type { FailureMode } from "../volume/labels.ts"
import { inlineXts, type CryptoPrimitives } from "../crypt/primitives.ts"
import { encryptionUnitBytes, makeVolumeCipher, type VolumeCipher } from "../crypt/volumeCipher.ts"
import { makeSimNetwork, mulberry32, type SimFaults, type SimRandom } from "./simNetwork.ts"

export interface ReplicationSimOptions {
  readonly seed: number
  readonly writers?: number
  readonly opsPerWriter?: number
  readonly failureMode?: FailureMode
  readonly sizeBytes?: number
  /** Virtual-time budget of the whole run; exceeding it is a liveness failure. */
  readonly virtualMsMax?: number
  /**
   * Grows the volume online to this size during the faulty workload (retried until it works), and
   * writers then address the grown volume; after quiescence every in-sync copy must have it.
   */
  readonly resizeToBytes?: number
  /** Run an encrypted volume with these primitives (lib/platform/nodeCrypto.ts `nodeCrypto()`). */
  readonly encryption?: CryptoPrimitives
}

export interface ReplicationSimResult {
  readonly seed: number
  readonly violations: ReadonlyArray<string>
  readonly acknowledgedWrites: number
  readonly failedWrites: number
  readonly flushes: number
  readonly resets: number
  readonly bitFlips: number
  readonly partitions: number
  readonly replicaStates: ReadonlyArray<string>
  /** The master's size at the end (the grown size after a resize). */
  readonly finalSizeBytes: number
  readonly virtualMs: number
  /** A fingerprint of the run's outcome; equal seeds must give equal traces. */
  readonly trace: string
}

/** The driver advances virtual time in steps of this size; TestClock wakes sleeps in time order within a step. */
const clockStepMs = Number(globalThis.process?.env?.SIM_CLOCK_STEP_MS ?? 10)

interface LogEntry {
  readonly offset: number
  readonly length: number
  readonly crc: number
}

/** A write a store applied, as stored and decrypted (encrypted runs): the acknowledged bytes must lie inside one decrypted, and in none as stored. */
interface PlainEntry {
  readonly offset: number
  readonly stored: Uint8Array
  readonly plain: Uint8Array
}

/** Stores that keep, per path, the log of applied writes (for the ack-time checker). */
const recordingStores = (cipher: VolumeCipher | undefined) => {
  const stores = new Map<string, MemoryStore>()
  const logs = new Map<string, Set<string>>()
  const plainLogs = new Map<string, PlainEntry[]>()
  const masterOrder = new Map<string, LogEntry[]>()
  const service = Stores.of({
    open: (path, sizeBytes) =>
      Effect.sync(() => {
        let store = stores.get(path)
        if (!store) {
          store = makeMemoryStore(sizeBytes, { name: path })
          stores.set(path, store)
          logs.set(path, new Set())
          plainLogs.set(path, [])
          masterOrder.set(path, [])
        }
        const inner = store
        const log = logs.get(path)!
        const plainLog = plainLogs.get(path)!
        const order = masterOrder.get(path)!
        const recorded: BlockStore = wrapStore(inner, {
          write: (offset, data) =>
            Effect.tap(inner.write(offset, data), () =>
              Effect.sync(() => {
                const crc = crc32c(data)
                log.add(`${offset}:${data.length}:${crc}`)
                order.push({ offset, length: data.length, crc })
                // Writes are whole units; a resync chunk may end at a region boundary inside none (then it is not a Write).
                if (cipher && offset % encryptionUnitBytes === 0 && data.length % 16 === 0) plainLog.push({ offset, stored: data.slice(), plain: cipher.decrypt(offset, data) })
              })),
        })
        return recorded
      }),
    remove: () => Effect.void,
  })
  /** Whether a write `path` applied holds `data` at `offset`, decrypted (or as stored: plaintext on the disk). */
  const holdsPlain = (path: string, offset: number, data: Uint8Array, crc: number, asStored = false) =>
    plainLogs.get(path)!.some((entry) => entry.offset <= offset && offset + data.length <= entry.offset + entry.plain.length &&
      crc32c((asStored ? entry.stored : entry.plain).subarray(offset - entry.offset, offset - entry.offset + data.length)) === crc)
  return { service, stores, logs, holdsPlain }
}

const faultsFor = (random: SimRandom): SimFaults => ({
  delayMinMs: 0,
  delayMaxMs: 1 + Math.floor(random.next() * 4),
  slowProbability: random.next() * 0.02,
  slowDelayMs: 50 + Math.floor(random.next() * 400),
  resetProbability: random.next() < 0.5 ? 0 : random.next() * 0.01,
  bitFlipProbability: random.next() < 0.7 ? 0 : random.next() * 0.002,
})

export const runReplicationSim = (options: ReplicationSimOptions): Promise<ReplicationSimResult> => {
  const seed = options.seed >>> 0
  const random = mulberry32(seed)
  const netRandom = mulberry32(seed ^ 0x5bd1e995)
  const keyRandom = mulberry32(seed ^ 0x7f4a7c15)
  const cipher = options.encryption ? makeVolumeCipher(inlineXts(options.encryption.xts(Uint8Array.from({ length: 64 }, () => Math.floor(keyRandom.next() * 256))))) : undefined
  const recorder = recordingStores(cipher)
  const sizeBytes = options.sizeBytes ?? 2 * 1024 * 1024
  const writers = options.writers ?? 4
  const opsPerWriter = options.opsPerWriter ?? 40
  const virtualMsMax = options.virtualMsMax ?? 120_000
  const violations: string[] = []
  let acknowledged = 0, failedWrites = 0, flushes = 0, partitions = 0
  const ackTimeoutMs = 1_000

  const scenario = Effect.gen(function* () {
    const network = yield* makeSimNetwork(netRandom, faultsFor(random))
    const secret = "simulated-cluster-secret"
    const nodeOptions = { secret, ackTimeoutMs, handshakeTimeoutMs: 500, reconnectBaseMs: 5, reconnectCeilingMs: 100 }
    const layer = network.layer
    const [n1, n2, n3] = yield* Effect.all([
      startNode({ ...nodeOptions, name: "n1", address: { host: "127.0.0.1" }, dataDir: "/sim/n1" }),
      startNode({ ...nodeOptions, name: "n2", address: { host: "127.0.0.2" }, dataDir: "/sim/n2" }),
      startNode({ ...nodeOptions, name: "n3", address: { host: "127.0.0.3" }, dataDir: "/sim/n3" }),
    ]).pipe(Effect.provide(layer))
    const volumeName = "sim/vol"
    yield* n2.hostReplica(volumeName, sizeBytes)
    yield* n3.hostReplica(volumeName, sizeBytes)
    const volume = yield* n1.openVolume({
      volume: volumeName, sizeBytes,
      labels: { "storageos.com/replicas": "2", "storageos.com/failure.mode": options.failureMode ?? "soft", ...(cipher ? { "storageos.com/encryption": "true" } : {}) },
      replicas: [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }],
      ...(cipher ? { cipher } : {}),
    })
    const replicaPaths = [n2.storePath(volumeName), n3.storePath(volumeName)]
    const masterPath = n1.storePath(volumeName)

    const holds = (path: string, key: string, offset: number, data: Uint8Array, crc: number) => {
      if (!cipher) return recorder.logs.get(path)!.has(key)
      if (recorder.logs.get(path)!.has(key) || recorder.holdsPlain(path, offset, data, crc, true)) violations.push(`the plaintext of ${data.length} bytes at ${offset} reached the store ${path} of an encrypted volume`)
      return recorder.holdsPlain(path, offset, data, crc)
    }
    const checkAck = (key: string, what: string, offset: number, data: Uint8Array, crc: number) => {
      if (!holds(masterPath, key, offset, data, crc)) violations.push(`${what}: acknowledged but not on the master`)
      volume.links().forEach((link, index) => {
        const state = link.state()
        if (link.inSync() && !holds(replicaPaths[index]!, key, offset, data, crc)) {
          violations.push(`${what}: acknowledged while replica ${link.target.node} was ${state}, but not on it`)
        }
      })
    }

    const writer = (id: number) =>
      Effect.gen(function* () {
        for (let op = 0; op < opsPerWriter; op++) {
          const roll = random.next()
          if (roll < 0.1) {
            const result = yield* Effect.result(volume.flush)
            if (result._tag === "Success") flushes++
            continue
          }
          const hot = random.next() < 0.3
          const length = 1 + Math.floor(random.next() * (random.next() < 0.8 ? 8192 : 131072))
          const span = options.resizeToBytes === undefined ? sizeBytes : volume.sizeBytes
          const offset = hot ? Math.floor(random.next() * 65536) : Math.floor(random.next() * (span - length))
          const data = new Uint8Array(length)
          for (let i = 0; i < length; i += 4) {
            const word = (random.next() * 4294967296) >>> 0
            data[i] = word & 0xff
            if (i + 1 < length) data[i + 1] = (word >>> 8) & 0xff
            if (i + 2 < length) data[i + 2] = (word >>> 16) & 0xff
            if (i + 3 < length) data[i + 3] = word >>> 24
          }
          const crc = crc32c(data)
          const key = `${offset}:${length}:${crc}`
          const result = yield* Effect.result(volume.write(offset, data))
          if (result._tag === "Success") {
            acknowledged++
            checkAck(key, `writer ${id} op ${op} (${length} bytes at ${offset})`, offset, data, crc)
          } else failedWrites++
          if (random.next() < 0.2) yield* Effect.sleep(Math.floor(random.next() * 20))
        }
      })

    const chaos = Effect.gen(function* () {
      for (let round = 0; round < 6; round++) {
        yield* Effect.sleep(100 + Math.floor(random.next() * 400))
        const roll = random.next()
        const target = random.next() < 0.5 ? "127.0.0.2" : "127.0.0.3"
        if (roll < 0.15) {
          partitions++
          network.isolate(target)
          yield* Effect.sleep(random.next() < 0.5 ? 200 : ackTimeoutMs * 2)
          network.healAll()
        } else if (roll < 0.3) {
          partitions++
          network.block("127.0.0.1", target)
          yield* Effect.sleep(Math.floor(random.next() * 600))
          network.healAll()
        } else if (roll < 0.45) network.resetHost(target)
      }
    })

    const verifyOnce = (when: string) =>
      Effect.map(Effect.result(volume.verify({ regionBytes: 64 * 1024 })), (result) => {
        if (result._tag === "Failure" || result.success.differencesFound === 0) return
        const first = result.success.differences[0]!
        violations.push(`verify ${when} reported ${result.success.differencesFound} differing regions (first: ${first.node} at ${first.offset})`)
      })
    const verifier = Effect.forever(Effect.andThen(Effect.sleep(50), verifyOnce("during the workload")))
    // The resize: at a fixed time, retried while the failure mode refuses IO (no draw from `random`).
    const resizeTo = options.resizeToBytes
    const resizeOnce = resizeTo === undefined ? Effect.void : Effect.ignore(volume.resize(resizeTo))
    const resizer = resizeTo === undefined ? Effect.void : Effect.gen(function* () {
      yield* Effect.sleep(150)
      while (volume.sizeBytes < resizeTo) yield* Effect.andThen(resizeOnce, Effect.sleep(50))
    })
    const resizerFiber = yield* Effect.forkChild(resizer)
    const chaosFiber = yield* Effect.forkChild(chaos)
    const verifierFiber = yield* Effect.forkChild(verifier)
    yield* Effect.forEach(Array.from({ length: writers }, (_, i) => i), writer, { concurrency: "unbounded", discard: true })
    yield* Fiber.interrupt(chaosFiber)
    yield* Fiber.interrupt(verifierFiber)
    yield* Fiber.interrupt(resizerFiber)
    // Liveness phase: heal, calm the network, let everything drain.
    network.healAll()
    network.setFaults({ delayMinMs: 0, delayMaxMs: 1, slowProbability: 0, slowDelayMs: 0, resetProbability: 0, bitFlipProbability: 0 })
    yield* Effect.result(volume.flush)
    yield* Effect.sleep(ackTimeoutMs * 3)
    yield* Effect.result(volume.flush)
    if (resizeTo !== undefined) {
      yield* resizeOnce
      if (volume.sizeBytes !== resizeTo) violations.push(`the volume is ${volume.sizeBytes} bytes after quiescence, not the ${resizeTo} it was resized to`)
    }

    yield* verifyOnce("after quiescence")
    const master = recorder.stores.get(masterPath)!
    const states = volume.links().map((link) => `${link.target.node}:${link.state()}`)
    volume.links().forEach((link, index) => {
      if (!link.inSync()) return
      const replica = recorder.stores.get(replicaPaths[index]!)!
      if (link.pendingCount() > 0) violations.push(`replica ${link.target.node} still has ${link.pendingCount()} frames pending after quiescence`)
      if (replica.digest() !== master.digest()) violations.push(`replica ${link.target.node} is in sync but differs from the master after quiescence`)
    })
    const status = yield* volume.status
    return { states, digest: master.digest(), stats: network.stats, health: status.health, sizeBytes: volume.sizeBytes }
  })

  const program = Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.scoped(scenario))
    let virtualMs = 0
    while (fiber.pollUnsafe() === undefined && virtualMs < virtualMsMax) {
      yield* TestClock.adjust(clockStepMs)
      virtualMs += clockStepMs
    }
    const exit = fiber.pollUnsafe()
    if (exit === undefined) {
      yield* Fiber.interrupt(fiber)
      violations.push(`the run did not finish within ${virtualMsMax} ms of virtual time (liveness)`)
      return { virtualMs, outcome: undefined }
    }
    if (exit._tag === "Failure") {
      violations.push(`the scenario failed: ${String(exit.cause)}`)
      return { virtualMs, outcome: undefined }
    }
    return { virtualMs, outcome: exit.value }
  })

  const layers = Layer.mergeAll(TestClock.layer(), Layer.succeed(Scheduler.Scheduler, new Scheduler.MixedScheduler("sync")), Layer.succeed(Stores, recorder.service), Layer.succeed(Entropy, seededEntropy(seed ^ 0x2545f491)))
  return Effect.runPromise(program.pipe(Effect.provide(layers))).then(({ virtualMs, outcome }) => ({
    seed,
    violations,
    acknowledgedWrites: acknowledged,
    failedWrites,
    flushes,
    resets: outcome?.stats.resets ?? 0,
    bitFlips: outcome?.stats.bitFlips ?? 0,
    partitions,
    replicaStates: outcome?.states ?? [],
    finalSizeBytes: outcome?.sizeBytes ?? 0,
    virtualMs,
    trace: `${outcome?.digest ?? "-"}|${acknowledged}|${failedWrites}|${flushes}|${outcome?.states.join(",") ?? "-"}|${virtualMs}`,
  }))
}
