/**
 * Framed, authenticated connections on top of a `Link`.
 *
 * Every connection authenticates both ways with the cluster secret before any other frame is
 * read (docs/design.md, invariant 5):
 *
 *   client → Hello     { clientNonce, clientName }
 *   server → Challenge { serverNonce, serverProof = HMAC(secret, "server" ‖ clientNonce ‖ serverNonce ‖ names) , serverName }
 *   client → Prove     { clientProof = HMAC(secret, "client" ‖ serverNonce ‖ clientNonce ‖ names) }
 *   server → Welcome
 *
 * Nonces are fresh on both sides, so a recorded session cannot be replayed: the server's new
 * nonce makes an old proof worthless. A peer that sends anything else, sends garbage, or is too
 * slow is closed with a typed `NetError` and nothing it sent is acted on.
 */
import { Deferred, Effect } from "effect"
import { frameBodyBytesMax, nodeNameBytesMax, nonceBytes, receiveBodySlabsMax, secretBytesMin } from "../core/limits.ts"
import { constantTimeEqual, hmacSha256 } from "../core/sha256.ts"
import { BodyPool, encodeFrame, encodeFrameWith, FrameDecoder, MessageType, WireError, type EncodedBody, type Frame } from "../wire/index.ts"
import { Entropy } from "./entropy.ts"
import { type Link, NetError } from "./Transport.ts"
import { concatBytes } from "../core/bytes.ts"

export interface Connection {
  readonly link: Link
  /** The authenticated name of the peer node. */
  readonly peerName: string
  /**
   * Sends one frame; false when the send buffer is above its high-water mark (wait on `link.drained`).
   * `body`: the frame's body already encoded (lib/wire encodeBody; shared by several links), else it is encoded here.
   */
  readonly send: (frame: Frame, compress?: boolean, body?: EncodedBody) => boolean
  /** Registers the receiver of every later frame (frames that arrived before are delivered first). */
  readonly onFrame: (receive: (frame: Frame) => void) => void
  /** The receiver is done with a received frame's body: its memory may hold a later frame's (lib/wire/bodyPool.ts). */
  readonly recycle?: (body: Uint8Array) => void
  readonly close: (reason: string) => void
}

const pendingFramesMax = 1024
const text = new TextEncoder()
const untext = new TextDecoder("utf-8", { fatal: true })

/** Low-level framing: decoder on the receive side, pre-handshake frame inbox. */
const framed = (link: Link, onWireError?: (error: WireError) => void) => {
  // Before authentication a peer can make us buffer at most one frame body (≤ frameBodyBytesMax)
  // per pending handshake, and at most handshakesPendingMax handshakes are pending.
  const pool = new BodyPool(frameBodyBytesMax, receiveBodySlabsMax)
  const decoder = new FrameDecoder({ pool })
  let receiver: ((frame: Frame) => void) | undefined
  const inbox: Frame[] = []
  let waiter: Deferred.Deferred<Frame, NetError> | undefined
  let failure: NetError | undefined
  const fail = (error: NetError) => {
    failure ??= error
    if (waiter) Deferred.doneUnsafe(waiter, Effect.fail(failure))
    waiter = undefined
  }
  let first = true
  link.onData((chunk) => {
    const opening = first
    first = false
    if (opening && chunk.length >= 2) {
      // A TLS record (handshake 0x16 or alert 0x15, version 0x03 …) where a frame (magic "RPV1") belongs:
      // the peer speaks TLS and this end is plaintext (--insecure-plaintext on one side only).
      if ((chunk[0] === 0x16 || chunk[0] === 0x15) && chunk[1] === 0x03) {
        fail(new NetError({ reason: "tls-unexpected", address: link.remote, message: `${link.remote} speaks TLS but this end of the connection is plaintext (--insecure-plaintext): start every node the same way` }))
        link.close("peer speaks TLS on a plaintext connection")
        return
      }
    }
    decoder.push(chunk)
    for (;;) {
      const next = decoder.next()
      if (next === undefined) return
      if (next instanceof WireError) {
        onWireError?.(next)
        fail(new NetError({ reason: "protocol", address: link.remote, message: `bad frame from ${link.remote}: ${next.message}`, cause: next }))
        link.close(`bad frame: ${next.reason}`)
        return
      }
      if (receiver) receiver(next)
      else if (waiter) {
        const w = waiter
        waiter = undefined
        Deferred.doneUnsafe(w, Effect.succeed(next))
      } else if (inbox.length < pendingFramesMax) inbox.push(next)
      else link.close("too many frames before the receiver was ready")
    }
  })
  link.onClose((reason, error) => fail(error ?? new NetError({ reason: "closed", address: link.remote, message: `connection ${link.remote} closed: ${reason}` })))
  const nextFrame: Effect.Effect<Frame, NetError> = Effect.suspend(() => {
    const queued = inbox.shift()
    if (queued) return Effect.succeed(queued)
    if (failure) return Effect.fail(failure)
    const deferred = Deferred.makeUnsafe<Frame, NetError>()
    waiter = deferred
    return Deferred.await(deferred)
  })
  const onFrame = (receive: (frame: Frame) => void) => {
    receiver = receive
    for (const frame of inbox.splice(0)) receive(frame)
  }
  const send = (frame: Frame, compress = false, body?: EncodedBody) =>
    link.send(body === undefined ? encodeFrame(frame, { compress }) : encodeFrameWith(frame, body))
  return { nextFrame, onFrame, send, recycle: (body: Uint8Array) => pool.give(body) }
}

const controlFrame = (type: MessageType, body: Uint8Array, aux = 0): Frame => ({
  type, volumeId: 0n, epoch: 0, aux, sequence: 0, offset: 0, length: body.length, body,
})

