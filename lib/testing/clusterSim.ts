/**
 * Deterministic simulation of a whole cluster: 5 nodes, 3 volumes, the embedded control store,
 * the simulated network and memory stores, all under TestClock and one seed.
 *
 * Safety phase: clients write numbered blocks to every volume while the seed crashes and
 * restarts nodes, partitions them (from peers and from the control store), slows links, resets
 * connections and flips bits. Liveness phase: faults stop, crashed nodes restart, and the cluster
 * must converge to `healthy` with byte-identical copies within a bounded virtual time.
 * Checkers:
 *  - no acknowledged write lost: every block reads back as its last acknowledged write (or a
 *    later write that was in flight when the writer gave up on it);
 *  - never two masters acknowledging at once: per volume, acknowledgements never go back to an
 *    older epoch once a newer one acknowledged;
 *  - only complete copies promoted: at every promotion the promoted copy already holds every
 *    acknowledged write;
 *  - convergence: healthy, one master, copies byte-identical, within the bound;
 *  - verify: the master's online verify (`ClusterNode.verifyVolume`) finds no differing region.
 */
import { Effect, Exit, Fiber, Layer, Random, Scheduler, Scope } from "effect"
import { TestClock } from "effect/testing"
import { ControlStore } from "../control/ControlStore.ts"
import { gatedControlStore } from "../control/gated.ts"
import { layerMemory } from "../control/embedded.ts"
import { startClusterNode, type ClusterNode } from "../cluster/clusterNode.ts"
import { Entropy, seededEntropy } from "../net/entropy.ts"
import { makeMemoryStores } from "../store/Stores.ts"
import type { FailureMode } from "../volume/labels.ts"
import { makeSimNetwork, mulberry32, type SimFaults } from "./simNetwork.ts"

export interface ClusterSimOptions {
  readonly seed: number
  /** Virtual milliseconds of the fault phase. */
  readonly faultMs?: number
  /** Virtual milliseconds the cluster gets to converge afterwards. */
  readonly convergeMs?: number
}

export interface ClusterSimResult {
  readonly seed: number
  readonly violations: ReadonlyArray<string>
  readonly acknowledged: number
  readonly refused: number
  readonly crashes: number
  readonly partitions: number
  readonly promotions: number
  readonly virtualMs: number
  readonly trace: string
}

const nodeCount = 5
const blockBytes = 4096
const volumeBytes = 1024 * 1024
const blocksPerVolume = volumeBytes / blockBytes
const hostOf = (i: number) => `127.0.0.${i + 1}`
const nameOf = (i: number) => `n${i + 1}`

const pattern = (seed: number, volumeIndex: number, writeIndex: number): Uint8Array => {
  const random = mulberry32((seed * 131 + volumeIndex * 7919 + writeIndex * 104729) >>> 0)
  const out = new Uint8Array(blockBytes)
  for (let i = 0; i < blockBytes; i += 4) {
    const word = (random.next() * 4294967296) >>> 0
    out[i] = word & 0xff
    out[i + 1] = (word >>> 8) & 0xff
    out[i + 2] = (word >>> 16) & 0xff
    out[i + 3] = word >>> 24
  }
  return out
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])

