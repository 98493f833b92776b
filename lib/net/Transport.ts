/**
 * The transport contract: reliable, ordered byte streams between node addresses.
 *
 * Replication code never sees sockets. It sees a `Link` (one connection) and a `Transport`
 * (listen / dial). The real implementations are TLS 1.3 with mutual certificates
 * (lib/platform/tls.ts, the default) and plain TCP (lib/platform/tcp.ts); the simulator's is an
 * in-process network with delays, resets and partitions (lib/testing/simNetwork.ts). Both pass
 * the same tests, so what the simulator proves holds for the code that runs over TCP.
 *
 * A Link is deliberately callback-shaped: it sits on the hot path (every frame of every write),
 * where a fiber per chunk would cost more than the work itself.
 */
import { Context, Data, Effect, Scope } from "effect"

export interface Address {
  readonly host: string
  readonly port: number
}

export const formatAddress = (address: Address): string => `${address.host}:${address.port}`

/**
 * Why a connection failed. The `tls-…` reasons come from port 5703's TLS (lib/platform/tls.ts):
 *  - `tls-untrusted`: the peer's certificate is not signed by our cluster CA, or it sent none;
 *  - `tls-expired`: the peer's certificate has expired or is not valid yet;
 *  - `tls-name-mismatch`: the server's certificate does not name the address we dialed;
 *  - `tls-refused`: the server ended the session right after the TLS handshake, before a byte:
 *    it did not accept our certificate (the server counts the exact reason);
 *  - `tls-required`: the peer does not speak TLS but this endpoint requires it;
 *  - `tls-unexpected`: the peer speaks TLS to a plaintext endpoint (`--insecure-plaintext`).
 */
export type NetErrorReason =
  | "refused" | "unreachable" | "timeout" | "closed" | "address-in-use" | "bad-address" | "auth-failed" | "protocol"
  | "tls-untrusted" | "tls-expired" | "tls-name-mismatch" | "tls-refused" | "tls-required" | "tls-unexpected"

export class NetError extends Data.TaggedError("NetError")<{
  readonly reason: NetErrorReason
  readonly address: string
  readonly message: string
  readonly cause?: unknown
}> {}

export interface Link {
  /** Queues bytes for sending. Returns false when the send buffer is above its high-water mark. */
  readonly send: (chunks: ReadonlyArray<Uint8Array>) => boolean
  /** Hands what `send` batched in this turn (corked) to the network now; a link that does not batch leaves it out. */
  readonly flush?: () => void
  /** Bytes queued but not yet handed to the network. */
  readonly bufferedBytes: () => number
  /** Completes when the send buffer has drained below its high-water mark (or the link closed). */
  readonly drained: Effect.Effect<void>
  /** Registers the single receiver of incoming bytes (chunks arrive in order). */
  readonly onData: (receive: (chunk: Uint8Array) => void) => void
  /** Registers a handler run once when the link closes, for any reason (`error`: a typed cause when the transport knows one, e.g. a TLS alert). */
  readonly onClose: (closed: (reason: string, error?: NetError) => void) => void
  /** Closes the link; pending bytes may be lost. Idempotent. */
  readonly close: (reason: string) => void
  readonly isOpen: () => boolean
  readonly remote: string
  readonly local: string
}

export interface Listener {
  readonly address: Address
}

export interface ListenOptions {
  /** Told of every connection the transport itself refused (TLS: untrusted, expired, no TLS), with its typed reason. */
  readonly onRefused?: (error: NetError) => void
  /** Bound on the transport's own handshake (TLS), before `accept` sees the link. */
  readonly handshakeTimeoutMs?: number
}

export class Transport extends Context.Service<
  Transport,
  {
    /** Accepts links on `address` until the scope closes; `accept` runs for each new link. */
    readonly listen: (address: Address, accept: (link: Link) => void, options?: ListenOptions) => Effect.Effect<Listener, NetError, Scope.Scope>
    /** Opens a link to `address`, bound from `from` when given (so tests can use 127.0.0.x as node identities). */
    readonly dial: (address: Address, options?: { readonly from?: string; readonly timeoutMs?: number }) => Effect.Effect<Link, NetError>
  }
>()("replivol/Transport") {}