const proof = (secret: Uint8Array, role: "server" | "client", first: Uint8Array, second: Uint8Array, clientName: string, serverName: string) =>
  hmacSha256(secret, concatBytes([text.encode(`replivol/1 ${role}\n`), first, second, text.encode(`\n${clientName}\n${serverName}`)]))

const validName = (name: string) => name.length > 0 && name.length <= nodeNameBytesMax && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)

export interface HandshakeOptions {
  readonly secret: Uint8Array
  readonly nodeName: string
  readonly timeoutMs: number
  /** Told of every malformed frame (before or after authentication); the connection is closed. */
  readonly onWireError?: (error: WireError) => void
}

const authFailed = (link: Link, message: string) => {
  link.close(message)
  return new NetError({ reason: "auth-failed", address: link.remote, message })
}

const expect = (link: Link, frame: Frame, type: MessageType, what: string): Effect.Effect<Frame, NetError> =>
  frame.type === type
    ? Effect.succeed(frame)
    : Effect.fail(authFailed(link, `expected ${what} from ${link.remote}, got frame type ${frame.type}`))

export const assertSecret = (secret: Uint8Array): Effect.Effect<void, NetError> =>
  secret.length >= secretBytesMin
    ? Effect.void
    : Effect.fail(new NetError({ reason: "auth-failed", address: "-", message: `the cluster secret is ${secret.length} bytes; at least ${secretBytesMin} are required` }))

const withTimeout = <A>(link: Link, timeoutMs: number, effect: Effect.Effect<A, NetError>) =>
  effect.pipe(
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.fail(authFailed(link, `handshake with ${link.remote} did not finish within ${timeoutMs} ms`)),
    }),
    Effect.onError(() => Effect.sync(() => link.close("handshake failed"))),
  )

/** Client side: prove the secret, check the server's proof, return the authenticated connection. */
export const clientHandshake = (link: Link, options: HandshakeOptions): Effect.Effect<Connection, NetError> =>
  withTimeout(link, options.timeoutMs, Effect.gen(function* () {
    const entropy = yield* Entropy
    const io = framed(link, options.onWireError)
    const clientNonce = entropy.randomBytes(nonceBytes)
    io.send(controlFrame(MessageType.Hello, concatBytes([clientNonce, text.encode(options.nodeName)])))
    const challenge = yield* Effect.flatMap(io.nextFrame, (f) => expect(link, f, MessageType.Challenge, "a challenge"))
    if (challenge.body.length < nonceBytes * 2 + 1) return yield* authFailed(link, `challenge from ${link.remote} is malformed`)
    const serverNonce = challenge.body.subarray(0, nonceBytes)
    const serverProof = challenge.body.subarray(nonceBytes, nonceBytes * 2)
    let serverName: string
    try {
      serverName = untext.decode(challenge.body.subarray(nonceBytes * 2))
    } catch {
      return yield* authFailed(link, `challenge from ${link.remote} has a malformed node name`)
    }
    if (!validName(serverName)) return yield* authFailed(link, `challenge from ${link.remote} has a malformed node name`)
    if (!constantTimeEqual(serverProof, proof(options.secret, "server", clientNonce, serverNonce, options.nodeName, serverName))) {
      return yield* authFailed(link, `${link.remote} does not know the cluster secret`)
    }
    io.send(controlFrame(MessageType.Prove, proof(options.secret, "client", serverNonce, clientNonce, options.nodeName, serverName)))
    yield* Effect.flatMap(io.nextFrame, (f) =>
      f.type === MessageType.Error ? Effect.fail(authFailed(link, `${link.remote} refused us: ${untext.decode(f.body)}`)) : expect(link, f, MessageType.Welcome, "welcome"))
    return { link, peerName: serverName, send: io.send, onFrame: io.onFrame, recycle: io.recycle, close: link.close }
  }))

/** Server side: challenge the client; only an authenticated connection is returned. */
export const serverHandshake = (link: Link, options: HandshakeOptions): Effect.Effect<Connection, NetError> =>
  withTimeout(link, options.timeoutMs, Effect.gen(function* () {
    const entropy = yield* Entropy
    const io = framed(link, options.onWireError)
    const hello = yield* Effect.flatMap(io.nextFrame, (f) => expect(link, f, MessageType.Hello, "hello"))
    if (hello.body.length < nonceBytes + 1) return yield* authFailed(link, `hello from ${link.remote} is malformed`)
    const clientNonce = hello.body.slice(0, nonceBytes)
    let clientName: string
    try {
      clientName = untext.decode(hello.body.subarray(nonceBytes))
    } catch {
      return yield* authFailed(link, `hello from ${link.remote} has a malformed node name`)
    }
    if (!validName(clientName)) return yield* authFailed(link, `hello from ${link.remote} has a malformed node name`)
    const serverNonce = entropy.randomBytes(nonceBytes)
    const serverProof = proof(options.secret, "server", clientNonce, serverNonce, clientName, options.nodeName)
    io.send(controlFrame(MessageType.Challenge, concatBytes([serverNonce, serverProof, text.encode(options.nodeName)])))
    const prove = yield* Effect.flatMap(io.nextFrame, (f) => expect(link, f, MessageType.Prove, "a proof"))
    if (!constantTimeEqual(prove.body, proof(options.secret, "client", serverNonce, clientNonce, clientName, options.nodeName))) {
      io.send(controlFrame(MessageType.Error, text.encode("authentication failed"), 4))
      return yield* authFailed(link, `${link.remote} (calling itself ${clientName}) failed authentication`)
    }
    io.send(controlFrame(MessageType.Welcome, new Uint8Array(0)))
    return { link, peerName: clientName, send: io.send, onFrame: io.onFrame, recycle: io.recycle, close: link.close }
  }))
