/**
 * The transport contract: reliable, ordered byte streams between node addresses.
 *
 * Replication code never sees sockets. It sees a `Link` (one connection) and a `Transport`
 * (listen / dial). The real implementation is TCP (lib/platform/tcp.ts); the simulator's is an
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

export class NetError extends Data.TaggedError("NetError")<{
  readonly reason: "refused" | "unreachable" | "timeout" | "closed" | "address-in-use" | "bad-address" | "auth-failed" | "protocol"
  readonly address: string
  readonly message: string
  readonly cause?: unknown
}> {}

export interface Link {
  /** Queues bytes for sending. Returns false when the send buffer is above its high-water mark. */
  readonly send: (chunks: ReadonlyArray<Uint8Array>) => boolean
  /** Bytes queued but not yet handed to the network. */
  readonly bufferedBytes: () => number
  /** Completes when the send buffer has drained below its high-water mark (or the link closed). */
  readonly drained: Effect.Effect<void>
  /** Registers the single receiver of incoming bytes (chunks arrive in order). */
  readonly onData: (receive: (chunk: Uint8Array) => void) => void
  /** Registers a handler run once when the link closes, for any reason. */
  readonly onClose: (closed: (reason: string) => void) => void
  /** Closes the link; pending bytes may be lost. Idempotent. */
  readonly close: (reason: string) => void
  readonly isOpen: () => boolean
  readonly remote: string
  readonly local: string
}

export interface Listener {
  readonly address: Address
}

export class Transport extends Context.Service<
  Transport,
  {
    /** Accepts links on `address` until the scope closes; `accept` runs for each new link. */
    readonly listen: (address: Address, accept: (link: Link) => void) => Effect.Effect<Listener, NetError, Scope.Scope>
    /** Opens a link to `address`, bound from `from` when given (so tests can use 127.0.0.x as node identities). */
    readonly dial: (address: Address, options?: { readonly from?: string; readonly timeoutMs?: number }) => Effect.Effect<Link, NetError>
  }
>()("replivol/Transport") {}
