/**
 * A simulated network: the `Transport` contract in one process, every fault drawn from a seed.
 *
 * Each link direction is a FIFO pipe pumped by its own fiber: a chunk is delivered after a
 * random delay (never before the chunk sent ahead of it, as TCP), unless the link was reset or
 * the two hosts are partitioned — then it waits (a partition stalls a TCP stream; it does not
 * reorder it). Faults: random delays with occasional long ones, connection resets, bit flips
 * (which the frame checksums must catch), symmetric and one-way partitions, dead hosts, and
 * paused hosts (a stopped process: nothing reaches it or leaves it until it resumes, nothing is lost).
 * Time is Effect's Clock — the one the network was made with, not a caller's (a node's wall clock
 * may be stepped) — so under TestClock a run is exact and fast.
 */
import { Clock, Effect, Layer, Queue, Scope } from "effect"
import { formatAddress, type Address, type Link, NetError, Transport } from "../net/Transport.ts"

export interface SimRandom {
  /** Uniform in [0, 1). */
  readonly next: () => number
}

export { mulberry32 } from "../core/seeded.ts"

export interface SimFaults {
  /** Every chunk is delayed uniformly in [delayMinMs, delayMaxMs]. */
  readonly delayMinMs: number
  readonly delayMaxMs: number
  /** Probability that a chunk is delayed by `slowDelayMs` instead. */
  readonly slowProbability: number
  readonly slowDelayMs: number
  /** Probability that delivering a chunk resets the connection instead. */
  readonly resetProbability: number
  /** Probability that one bit of a delivered chunk is flipped. */
  readonly bitFlipProbability: number
}

export const calmFaults: SimFaults = { delayMinMs: 0, delayMaxMs: 0, slowProbability: 0, slowDelayMs: 0, resetProbability: 0, bitFlipProbability: 0 }

export interface SimNetwork {
  readonly transport: Transport["Service"]
  readonly layer: Layer.Layer<Transport>
  /** Traffic from `from` to `to` stalls (one-way); call twice for a symmetric partition. */
  readonly block: (from: string, to: string) => void
  readonly unblock: (from: string, to: string) => void
  /** Cuts `host` off from everyone, both ways. */
  readonly isolate: (host: string) => void
  readonly healAll: () => void
  /** Holds every chunk to or from `host` (and its new connections) until `resume`: a paused process. */
  readonly pause: (host: string) => void
  readonly resume: (host: string) => void
  /** Resets every open link of `host` (a crashed process's sockets). */
  readonly resetHost: (host: string) => void
  readonly setFaults: (faults: SimFaults) => void
  readonly stats: { delivered: number; resets: number; bitFlips: number; bytes: number }
}

interface Pipe {
  readonly queue: Queue.Queue<Uint8Array>
  receiver: ((chunk: Uint8Array) => void) | undefined
  readonly early: Uint8Array[]
}

interface SimLink extends Link {
  readonly closeNow: (reason: string) => void
}

