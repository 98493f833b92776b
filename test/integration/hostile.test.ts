/**
 * Bad input on port 5703 against a live replica process (127.0.0.2:5703), twice: over TLS (the
 * default; the attacker holds a certificate from the cluster CA but not the secret, or knows the
 * secret and sends garbage inside the TLS session) and over plain TCP (--insecure-plaintext):
 * a client without the secret is closed and nothing is written; a replayed handshake is refused;
 * 10 000 seeded random and mutated frames (bad magic, lengths up to 4 GiB, bad checksums,
 * truncated bodies, the lz4 size-header bomb) — sent before and after authenticating — leave it
 * up, with bounded memory, no write applied, and every rejection counted under a typed reason.
 * Verify frames (wire version 3) from an authenticated peer: out of range, on a volume not
 * opened, or carrying a body, each get a typed answer or a typed wire rejection.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as net from "node:net"
import * as tls from "node:tls"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { clientHandshake } from "../../lib/net/connection.ts"
import { socketLink } from "../../lib/platform/tcp.ts"
import { crc32c } from "../../lib/core/checksum.ts"
import { encodeFrame, encodeJsonBody, makeFrame, MessageType } from "../../lib/wire/index.ts"
import { volumeIdOf } from "../../lib/replication/protocol.ts"
import { mulberry } from "../support/pattern.ts"
import { spawnTs, type Child } from "../support/processes.ts"
import { ensureLocalPki, type LocalPki } from "../../lib/platform/certificates.ts"

const secret = "hostile-test-secret-0123456789"
const volume = "default/target"
const sizeBytes = 16 * 1024 * 1024
const host = "127.0.0.2"
const port = 5703

const hostileSuite = (mode: "tls" | "plaintext") => {
  const test = suite(`hostile input on port 5703 (${mode === "tls" ? "TLS" : "plain TCP"})`)
  let replica: Child
  let base: string
  let pki: LocalPki

  test.before(async () => {
    base = await mkdtemp(join(tmpdir(), "replivol-hostile-"))
    pki = await Effect.runPromise(ensureLocalPki(join(base, "tls"), [{ name: "victim", host }, { name: "intruder", host: "127.0.0.9" }]))
    const security = mode === "tls" ? ["--tls-dir", join(base, "tls")] : ["--plaintext"]
    replica = spawnTs("test/support/node-process.ts", ["replica", "--name", "victim", "--host", host, "--data", base, "--secret", secret, "--volume", volume, "--size", String(sizeBytes), ...security])
    await replica.next("ready", 30_000)
  })

  test.after(async () => {
    replica.kill("SIGKILL")
    await replica.exited
    await rm(base, { recursive: true, force: true })
  })

  /** A connection from 127.0.0.9: TLS with the intruder's certificate from the cluster CA, or plain TCP. */
  const connectRaw = (ready: () => void): net.Socket => {
    if (mode === "plaintext") return net.connect({ host, port, localAddress: "127.0.0.9" }, ready)
    const identity = pki.identities.get("intruder")!
    return tls.connect({ host, port, localAddress: "127.0.0.9", ca: pki.caPem, cert: identity.certPem, key: identity.keyPem, minVersion: "TLSv1.3" as const } as tls.ConnectionOptions, ready)
  }

  const stats = async () => {
    replica.send({ cmd: "stats" })
    return (await replica.next("stats", 10_000)) as {
      rssBytes: number
      node: { handshakesFailed: number; handshakeFailures: Record<string, number>; wireRejections: Record<string, number>; refusedOverLimit: number }
      replicas: Array<{ writesApplied: number }>
      rejections: Record<string, number>
    }
  }

  /**
   * The node's figures once `done` holds of them (at most `waitMs`): a refusal is counted when the
   * server sees it, which can be just after the client saw its connection end (the client may be
   * the side that detects a wrong secret and closes first).
   */
  const statsOnce = async (done: (s: Awaited<ReturnType<typeof stats>>) => boolean, waitMs = 5_000) => {
    const deadline = Date.now() + waitMs
    for (;;) {
      const now = await stats()
      if (done(now) || Date.now() > deadline) return now
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Connects, optionally records what we send, writes `bytes`, half-closes; resolves when the server closed us (or after timeoutMs). */
  // `end`: half-close after the bytes. Off where the server's answer to a complete handshake is
  // under test: over TLS a client's early close can beat the server's reading of it (the failure
  // is then counted as "closed" rather than as what the bytes deserved).
  const sendRaw = (bytes: Uint8Array, timeoutMs = 3000, end = true) =>
    new Promise<{ closedByServer: boolean; received: number }>((resolve) => {
      const socket = connectRaw(() => (end ? socket.end(bytes) : socket.write(bytes)))
      let received = 0
      const timer = setTimeout(() => {
        socket.destroy()
        resolve({ closedByServer: false, received })
      }, timeoutMs)
      socket.on("data", (chunk) => void (received += chunk.length))
      socket.on("error", () => undefined)
      socket.on("close", () => {
        clearTimeout(timer)
        resolve({ closedByServer: true, received })
      })
    })

  const authenticate = (key: string, recorded?: Uint8Array[]) =>
    Effect.runPromise(Effect.gen(function* () {
      const socket = yield* Effect.callback<net.Socket>((resume) => {
        const s: net.Socket = connectRaw(() => resume(Effect.succeed(s)))
        s.on("error", () => undefined)
      })
      const link = socketLink(socket)
      const recording = recorded
        ? { ...link, send: (chunks: ReadonlyArray<Uint8Array>) => (chunks.forEach((c) => recorded.push(Uint8Array.from(c))), link.send(chunks)) }
        : link
      return yield* clientHandshake(recording, { secret: new TextEncoder().encode(key), nodeName: "intruder", timeoutMs: 3000 })
    }))

  const concat = (parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const p of parts) (out.set(p, at), (at += p.length))
    return out
  }

  const writeFrame = (offset: number, data: Uint8Array) =>
    encodeFrame(makeFrame(MessageType.Write, { volumeId: volumeIdOf(volume), epoch: 1, sequence: 1, offset, body: data }))

  const openFrame = () =>
    encodeFrame(makeFrame(MessageType.Open, { volumeId: volumeIdOf(volume), epoch: 1, body: encodeJsonBody({ volume, sizeBytes, epoch: 1, master: "intruder" }) }))

  const fileIsZero = async () => {
    const bytes = await readFile(join(base, "copies", `${volume}.img`))
    return bytes.every((b) => b === 0)
  }

  test("a client with the wrong secret is refused and nothing is written", async () => {
    const before = await stats()
    const refused = await authenticate("not-the-cluster-secret!!").then(() => "accepted", (e: { _tag?: string; reason?: string }) => `${e._tag}:${e.reason}`)
    assert.is(refused, "NetError:auth-failed")
    // A client that skips the handshake and sends a write straight away is closed too.
    const raw = await sendRaw(concat([...openFrame(), ...writeFrame(0, new Uint8Array(4096).fill(0xee))]))
    assert.ok(raw.closedByServer, "the server closed the unauthenticated connection")
    const after = await statsOnce((s) => s.node.handshakesFailed >= before.node.handshakesFailed + 2)
    assert.ok(after.node.handshakesFailed >= before.node.handshakesFailed + 2, `both refusals counted (before ${before.node.handshakesFailed}, after ${after.node.handshakesFailed})`)
    assert.is(after.replicas[0]!.writesApplied, 0)
    assert.ok(await fileIsZero(), "the backing file is untouched")
  })

  test("a recorded handshake replayed on a new connection is refused", async () => {
    const recorded: Uint8Array[] = []
    const connection = await authenticate(secret, recorded)
    connection.close("done recording")
    const before = await stats()
    const replay = await sendRaw(concat([...recorded, ...openFrame(), ...writeFrame(4096, new Uint8Array(4096).fill(0xab))]), 10_000, false)
    assert.ok(replay.closedByServer)
    const after = await statsOnce((s) => s.node.handshakesFailed >= before.node.handshakesFailed + 1)
    assert.is(after.node.handshakesFailed, before.node.handshakesFailed + 1)
    assert.is(after.node.handshakeFailures["auth-failed"], (before.node.handshakeFailures["auth-failed"] ?? 0) + 1)
    assert.is(after.replicas[0]!.writesApplied, 0)
    assert.ok(await fileIsZero())
  })

  /** One hostile frame (or byte soup), drawn from the seed. */
  const hostileBytes = (random: () => number, index: number): { bytes: Uint8Array; kind: string } => {
    const data = new Uint8Array(1 + Math.floor(random() * 8192)).map(() => (random() * 256) | 0)
    const [header, body] = writeFrame(Math.floor(random() * (sizeBytes - data.length)), data) as [Uint8Array, Uint8Array]
    const h = Uint8Array.from(header)
    const view = new DataView(h.buffer)
    const rechecksum = () => view.setUint32(52, crc32c(h.subarray(0, 52)), true)
    switch (index % 8) {
      case 0: // random bytes
        return { bytes: new Uint8Array(1 + Math.floor(random() * 512)).map(() => (random() * 256) | 0), kind: "random" }
      case 1: // bad magic
        h[Math.floor(random() * 4)]! ^= 1 + Math.floor(random() * 255)
        return { bytes: concat([h, body]), kind: "bad-magic" }
      case 2: // huge length fields, with a valid header checksum
        view.setUint32(44, 0xffffffff - Math.floor(random() * 1000), true)
        view.setUint32(40, Math.floor(random() * 0xffffffff), true)
        rechecksum()
        return { bytes: h, kind: "huge-length" }
      case 3: // body checksum wrong
        view.setUint32(48, view.getUint32(48, true) ^ (1 + Math.floor(random() * 0xffff)), true)
        rechecksum()
        return { bytes: concat([h, body]), kind: "bad-body-checksum" }
      case 4: // truncated body
        return { bytes: concat([h, body.subarray(0, Math.floor(random() * body.length))]), kind: "truncated" }
      case 5: { // lz4 size-header bomb: compressed flag, claimed 4 GiB, valid checksums
        const bomb = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x01])
        view.setUint16(6, 1, true)
        view.setUint32(40, 4096, true)
        view.setUint32(44, bomb.length, true)
        view.setUint32(48, crc32c(bomb), true)
        rechecksum()
        return { bytes: concat([h, bomb]), kind: "lz4-bomb" }
      }
      case 6: { // one random bit flipped anywhere
        const frame = concat([h, body])
        const bit = Math.floor(random() * frame.length * 8)
        frame[bit >> 3]! ^= 1 << (bit & 7)
        return { bytes: frame, kind: "bit-flip" }
      }
      default: // a valid-looking header of a random type with random fields, checksummed
        for (let i = 4; i < 52; i++) if (random() < 0.2) h[i] = (random() * 256) | 0
        rechecksum()
        return { bytes: concat([h, body]), kind: "random-fields" }
    }
  }

  test(`${mode === "tls" ? "2 000" : "10 000"} seeded hostile frames: replica stays up, memory bounded, nothing applied, typed rejections`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 5703)
    const random = mulberry(seed)
    // Over TLS every input pays a TLS handshake (~10× a plain connect here): fewer inputs keep CI's time, the same mix and checks.
    const total = Number(process.env.FUZZ_FRAMES ?? (mode === "tls" ? 2_000 : 10_000))
    const before = await stats()
    let peakRss = before.rssBytes
    const kinds: Record<string, number> = {}
    let authenticatedSent = 0
    let next = 0
    const worker = async () => {
      while (next < total) {
        const index = next++
        const { bytes, kind } = hostileBytes(random, index)
        kinds[kind] = (kinds[kind] ?? 0) + 1
        if (index % 10 === 9) {
          // An authenticated peer (it knows the secret) sending the same garbage after Open.
          const connection = await authenticate(secret)
          const closed = new Promise<void>((resolve) => connection.link.onClose(() => resolve()))
          connection.link.send(openFrame())
          connection.link.send([bytes])
          authenticatedSent++
          await Promise.race([closed, new Promise((r) => setTimeout(r, 300))])
          connection.close("fuzz done")
        } else {
          await sendRaw(bytes, 3000)
        }
        if (index % 1000 === 999) peakRss = Math.max(peakRss, (await stats()).rssBytes)
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    const after = await stats()
    peakRss = Math.max(peakRss, after.rssBytes)
    const wireRejected = Object.values(after.node.wireRejections).reduce((a, b) => a + b, 0)
    console.log(`\n    seed ${seed}: ${total} hostile inputs ${JSON.stringify(kinds)}; ${authenticatedSent} after authenticating`)
    console.log(`    wire rejections ${JSON.stringify(after.node.wireRejections)}; handshake failures ${JSON.stringify(after.node.handshakeFailures)}; replica rejections ${JSON.stringify(after.rejections)}`)
    console.log(`    rss before ${(before.rssBytes / 2 ** 20).toFixed(0)} MiB, peak ${(peakRss / 2 ** 20).toFixed(0)} MiB`)
    assert.is(replica.process.exitCode, null, "the replica process is still running")
    assert.is(after.replicas[0]!.writesApplied, 0, "no hostile write was applied")
    assert.ok(await fileIsZero(), "the backing file is untouched")
    assert.ok(peakRss - before.rssBytes < 256 * 2 ** 20, `memory grew by ${((peakRss - before.rssBytes) / 2 ** 20).toFixed(0)} MiB`)
    assert.ok(wireRejected > total / 2, `most inputs were rejected as malformed frames (${wireRejected})`)
    for (const reason of ["bad-magic", "header-checksum", "too-large", "body-checksum", "bad-compression"]) {
      assert.ok((after.node.wireRejections[reason] ?? 0) > 0, `some rejections are typed ${reason}: ${JSON.stringify(after.node.wireRejections)}`)
    }
    // It still serves an honest client afterwards.
    const honest = await authenticate(secret)
    honest.close("bye")
  })

  test("hostile Verify frames from an authenticated peer: typed answers or a typed wire rejection; an honest Verify is answered", async () => {
    const before = await stats()
    const connection = await authenticate(secret)
    const frames: Array<{ type: number; aux: number; sequence: number; body: Uint8Array }> = []
    const arrived = (count: number) => new Promise<void>((resolve) => {
      const check = () => (frames.length >= count ? resolve() : setTimeout(check, 10))
      check()
    })
    connection.onFrame((frame) => void frames.push(frame))
    const closed = new Promise<void>((resolve) => connection.link.onClose(() => resolve()))
    connection.link.send(openFrame())
    const verify = (sequence: number, offset: number, length: number, volumeId = volumeIdOf(volume)) =>
      encodeFrame(makeFrame(MessageType.Verify, { volumeId, epoch: 1, sequence, offset, length }))
    connection.link.send(verify(2, 0, 4096))
    connection.link.send(verify(3, sizeBytes - 4096, 8192))
    connection.link.send(verify(4, 0, 4096, volumeIdOf("default/other")))
    await arrived(4)
    const bySequence = new Map(frames.map((f) => [f.sequence, f]))
    assert.is(bySequence.get(2)?.type, MessageType.VerifyReply, "an honest Verify is answered")
    assert.is(new DataView(bySequence.get(2)!.body.buffer, bySequence.get(2)!.body.byteOffset).getUint32(0, true), crc32c(new Uint8Array(4096)))
    assert.is(bySequence.get(3)?.type, MessageType.Error)
    assert.is(bySequence.get(3)?.aux, 3, "beyond the copy: OutOfRange")
    assert.is(bySequence.get(4)?.type, MessageType.Error)
    assert.is(bySequence.get(4)?.aux, 2, "a volume not opened here: UnknownVolume")
    // A Verify carrying a body (checksums right): refused from its header, the connection closed.
    const [header] = verify(5, 0, 4096) as [Uint8Array, Uint8Array]
    const h = Uint8Array.from(header)
    const view = new DataView(h.buffer)
    const body = new Uint8Array(16).fill(7)
    view.setUint32(44, body.length, true)
    view.setUint32(48, crc32c(body), true)
    view.setUint32(52, crc32c(h.subarray(0, 52)), true)
    connection.link.send([h, body])
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))])
    assert.not.ok(connection.link.isOpen(), "the replica closed the connection")
    const after = await stats()
    assert.is(after.node.wireRejections["too-large"], (before.node.wireRejections["too-large"] ?? 0) + 1, "typed too-large")
    assert.is(after.replicas[0]!.writesApplied, 0)
    assert.is(replica.process.exitCode, null, "the replica process is still running")
  })

  test.run()
}

hostileSuite("tls")
hostileSuite("plaintext")