export const runClusterSim = (options: ClusterSimOptions): Promise<ClusterSimResult> => {
  const seed = options.seed >>> 0
  const random = mulberry32(seed)
  const faultMs = options.faultMs ?? 6_000
  const convergeMs = options.convergeMs ?? 45_000
  const violations: string[] = []
  const stores = makeMemoryStores()
  let acknowledged = 0, refused = 0, crashes = 0, partitions = 0, promotions = 0
  const modes: FailureMode[] = ["soft", "hard", "alwayson"]
  const volumes = [0, 1, 2].map((i) => ({
    name: `sim/v${i}`,
    mode: modes[(seed + i) % 3]!,
    replicas: i === 2 ? 1 : 2,
    /** Per block: the data of the last acknowledged write, and of writes issued after it. */
    acked: new Map<number, Uint8Array>(),
    inflight: new Map<number, Uint8Array[]>(),
    lastAckEpoch: 0,
  }))

  const scenario = Effect.gen(function* () {
    const faults: SimFaults = { delayMinMs: 0, delayMaxMs: 2, slowProbability: random.next() * 0.01, slowDelayMs: 300, resetProbability: random.next() * 0.002, bitFlipProbability: random.next() < 0.5 ? 0 : 0.0005 }
    const network = yield* makeSimNetwork(mulberry32(seed ^ 0x5bd1e995), faults)
    const control = yield* ControlStore
    const cutFromStore = new Set<number>()
    const scopes: Array<Scope.Closeable | undefined> = []
    const nodes: Array<ClusterNode | undefined> = []

    const start = (i: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const services = Layer.mergeAll(network.layer, stores.layer, Layer.succeed(ControlStore, ControlStore.of(gatedControlStore(control, () => cutFromStore.has(i), () => "control store unreachable (simulated partition)"))))
        const node = yield* startClusterNode({
          name: nameOf(i), address: { host: hostOf(i) }, dataDir: `/sim/${nameOf(i)}`, secret: "cluster-simulation-secret",
          ackTimeoutMs: 1000, handshakeTimeoutMs: 500, reconnectBaseMs: 5, reconnectCeilingMs: 100,
          leaseTtlMs: 1000, tickMs: 200, graceMs: 3000, pauseMaxMs: 4000, inProcessShortcut: false,
          onWriteAcknowledged: (volumeName, epoch) => {
            const volume = volumes.find((v) => v.name === volumeName)!
            if (epoch < volume.lastAckEpoch) violations.push(`${volumeName}: a master at epoch ${epoch} acknowledged a write after epoch ${volume.lastAckEpoch} had (two masters)`)
            volume.lastAckEpoch = Math.max(volume.lastAckEpoch, epoch)
          },
          onClusterEvent: (event) => {
            if (globalThis.process?.env?.DEBUG_SIM) console.error(event.atMs, event.node, event.kind, event.message)
            const promoted = /promoted (n\d+) \(epoch (\d+)\)/.exec(event.message)
            if (!promoted || event.kind !== "controller-action") return
            promotions++
            const volume = volumes.find((v) => v.name === event.volume)!
            const store = stores.byPath.get(`/sim/${promoted[1]}/copies/${volume.name}.img`)
            if (!store) return void violations.push(`${volume.name}: promoted ${promoted[1]} has no copy`)
            const contents = store.snapshot()
            for (const [block, data] of volume.acked) {
              const at = contents.subarray(block * blockBytes, (block + 1) * blockBytes)
              const later = volume.inflight.get(block) ?? []
              if (!sameBytes(at, data) && !later.some((d) => sameBytes(at, d))) {
                violations.push(`${volume.name}: promoted ${promoted[1]} at epoch ${promoted[2]} lacks acknowledged block ${block}`)
                break
              }
            }
          },
        }).pipe(Scope.provide(scope), Effect.provide(services))
        scopes[i] = scope
        nodes[i] = node
      })

    const crash = (i: number) =>
      Effect.gen(function* () {
        const node = nodes[i]
        if (!node) return
        crashes++
        node.crash()
        nodes[i] = undefined
        network.resetHost(hostOf(i))
        yield* Scope.close(scopes[i]!, Exit.void)
        network.resetHost(hostOf(i))
      })

    for (let i = 0; i < nodeCount; i++) yield* start(i)
    const n1 = nodes[0]!
    for (const volume of volumes) {
      yield* n1.createVolume({ volume: volume.name, sizeBytes: volumeBytes, labels: { "storageos.com/replicas": String(volume.replicas), "storageos.com/failure.mode": volume.mode } })
    }
    for (const volume of volumes) yield* Effect.ignore(n1.waitHealthy(volume.name, 20_000))

    let running = true
    const writer = (volumeIndex: number) =>
      Effect.gen(function* () {
        const volume = volumes[volumeIndex]!
        let writeIndex = 0
        while (running) {
          const clientIndex = [0, 1, 2, 3, 4].find((i) => nodes[(i + volumeIndex) % nodeCount] !== undefined)
          const client = clientIndex === undefined ? undefined : nodes[(clientIndex + volumeIndex) % nodeCount]!
          if (!client) {
            yield* Effect.sleep(100)
            continue
          }
          const handle = yield* Effect.result(client.openVolume(volume.name))
          if (handle._tag === "Failure") {
            yield* Effect.sleep(100)
            continue
          }
          for (let op = 0; op < 20 && running; op++) {
            const block = Math.floor(random.next() * blocksPerVolume)
            const data = pattern(seed, volumeIndex, writeIndex++)
            const later = volume.inflight.get(block) ?? []
            later.push(data)
            volume.inflight.set(block, later)
            const result = yield* Effect.result(handle.success.write(block * blockBytes, data))
            if (result._tag === "Success") {
              acknowledged++
              volume.acked.set(block, data)
              volume.inflight.set(block, [])
            } else {
              refused++
              yield* Effect.sleep(50)
            }
            yield* Effect.sleep(5 + Math.floor(random.next() * 20))
          }
        }
      }).pipe(Effect.scoped)

    const chaos = Effect.gen(function* () {
      while (running) {
        yield* Effect.sleep(400 + Math.floor(random.next() * 1200))
        const target = Math.floor(random.next() * nodeCount)
        const roll = random.next()
        if (roll < 0.35 && nodes[target]) {
          yield* crash(target)
          yield* Effect.sleep(random.next() < 0.5 ? 500 : 4000)
          yield* start(target)
        } else if (roll < 0.55) {
          partitions++
          network.isolate(hostOf(target))
          cutFromStore.add(target)
          yield* Effect.sleep(random.next() < 0.5 ? 600 : 2500)
          network.healAll()
          cutFromStore.clear()
        } else if (roll < 0.7) {
          partitions++
          const other = (target + 1 + Math.floor(random.next() * (nodeCount - 1))) % nodeCount
          network.block(hostOf(target), hostOf(other))
          yield* Effect.sleep(Math.floor(random.next() * 1500))
          network.healAll()
        } else if (roll < 0.8) network.resetHost(hostOf(target))
      }
    })

    const writers = yield* Effect.forkChild(Effect.forEach([0, 1, 2], writer, { concurrency: "unbounded", discard: true }))
    const chaosFiber = yield* Effect.forkChild(chaos)
    yield* Effect.sleep(faultMs)
    running = false
    yield* Fiber.join(writers)
    yield* Fiber.interrupt(chaosFiber)
    // Liveness: heal, restart, converge.
    network.healAll()
    cutFromStore.clear()
    network.setFaults({ delayMinMs: 0, delayMaxMs: 1, slowProbability: 0, slowDelayMs: 0, resetProbability: 0, bitFlipProbability: 0 })
    for (let i = 0; i < nodeCount; i++) if (!nodes[i]) yield* start(i)
    const anyNode = nodes.find((n) => n !== undefined)!
    for (const volume of volumes) {
      const healthy = yield* Effect.result(anyNode.waitHealthy(volume.name, convergeMs))
      if (healthy._tag === "Failure") violations.push(`${volume.name} did not converge to healthy within ${convergeMs} ms: ${healthy.failure.message}`)
    }
    // Quiesce: a last flush through a handle makes every in-sync copy hold every write.
    for (const volume of volumes) {
      const check = yield* Effect.result(Effect.scoped(Effect.gen(function* () {
        const handle = yield* anyNode.openVolume(volume.name)
        yield* handle.flush
        for (let block = 0; block < blocksPerVolume; block++) {
          const data = volume.acked.get(block)
          if (!data) continue
          const at = yield* handle.read(block * blockBytes, blockBytes)
          const later = volume.inflight.get(block) ?? []
          if (!sameBytes(at, data) && !later.some((d) => sameBytes(at, d))) {
            violations.push(`${volume.name}: acknowledged block ${block} was lost`)
            return
          }
        }
      })))
      if (check._tag === "Failure") violations.push(`${volume.name}: final read failed: ${String((check.failure as { message?: string }).message)}`)
      const info = yield* Effect.result(anyNode.inspectVolume(volume.name))
      if (info._tag === "Failure" || info.success.master === undefined) continue
      const master = stores.byPath.get(`/sim/${info.success.master}/copies/${volume.name}.img`)!
      for (const replica of info.success.replicas) {
        const copy = stores.byPath.get(`/sim/${replica.node}/copies/${volume.name}.img`)
        if (replica.state === "in-sync" && copy && copy.digest() !== master.digest()) {
          violations.push(`${volume.name}: replica on ${replica.node} is in sync but differs from master ${info.success.master}`)
        }
      }
      // One more checker, through the product: an online verify from the master finds no differing region.
      const masterNode = nodes.find((n) => n?.name === info.success.master)
      const verified = masterNode ? yield* Effect.result(masterNode.verifyVolume(volume.name, { regionBytes: 64 * 1024 })) : undefined
      if (verified?._tag === "Failure") violations.push(`${volume.name}: verify failed: ${String((verified.failure as { message?: string }).message)}`)
      else if (verified && verified.success.differingRegions > 0) {
        const where = verified.success.differences.slice(0, 3).map((d) => `${d.node}@${d.offset}`).join(", ")
        violations.push(`${volume.name}: verify found ${verified.success.differingRegions} regions differing from master ${info.success.master} (${where})`)
      }
    }
    const digests = volumes.map((v) => v.name).join(",")
    for (const scope of scopes) if (scope) yield* Scope.close(scope, Exit.void)
    return digests
  })

  const program = Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.scoped(scenario))
    let virtualMs = 0
    const limitMs = faultMs + convergeMs + 60_000
    while (fiber.pollUnsafe() === undefined && virtualMs < limitMs) {
      yield* TestClock.adjust(10)
      virtualMs += 10
    }
    const exit = fiber.pollUnsafe()
    if (exit === undefined) {
      yield* Fiber.interrupt(fiber)
      violations.push(`the run did not finish within ${limitMs} ms of virtual time`)
    } else if (exit._tag === "Failure") violations.push(`the scenario failed: ${String(exit.cause).slice(0, 500)}`)
    return virtualMs
  })

  const layers = Layer.mergeAll(
    TestClock.layer(),
    Layer.succeed(Scheduler.Scheduler, new Scheduler.MixedScheduler("sync")),
    Layer.succeed(Entropy, seededEntropy(seed ^ 0x2545f491)),
  )
  const withStore = Layer.provideMerge(layerMemory, layers)
  return Effect.runPromise(program.pipe(Random.withSeed(seed), Effect.provide(withStore))).then((virtualMs) => ({
    seed, violations, acknowledged, refused, crashes, partitions, promotions, virtualMs,
    trace: `${acknowledged}|${refused}|${crashes}|${partitions}|${promotions}|${virtualMs}`,
  }))
}

