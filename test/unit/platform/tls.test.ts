/**
 * Port 5703's TLS between real nodes on loopback (127.0.0.x:29703): a peer with a certificate from
 * the cluster CA replicates; a certificate from another CA, an expired one, a server certificate
 * for another address, a plain TCP client on a TLS port and a TLS client on a plaintext port are
 * each refused with a typed `tls-…` reason, on the side that can tell, and nothing reaches the
 * replica. Runs on every runtime (Node, Bun; Deno by hand).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Exit, Scope } from "effect"
import { clientHandshake } from "../../../lib/net/connection.ts"
import { NetError, Transport } from "../../../lib/net/Transport.ts"
import { issueCertificate, makeLocalPki, type Authority, type Identity } from "../../../lib/platform/certificates.ts"
import { tcpTransport } from "../../../lib/platform/tcp.ts"
import { tlsTransport } from "../../../lib/platform/tls.ts"
import { startNode, type ReplivolNode } from "../../../lib/node/node.ts"
import { makeMemoryStores, type Stores } from "../../../lib/store/Stores.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"
import { testPort } from "../../support/ports.ts"

const test = suite("TLS on port 5703: mutual certificates, typed refusals")
const secret = "tls-test-secret-0123456789"
const port = testPort(29703)
const volume = "default/tls"
const sizeBytes = 1 << 20
const dayMs = 86_400_000

let scope: Scope.Closeable
let ca: Authority
let identities: ReadonlyMap<string, Identity>
let foreign: ReadonlyMap<string, Identity>
const stores = makeMemoryStores()
let victim: ReplivolNode // n2 on 127.0.0.2, TLS, hosts `volume`
let plainNode: ReplivolNode // n4 on 127.0.0.4, plain TCP
const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | Stores>) => Effect.runPromise(effect.pipe(Scope.provide(scope), Effect.provide(stores.layer)))

const tls = (identity: Identity, caPem = ca.certPem) => tlsTransport({ caPem, identity })
const start = (name: string, host: string, transport: Transport["Service"]) =>
  run(startNode({ name, address: { host, port }, dataDir: `/${name}`, secret, handshakeTimeoutMs: 3000 }).pipe(Effect.provideService(Transport, transport)))

test.before(async () => {
  scope = Effect.runSync(Scope.make())
  const made = await Effect.runPromise(makeLocalPki(["n1", "n2", "n3", "n5"].map((name, i) => ({ name, host: `127.0.0.${i === 3 ? 5 : i + 1}` }))))
  ca = made.ca
  identities = made.pki.identities
  foreign = (await Effect.runPromise(makeLocalPki([{ name: "n1", host: "127.0.0.1" }, { name: "n3", host: "127.0.0.3" }]))).pki.identities
  victim = await start("n2", "127.0.0.2", tls(identities.get("n2")!))
  await run(victim.hostReplica(volume, sizeBytes))
  await run(victim.hostReplica("default/ok", sizeBytes))
  plainNode = await start("n4", "127.0.0.4", tcpTransport)
})

test.after(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

/** Dials `host` through `transport` and runs the secret handshake; the typed failure, or "connected". */
const attempt = (transport: Transport["Service"], host: string, from = "127.0.0.1") =>
  Effect.runPromise(Effect.gen(function* () {
    const link = yield* transport.dial({ host, port }, { from, timeoutMs: 3000 })
    const connection = yield* clientHandshake(link, { secret: new TextEncoder().encode(secret), nodeName: "n1", timeoutMs: 3000 })
    connection.close("test done")
    return "connected"
  }).pipe(Effect.catch((error: NetError) => Effect.succeed(error))))

/** Waits until `node` counted `reason` among its handshake failures (the server side logs it asynchronously). */
const refusedFor = async (node: ReplivolNode, reason: string, before: number) => {
  for (let i = 0; i < 200 && (node.stats().handshakeFailures[reason] ?? 0) <= before; i++) await new Promise((r) => setTimeout(r, 10))
  return (node.stats().handshakeFailures[reason] ?? 0) - before
}

const replicaUntouched = () => {
  const copy = stores.byPath.get(`/n2/copies/${volume}.img`) as MemoryStore
  const status = victim.hostedReplicas().find((r) => r.volume === volume)
  return { digest: copy.digest(), writes: status?.writesApplied ?? 0 }
}