export const makeSimNetwork = (random: SimRandom, initialFaults: SimFaults): Effect.Effect<SimNetwork, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    let faults = initialFaults
    const listeners = new Map<string, (link: Link) => void>()
    const blocked = new Set<string>()
    const isolated = new Set<string>()
    const paused = new Set<string>()
    const isHeld = (from: string, to: string) => paused.has(from) || paused.has(to)
    const links = new Set<{ a: SimLink; b: SimLink; hostA: string; hostB: string }>()
    const stats = { delivered: 0, resets: 0, bitFlips: 0, bytes: 0 }
    const isBlocked = (from: string, to: string) => isolated.has(from) || isolated.has(to) || blocked.has(`${from}>${to}`)

    const makePair = (hostA: string, portA: number, hostB: string, portB: number) =>
      Effect.gen(function* () {
        let open = true
        const closeHandlers: Array<(reason: string) => void> = []
        const pipes = [
          { queue: yield* Queue.unbounded<Uint8Array>(), receiver: undefined, early: [] },
          { queue: yield* Queue.unbounded<Uint8Array>(), receiver: undefined, early: [] },
        ] as [Pipe, Pipe]
        const closeBoth = (reason: string) => {
          if (!open) return
          open = false
          links.delete(entry)
          for (const handler of closeHandlers.splice(0)) handler(reason)
        }
        const end = (index: 0 | 1): SimLink => {
          const out = pipes[index]
          const inbound = pipes[1 - index]!
          return {
            send: (chunks) => {
              if (!open) return false
              for (const chunk of chunks) if (chunk.length > 0) Queue.offerUnsafe(out.queue, chunk.slice())
              return true
            },
            bufferedBytes: () => 0,
            drained: Effect.void,
            onData: (receive) => {
              inbound.receiver = receive
              for (const chunk of inbound.early.splice(0)) receive(chunk)
            },
            onClose: (handler) => (open ? void closeHandlers.push(handler) : handler("closed")),
            close: closeBoth,
            closeNow: closeBoth,
            isOpen: () => open,
            remote: index === 0 ? `${hostB}:${portB}` : `${hostA}:${portA}`,
            local: index === 0 ? `${hostA}:${portA}` : `${hostB}:${portB}`,
          }
        }
        const a = end(0)
        const b = end(1)
        const entry = { a, b, hostA, hostB }
        links.add(entry)
        const pump = (pipe: Pipe, from: string, to: string) =>
          Effect.gen(function* () {
            let last = 0
            while (open) {
              const chunk = yield* Queue.take(pipe.queue)
              const delay = random.next() < faults.slowProbability ? faults.slowDelayMs : faults.delayMinMs + Math.floor(random.next() * (faults.delayMaxMs - faults.delayMinMs + 1))
              const now = clock.currentTimeMillisUnsafe()
              const deliverAt = Math.max(last, now + delay)
              if (deliverAt > now) yield* Effect.sleep(deliverAt - now)
              last = deliverAt
              while (open && (isBlocked(from, to) || isHeld(from, to))) yield* Effect.sleep(5)
              if (!open) return
              if (random.next() < faults.resetProbability) {
                stats.resets++
                closeBoth("connection reset (simulated)")
                return
              }
              let delivered = chunk
              if (random.next() < faults.bitFlipProbability) {
                stats.bitFlips++
                delivered = chunk.slice()
                const bit = Math.floor(random.next() * delivered.length * 8)
                delivered[bit >> 3] = delivered[bit >> 3]! ^ (1 << (bit & 7))
              }
              stats.delivered++
              stats.bytes += delivered.length
              if (pipe.receiver) pipe.receiver(delivered)
              else pipe.early.push(delivered)
            }
          })
        yield* Effect.forkIn(Effect.provideService(pump(pipes[0], hostA, hostB), Clock.Clock, clock), scope)
        yield* Effect.forkIn(Effect.provideService(pump(pipes[1], hostB, hostA), Clock.Clock, clock), scope)
        return { a, b }
      })

    let ephemeralPort = 40000
    const transport = Transport.of({
      listen: (address: Address, accept: (link: Link) => void) =>
        Effect.acquireRelease(
          Effect.suspend(() => {
            const key = formatAddress(address)
            if (listeners.has(key)) return Effect.fail(new NetError({ reason: "address-in-use", address: key, message: `${key} is already in use` }))
            listeners.set(key, accept)
            return Effect.succeed({ address })
          }),
          () => Effect.sync(() => void listeners.delete(formatAddress(address))),
        ),
      dial: (address, options) =>
        Effect.gen(function* () {
          const key = formatAddress(address)
          const from = options?.from ?? "127.0.0.254"
          const timeoutMs = options?.timeoutMs ?? 5_000
          if (isBlocked(from, address.host) || isBlocked(address.host, from)) {
            yield* Effect.sleep(timeoutMs)
            return yield* new NetError({ reason: "timeout", address: key, message: `connecting to ${key} timed out (simulated partition)` })
          }
          yield* Effect.sleep(faults.delayMinMs)
          while (isHeld(from, address.host)) yield* Effect.sleep(5)
          const accept = listeners.get(key)
          if (!accept) return yield* new NetError({ reason: "refused", address: key, message: `connection to ${key} refused (simulated)` })
          const { a, b } = yield* makePair(from, ephemeralPort++, address.host, address.port)
          accept(b)
          return a as Link
        }),
    })

    return {
      transport,
      layer: Layer.succeed(Transport, transport),
      block: (from, to) => void blocked.add(`${from}>${to}`),
      unblock: (from, to) => void blocked.delete(`${from}>${to}`),
      isolate: (host) => void isolated.add(host),
      healAll: () => {
        blocked.clear()
        isolated.clear()
      },
      pause: (host) => void paused.add(host),
      resume: (host) => void paused.delete(host),
      resetHost: (host) => {
        for (const link of [...links]) if (link.hostA === host || link.hostB === host) link.a.closeNow(`host ${host} went away (simulated)`)
      },
      setFaults: (next) => void (faults = next),
      stats,
    } satisfies SimNetwork
  })
