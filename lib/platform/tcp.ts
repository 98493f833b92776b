/**
 * Plain TCP transport (node:net), on Node, Bun and Deno; and `socketLink`, the `Link` over any
 * stream socket, which the TLS transport (lib/platform/tls.ts, the default) shares. Plain TCP
 * carries volume data in the clear: nodes use it only with `--insecure-plaintext`.
 *
 * Nagle is off (a 4 KiB write must not wait for the next one), small frames sent in one tick
 * are corked into one write (a microtask uncorks; a big frame is written at once), keep-alive is on, and the send
 * buffer's high-water mark is reported through `Link.send`'s return value so the replication
 * layer can apply back-pressure instead of buffering without bound.
 */
import * as net from "node:net"
import { Effect, Layer } from "effect"
import { formatAddress, type Address, type Link, NetError, Transport } from "../net/Transport.ts"
import { totalBytes } from "../core/bytes.ts"
import { sendBufferBytesMax } from "../core/limits.ts"

export const errorReason = (code: string | undefined): NetError["reason"] =>
  code === "ECONNREFUSED" ? "refused"
  : code === "EADDRINUSE" ? "address-in-use"
  : code === "EADDRNOTAVAIL" || code === "EINVAL" ? "bad-address"
  : code === "ETIMEDOUT" ? "timeout"
  : "unreachable"

/** Sends of this many bytes or more are not corked (a 1 MiB write frame is worth its own syscall). */
export const uncorkedSendBytesMin = 64 * 1024

export interface SocketLinkOptions {
  /** Gives a typed cause to a close (a TLS alert, a session ended before its first byte); undefined: a plain close. */
  readonly classifyClose?: (error: NodeJS.ErrnoException | undefined, bytesReceived: number) => NetError | undefined
}

export const socketLink = (socket: net.Socket, options?: SocketLinkOptions): Link => {
  let receive: ((chunk: Uint8Array) => void) | undefined
  const pending: Uint8Array[] = []
  const closeHandlers: Array<(reason: string, error?: NetError) => void> = []
  let open = true
  let closeReason = "closed by peer"
  let socketError: NodeJS.ErrnoException | undefined
  let closedByUs = false
  let bytesReceived = 0
  socket.setNoDelay(true)
  socket.setKeepAlive(true, 10_000)
  socket.on("data", (chunk: Uint8Array) => {
    bytesReceived += chunk.length
    return receive ? receive(chunk) : pending.push(chunk)
  })
  socket.on("error", (error: NodeJS.ErrnoException) => {
    socketError = error
    closeReason = `${error.code ?? "error"}: ${error.message}`
  })
  socket.on("close", () => {
    open = false
    const typed = closedByUs ? undefined : options?.classifyClose?.(socketError, bytesReceived)
    if (typed) closeReason = typed.message
    for (const handler of closeHandlers.splice(0)) handler(closeReason, typed)
  })
  let corked = false
  const uncork = () => {
    if (!corked) return
    corked = false
    socket.uncork()
  }
  const remote = `${socket.remoteAddress}:${socket.remotePort}`
  const local = `${socket.localAddress}:${socket.localPort}`
  return {
    send: (chunks) => {
      if (!open) return false
      let writable = true
      // Frames sent in one turn of the event loop leave in one vectored write (a replica's acks
      // for a burst of writes, a master's frames for several callers), not a syscall each. A big
      // frame leaves at once (after the corked ones): the peer starts on it while this end goes on.
      if (totalBytes(chunks) >= uncorkedSendBytesMin) {
        uncork()
        // Header and body in one vectored write (one syscall; with TLS, no record for the header alone).
        socket.cork()
        for (const chunk of chunks) if (chunk.length > 0) writable = socket.write(chunk)
        socket.uncork()
        return writable && socket.writableLength < sendBufferBytesMax
      }
      if (!corked) {
        corked = true
        socket.cork()
        queueMicrotask(uncork)
      }
      for (const chunk of chunks) if (chunk.length > 0) writable = socket.write(chunk)
      return writable && socket.writableLength < sendBufferBytesMax
    },
    flush: uncork,
    bufferedBytes: () => socket.writableLength,
    drained: Effect.callback<void>((resume) => {
      if (!open || !socket.writableNeedDrain) return resume(Effect.void)
      const done = () => {
        socket.off("drain", done)
        socket.off("close", done)
        resume(Effect.void)
      }
      socket.on("drain", done)
      socket.on("close", done)
      return Effect.sync(() => {
        socket.off("drain", done)
        socket.off("close", done)
      })
    }),
    onData: (handler) => {
      receive = handler
      for (const chunk of pending.splice(0)) handler(chunk)
    },
    onClose: (handler) => (open ? void closeHandlers.push(handler) : handler(closeReason)),
    close: (reason) => {
      if (!open) return
      closeReason = reason
      closedByUs = true
      // Frames sent in this tick are still corked: hand them to the kernel before destroying.
      if (corked) uncork()
      socket.destroy()
    },
    isOpen: () => open,
    remote,
    local,
  }
}

/** The error for a failed listen or dial, from the socket's error code. */
export const socketError = (address: Address, what: "listen on" | "connect to", error: NodeJS.ErrnoException) =>
  new NetError({ reason: errorReason(error.code), address: formatAddress(address), message: `cannot ${what} ${formatAddress(address)}: ${error.message}`, cause: error })

export const dialTimeout = (address: Address) =>
  new NetError({ reason: "timeout", address: formatAddress(address), message: `connecting to ${formatAddress(address)} timed out` })

const listen = (address: Address, accept: (link: Link) => void) =>
  Effect.acquireRelease(
    Effect.callback<net.Server, NetError>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer({ noDelay: true }, (socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        accept(socketLink(socket))
      })
      // Closing the listener ends its accepted connections too (a stopped node drops its peers).
      server.on("close", () => undefined)
      ;(server as net.Server & { replivolSockets?: Set<net.Socket> }).replivolSockets = sockets
      server.once("error", (error: NodeJS.ErrnoException) =>
        resume(Effect.fail(socketError(address, "listen on", error))),
      )
      server.listen({ host: address.host, port: address.port, backlog: 511 }, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        for (const socket of (server as net.Server & { replivolSockets?: Set<net.Socket> }).replivolSockets ?? []) socket.destroy()
      }),
  ).pipe(Effect.map((server) => {
    const bound = server.address() as net.AddressInfo
    return { address: { host: bound.address, port: bound.port } }
  }))

const dial = (address: Address, options?: { readonly from?: string; readonly timeoutMs?: number }) =>
  Effect.callback<Link, NetError>((resume) => {
    const socket = net.connect({ host: address.host, port: address.port, ...(options?.from ? { localAddress: options.from } : {}) })
    const fail = (error: NodeJS.ErrnoException) => resume(Effect.fail(socketError(address, "connect to", error)))
    socket.once("error", fail)
    socket.once("connect", () => {
      socket.off("error", fail)
      resume(Effect.succeed(socketLink(socket)))
    })
    return Effect.sync(() => socket.destroy())
  }).pipe(
    Effect.timeoutOrElse({
      duration: options?.timeoutMs ?? 5_000,
      orElse: () => Effect.fail(dialTimeout(address)),
    }),
  )

/** Plain TCP: no encryption, no certificates (only the cluster-secret handshake). */
export const tcpTransport = Transport.of({ listen, dial })
export const layerTcp = Layer.succeed(Transport, tcpTransport)