test("a master with a certificate from the cluster CA replicates to the replica over TLS", async () => {
  const master = await start("n1", "127.0.0.1", tls(identities.get("n1")!))
  const data = new Uint8Array(64 * 1024).map((_, i) => (i * 7 + 1) & 0xff)
  const back = await run(Effect.gen(function* () {
    const v = yield* master.openVolume({ volume: "default/ok", sizeBytes, labels: { "storageos.com/replicas": "1" }, replicas: [{ node: "n2", address: victim.address }] })
    yield* v.write(4096, data)
    yield* v.flush
    return yield* v.read(4096, data.length)
  }))
  assert.equal(back, data)
  const digest = (node: string) => (stores.byPath.get(`/${node}/copies/default/ok.img`) as MemoryStore).digest()
  assert.is(digest("n2"), digest("n1"), "the replica holds what the master wrote")
  assert.is(await attempt(tls(identities.get("n1")!), "127.0.0.2"), "connected")
})

test("a client certificate from another CA is refused (server: tls-untrusted); nothing is written", async () => {
  const before = victim.stats().handshakeFailures["tls-untrusted"] ?? 0
  const untouched = replicaUntouched()
  const result = await attempt(tls(foreign.get("n1")!, ca.certPem), "127.0.0.2")
  assert.instance(result, NetError)
  assert.ok(["tls-refused", "tls-untrusted"].includes((result as NetError).reason), `client saw ${(result as NetError).reason}: ${(result as NetError).message}`)
  assert.is(await refusedFor(victim, "tls-untrusted", before), 1, JSON.stringify(victim.stats().handshakeFailures))
  assert.equal(replicaUntouched(), untouched)
})

test("an expired client certificate is refused (server: tls-expired)", async () => {
  const now = Date.now()
  const old = issueCertificate(ca, { commonName: "n1", ipAddresses: ["127.0.0.1"], dnsNames: ["n1"], notBeforeMs: now - 10 * dayMs, notAfterMs: now - dayMs, serial: new Uint8Array(16).fill(3) })
  const before = victim.stats().handshakeFailures["tls-expired"] ?? 0
  const result = await attempt(tls(old), "127.0.0.2")
  assert.instance(result, NetError)
  assert.ok(["tls-refused", "tls-expired"].includes((result as NetError).reason), (result as NetError).message)
  assert.is(await refusedFor(victim, "tls-expired", before), 1, JSON.stringify(victim.stats().handshakeFailures))
})

test("a server certificate from another CA, an expired one, or one naming another address is refused by the client", async () => {
  const strange = await start("n3", "127.0.0.3", tls(foreign.get("n3")!, ca.certPem))
  const fromOther = await attempt(tls(identities.get("n1")!), "127.0.0.3")
  assert.is((fromOther as NetError).reason, "tls-untrusted", String((fromOther as NetError).message))
  void strange
  const now = Date.now()
  const old = issueCertificate(ca, { commonName: "n6", ipAddresses: ["127.0.0.6"], notBeforeMs: now - 10 * dayMs, notAfterMs: now - dayMs, serial: new Uint8Array(16).fill(5) })
  await start("n6", "127.0.0.6", tls(old))
  const expired = await attempt(tls(identities.get("n1")!), "127.0.0.6")
  assert.is((expired as NetError).reason, "tls-expired", String((expired as NetError).message))
  // n5's certificate names 127.0.0.5; it listens on 127.0.0.7.
  await start("n7", "127.0.0.7", tls(identities.get("n5")!))
  const misnamed = await attempt(tls(identities.get("n1")!), "127.0.0.7")
  assert.is((misnamed as NetError).reason, "tls-name-mismatch", String((misnamed as NetError).message))
})

test("a plain TCP client on the TLS port is refused (server: tls-required); nothing is written", async () => {
  const before = victim.stats().handshakeFailures["tls-required"] ?? 0
  const untouched = replicaUntouched()
  const result = await attempt(tcpTransport, "127.0.0.2")
  assert.instance(result, NetError, "the plaintext client does not get in")
  assert.is(await refusedFor(victim, "tls-required", before), 1, JSON.stringify(victim.stats().handshakeFailures))
  assert.equal(replicaUntouched(), untouched)
})

test("a TLS client on a plaintext port: the client says tls-required, the plaintext node tls-unexpected", async () => {
  const before = plainNode.stats().handshakeFailures["tls-unexpected"] ?? 0
  const result = await attempt(tls(identities.get("n1")!), "127.0.0.4")
  assert.is((result as NetError).reason, "tls-required", String((result as NetError).message))
  assert.is(await refusedFor(plainNode, "tls-unexpected", before), 1, JSON.stringify(plainNode.stats().handshakeFailures))
  assert.is(plainNode.stats().connectionsAccepted, 0)
})

test.run()
