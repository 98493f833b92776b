/**
 * TLS 1.3 transport (node:tls): port 5703's default `Transport`, on Node, Bun and Deno.
 *
 * Both ends present a certificate from the cluster CA and check the other's (mutual TLS): the
 * server refuses a client whose certificate is from another CA, expired, or missing; the client
 * also checks that the server's certificate names the address it dialed. Only then does the
 * cluster-secret handshake (lib/net/connection.ts) run, inside the encrypted session. Every
 * refusal is a `NetError` with a `tls-…` reason (lib/net/Transport.ts): the dialing side gets it
 * from `dial` or from its handshake, the listening side through `ListenOptions.onRefused`.
 *
 * Both sides check the peer's certificate themselves once the TLS handshake is done
 * (`rejectUnauthorized: false`, then `refusalOf`) because runtimes differ in what they report when
 * node:tls refuses one; a refused socket is destroyed before a byte is sent or read on it. Frames still leave in one
 * corked write per tick (socketLink), which becomes one TLS record rather than one per frame.
 *
 * Cipher suites: TLS_AES_128_GCM_SHA256 first (`cipherSuites`, the server's order wins), where
 * node:tls would pick TLS_AES_256_GCM_SHA384: every byte of volume data is sealed on one side and
 * opened on the other on the nodes' event loops, and with AES instructions (AES-NI, VAES) AES-128
 * does 10 rounds to AES-256's 14. AES-128-GCM is TLS 1.3's mandatory suite and NIST-approved;
 * the others stay allowed (a peer with another order still connects), ChaCha20 last (the choice
 * of CPUs without AES instructions, which a node's peers are unlikely to be).
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { Clock, Effect, Layer } from "effect"
import { defaults, handshakesPendingMax } from "../core/limits.ts"
import { formatAddress, type Address, type Link, type ListenOptions, NetError, type NetErrorReason, Transport } from "../net/Transport.ts"
import { dialTimeout, socketError, socketLink } from "./tcp.ts"
import type { Identity } from "./certificates.ts"

export interface TlsConfig {
  /** The cluster CA (PEM); peers' certificates must chain to it. */
  readonly caPem: string
  /** This process's certificate and key, for any host without its own. */
  readonly identity?: Identity
  /** Certificates by local host (listen address, dial `from`): several nodes in one process. */
  readonly identities?: ReadonlyMap<string, Identity>
}

const untrusted = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_SIGNATURE_FAILURE", "CERT_REJECTED", "CERT_UNTRUSTED", "INVALID_CA", "INVALID_PURPOSE",
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
  "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
])
/** TLS 1.3 suites in the order this end prefers (see the module doc). */
export const cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

const expired = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED"])
const notTls = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_HTTP_REQUEST", "ERR_SSL_HTTPS_PROXY_REQUEST", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "ERR_SSL_UNKNOWN_PROTOCOL", "ERR_SSL_RECORD_LAYER_FAILURE"])

/** The typed reason for a TLS failure code (OpenSSL's verify codes, Node's ERR_SSL_… codes). */
export const tlsReason = (code: string | undefined): NetErrorReason | undefined =>
  code === undefined ? undefined
  : untrusted.has(code) ? "tls-untrusted"
  : expired.has(code) ? "tls-expired"
  : code === "ERR_TLS_CERT_ALTNAME_INVALID" ? "tls-name-mismatch"
  : notTls.has(code) ? "tls-required"
  : undefined

const explain: Readonly<Record<string, string>> = {
  "tls-untrusted": "its certificate is not signed by the cluster CA (or it sent none)",
  "tls-expired": "its certificate has expired or is not valid yet",
  "tls-name-mismatch": "its certificate does not name the address dialed",
  "tls-required": "it does not speak TLS (a node started with --insecure-plaintext?), and this node requires TLS",
}

/** The code of a TLS failure: an error's `code`, or the bare string Node gives as `authorizationError`. */
const codeOf = (error: unknown): string | undefined => {
  if (typeof error === "string") return error
  const e = error as { code?: unknown; message?: unknown } | undefined
  return typeof e?.code === "string" ? e.code : undefined
}

