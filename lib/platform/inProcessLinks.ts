/**
 * Links between the nodes of one process, in memory: a Transport that wraps another one (TLS or
 * TCP) for a local cluster (`replivol cluster up`, `createLocalCluster`).
 *
 * Why: the local cluster's nodes share one event loop, so a replicated write's frame used to be
 * encrypted, written to a loopback socket, read back a turn of the loop later and decrypted — all
 * on the same core, for bytes that never leave the process. That hop was most of a 128 KiB
 * write's time (test/bench/fuse-cluster.ts). Here a dial to an address a node of this process
 * listens on gets one end of an in-memory pair and that node's `accept` the other; every other
 * dial, and every connection from outside (workloads with client certificates, other processes),
 * still goes through the wrapped transport, whose listener stays open on the same address.
 *
 * A pair behaves as a socket does for the layers above: bytes arrive in order, each `send` is
 * copied at once (the sender may reuse its buffers, as after a socket write) and delivered in a
 * microtask (frames of one tick leave together, like the TCP transport's cork), `send` reports the
 * high-water mark, `close` delivers what was sent before it and then closes both ends, and closing
 * a listener's scope closes the links it accepted (a stopped node drops its peers). The cluster
 * secret handshake still runs on every link.
 */
import { Effect } from "effect"
import { concatBytes } from "../core/bytes.ts"
import { sendBufferBytesMax } from "../core/limits.ts"
import { formatAddress, type Link, Transport } from "../net/Transport.ts"

type TransportShape = Transport["Service"]

interface End {
  readonly link: Link
  /** Bytes from the peer. */
  readonly deliver: (chunk: Uint8Array) => void
  /** The peer closed: close this end too. */
  readonly peerClosed: () => void
}

const makeEnd = (local: string, remote: string, peer: () => End): End => {
  let receive: ((chunk: Uint8Array) => void) | undefined
  const inbox: Uint8Array[] = []
  let outbox: Uint8Array[] = []
  let outBytes = 0
  let scheduled = false
  let open = true
  let closeReason = "closed by peer"
  const closeHandlers: Array<(reason: string) => void> = []
  const drainWaiters: Array<() => void> = []
  const wakeDrained = () => {
    for (const wake of drainWaiters.splice(0)) wake()
  }
  const flush = () => {
    scheduled = false
    const chunks = outbox
    outbox = []
    outBytes = 0
    for (const chunk of chunks) peer().deliver(chunk)
    wakeDrained()
  }
  const closed = (reason: string) => {
    open = false
    closeReason = reason
    for (const handler of closeHandlers.splice(0)) handler(reason)
    wakeDrained()
  }
  const link: Link = {
    send: (chunks) => {
      if (!open) return false
      const bytes = concatBytes(chunks)
      if (bytes.length > 0) {
        outbox.push(bytes)
        outBytes += bytes.length
      }
      if (!scheduled) {
        scheduled = true
        queueMicrotask(flush)
      }
      return outBytes < sendBufferBytesMax
    },
    bufferedBytes: () => outBytes,
    drained: Effect.callback<void>((resume) => {
      if (!open || outBytes < sendBufferBytesMax) return resume(Effect.void)
      drainWaiters.push(() => resume(Effect.void))
    }),
    onData: (handler) => {
      receive = handler
      for (const chunk of inbox.splice(0)) handler(chunk)
    },
    onClose: (handler) => (open ? void closeHandlers.push(handler) : handler(closeReason)),
    close: (reason) => {
      if (!open) return
      open = false
      // What was sent before the close still arrives, then the peer sees the close.
      queueMicrotask(() => {
        flush()
        peer().peerClosed()
        closed(reason)
      })
    },
    isOpen: () => open,
    remote,
    local,
  }
  return {
    link,
    deliver: (chunk) => {
      if (!open) return
      if (receive) receive(chunk)
      else inbox.push(chunk)
    },
    peerClosed: () => {
      if (open) closed("closed by peer")
    },
  }
}

/** Both ends of an in-memory link. */
const makePair = (clientAddress: string, serverAddress: string): { readonly client: End; readonly server: End } => {
  const pair: { client?: End; server?: End } = {}
  pair.client = makeEnd(clientAddress, serverAddress, () => pair.server!)
  pair.server = makeEnd(serverAddress, clientAddress, () => pair.client!)
  return { client: pair.client, server: pair.server }
}

interface LocalListener {
  readonly accept: (link: Link) => void
  readonly accepted: Set<Link>
}

/**
 * `inner`, except that dials to an address some `listen` of this transport serves are joined in
 * memory. One instance per local cluster (the addresses it knows are its own nodes').
 */
export const withInProcessLinks = (inner: TransportShape): TransportShape => {
  const listeners = new Map<string, LocalListener>()
  let dialed = 0
  const listen: TransportShape["listen"] = (address, accept, options) =>
    Effect.gen(function* () {
      const listener = yield* inner.listen(address, accept, options)
      const key = formatAddress(address)
      const local: LocalListener = { accept, accepted: new Set() }
      yield* Effect.acquireRelease(
        Effect.sync(() => void listeners.set(key, local)),
        () => Effect.sync(() => {
          if (listeners.get(key) === local) listeners.delete(key)
          for (const link of local.accepted) link.close("the listening node stopped")
        }),
      )
      return listener
    })
  const dial: TransportShape["dial"] = (address, options) =>
    Effect.suspend(() => {
      const local = listeners.get(formatAddress(address))
      if (local === undefined) return inner.dial(address, options)
      dialed = (dialed + 1) % 65536
      const { client, server } = makePair(`${options?.from ?? "in-process"}:${dialed}`, formatAddress(address))
      local.accepted.add(server.link)
      server.link.onClose(() => void local.accepted.delete(server.link))
      // As with a socket, the server learns of the connection after the dial returned.
      queueMicrotask(() => local.accept(server.link))
      return Effect.succeed(client.link)
    })
  return Transport.of({ listen, dial })
}