const tlsError = (address: string, peer: "server" | "client", error: unknown, fallback: NetErrorReason): NetError => {
  const reason = tlsReason(codeOf(error)) ?? fallback
  const detail = error instanceof Error ? error.message : String(error)
  return new NetError({ reason, address, message: `TLS with ${peer} ${address} refused: ${explain[reason] ?? detail} (${codeOf(error) ?? detail})`, cause: error })
}

const contexts = (config: TlsConfig) => {
  const cache = new Map<Identity, tls.SecureContext>()
  return (host: string | undefined): { identity: Identity; context: tls.SecureContext } | undefined => {
    const identity = (host === undefined ? undefined : config.identities?.get(host)) ?? config.identity
    if (identity === undefined) return undefined
    let context = cache.get(identity)
    if (!context) {
      context = tls.createSecureContext({ ca: config.caPem, cert: identity.certPem, key: identity.keyPem, minVersion: "TLSv1.3", ciphers: cipherSuites })
      cache.set(identity, context)
    }
    return { identity, context }
  }
}

/** A peer certificate's validity window (runtimes report it as text). */
const outsideValidity = (certificate: tls.PeerCertificate | undefined, nowMs: number) => {
  const from = Date.parse(certificate?.valid_from ?? ""), to = Date.parse(certificate?.valid_to ?? "")
  return Number.isFinite(from) && Number.isFinite(to) && (nowMs < from || nowMs > to)
}

/**
 * Why a finished TLS handshake must not be used, or undefined: the peer's chain does not reach
 * our CA (or it sent no certificate), its certificate is outside its validity (told apart here,
 * since some runtimes report every verify failure alike), or, for a server, it does not name
 * `expectedHost`. Checked before a single byte of ours is sent or of theirs is read.
 */
const refusalOf = (socket: tls.TLSSocket, peer: "server" | "client", address: string, nowMs: number, expectedHost?: string): NetError | undefined => {
  const certificate = socket.getPeerCertificate()
  const present = certificate !== undefined && certificate !== null && Object.keys(certificate).length > 0
  if (!socket.authorized || !present) {
    const cause = socket.authorizationError ?? (present ? "UNABLE_TO_VERIFY_LEAF_SIGNATURE" : "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE")
    const refusal = tlsError(address, peer, cause, "tls-untrusted")
    return refusal.reason === "tls-untrusted" && present && outsideValidity(certificate, nowMs)
      ? tlsError(address, peer, "CERT_HAS_EXPIRED", "tls-expired")
      : refusal
  }
  if (expectedHost !== undefined) {
    const mismatch = tls.checkServerIdentity(expectedHost, certificate)
    if (mismatch) return tlsError(address, peer, mismatch, "tls-name-mismatch")
  }
  return undefined
}

const noIdentity = (address: Address, host: string | undefined) =>
  new NetError({ reason: "tls-untrusted", address: formatAddress(address), message: `no TLS certificate is configured for ${host ?? "this process"}: give the node --tls-cert and --tls-key (or tls options)` })

/** The client side: after the TLS handshake, a close with a TLS alert, or before a single byte, is the server refusing us. */
const clientLink = (socket: tls.TLSSocket, address: string): Link =>
  socketLink(socket, {
    classifyClose: (error, bytesReceived) => {
      const reason = tlsReason(codeOf(error))
      if (reason) return tlsError(address, "server", error, reason)
      if (bytesReceived > 0) return undefined
      return new NetError({ reason: "tls-refused", address, message: `${address} ended the TLS session before sending a byte: it did not accept our certificate (from another CA, expired, or none), or it is over its connection limit; its handshake failures say which` })
    },
  })

/** Accepts authorized links, refuses the rest, and bounds the TLS handshakes in progress. */
const serverTrack = (server: tls.Server, accept: (link: Link) => void, refuse: (error: NetError) => void, clock: Clock.Clock) => {
  const sockets = new Set<net.Socket>()
  const handshaking = new Map<string, net.Socket>()
  const keyOf = (socket: net.Socket | undefined) => (socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined)
  const settle = (socket: net.Socket | undefined) => {
    const key = keyOf(socket)
    if (key !== undefined) handshaking.delete(key)
    return key ?? "a client"
  }
  server.on("connection", (raw: net.Socket) => {
    if (handshaking.size >= handshakesPendingMax) return raw.destroy()
    const key = keyOf(raw)
    sockets.add(raw)
    if (key !== undefined) handshaking.set(key, raw)
    raw.on("close", () => {
      sockets.delete(raw)
      if (key !== undefined && handshaking.get(key) === raw) handshaking.delete(key)
    })
  })
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const remote = settle(socket)
    const refusal = refusalOf(socket, "client", remote, clock.currentTimeMillisUnsafe())
    if (refusal) {
      refuse(refusal)
      return socket.destroy()
    }
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    accept(socketLink(socket))
  })
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket | undefined) => {
    const remote = settle(socket)
    refuse(tlsError(remote, "client", error, codeOf(error) === "ECONNRESET" ? "closed" : "protocol"))
    socket?.destroy()
  })
  return sockets
}

const listenWith = (config: TlsConfig) => {
  const contextFor = contexts(config)
  return (address: Address, accept: (link: Link) => void, options?: ListenOptions) =>
    Effect.acquireRelease(
      Clock.clockWith((clock) => Effect.callback<{ server: tls.Server; sockets: Set<net.Socket> }, NetError>((resume) => {
        const own = contextFor(address.host)
        if (!own) return resume(Effect.fail(noIdentity(address, address.host)))
        const server = tls.createServer({
          ca: config.caPem, cert: own.identity.certPem, key: own.identity.keyPem, minVersion: "TLSv1.3", ciphers: cipherSuites, honorCipherOrder: true,
          requestCert: true, rejectUnauthorized: false, handshakeTimeout: options?.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs, noDelay: true,
        })
        const sockets = serverTrack(server, accept, (error) => options?.onRefused?.(error), clock)
        server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.fail(socketError(address, "listen on", error))))
        server.listen({ host: address.host, port: address.port, backlog: 511 }, () => resume(Effect.succeed({ server, sockets })))
      })),
      ({ server, sockets }) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          for (const socket of sockets) socket.destroy()
        }),
    ).pipe(Effect.map(({ server }) => {
      const bound = server.address() as net.AddressInfo
      return { address: { host: bound.address, port: bound.port } }
    }))
}

const dialWith = (config: TlsConfig) => {
  const contextFor = contexts(config)
  return (address: Address, options?: { readonly from?: string; readonly timeoutMs?: number }) =>
    Clock.clockWith((clock) => Effect.callback<Link, NetError>((resume) => {
      const own = contextFor(options?.from)
      if (!own) return resume(Effect.fail(noIdentity(address, options?.from)))
      const target = formatAddress(address)
      // The certificate is checked here (refusalOf), the same way on every runtime, before the link is handed out.
      const socket = tls.connect({
        host: address.host, port: address.port, secureContext: own.context, minVersion: "TLSv1.3", rejectUnauthorized: false,
        ...(net.isIP(address.host) ? {} : { servername: address.host }), ...(options?.from ? { localAddress: options.from } : {}),
      })
      let connected = false
      socket.once("connect", () => void (connected = true))
      const fail = (error: NodeJS.ErrnoException) =>
        resume(Effect.fail(tlsReason(error.code) || connected ? tlsError(target, "server", error, "tls-required") : socketError(address, "connect to", error)))
      socket.once("error", fail)
      socket.once("secureConnect", () => {
        socket.off("error", fail)
        const refusal = refusalOf(socket, "server", target, clock.currentTimeMillisUnsafe(), address.host)
        if (refusal) {
          socket.destroy()
          return resume(Effect.fail(refusal))
        }
        resume(Effect.succeed(clientLink(socket, target)))
      })
      return Effect.sync(() => socket.destroy())
    })).pipe(
      Effect.timeoutOrElse({ duration: options?.timeoutMs ?? 5_000, orElse: () => Effect.fail(dialTimeout(address)) }),
    )
}

/** TLS 1.3 with mutual certificate authentication from `config`'s CA. */
export const tlsTransport = (config: TlsConfig) => Transport.of({ listen: listenWith(config), dial: dialWith(config) })
export const layerTls = (config: TlsConfig) => Layer.succeed(Transport, tlsTransport(config))
