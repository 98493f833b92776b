/** The local cluster's in-memory links: they carry replication like TCP does, in order, and close like a socket; other dials still go out. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Exit, Layer, Scope } from "effect"
import { type Link, Transport } from "../../../lib/net/Transport.ts"
import { withInProcessLinks } from "../../../lib/platform/inProcessLinks.ts"
import { tcpTransport } from "../../../lib/platform/tcp.ts"
import { makeMemoryStores } from "../../../lib/store/Stores.ts"
import { startNode } from "../../../lib/node/node.ts"
import type { MemoryStore } from "../../../lib/store/memory.ts"

const test = suite("in-process links (local cluster)")
const secret = "test-secret-0123456789"
const port = 25713
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

test("a master and two replicas joined in memory: every copy gets the writes, and no TCP connection is made between them", async () => {
  const stores = makeMemoryStores()
  let tcpDials = 0
  const counted = Transport.of({ listen: tcpTransport.listen, dial: (address, options) => Effect.suspend(() => { tcpDials++; return tcpTransport.dial(address, options) }) })
  const program = Effect.scoped(Effect.gen(function* () {
    const n1 = yield* startNode({ name: "n1", address: { host: "127.0.0.1", port }, dataDir: "/n1", secret })
    const n2 = yield* startNode({ name: "n2", address: { host: "127.0.0.2", port }, dataDir: "/n2", secret })
    const n3 = yield* startNode({ name: "n3", address: { host: "127.0.0.3", port }, dataDir: "/n3", secret })
    const size = 8 << 20
    yield* n2.hostReplica("default/vol", size)
    yield* n3.hostReplica("default/vol", size)
    const volume = yield* n1.openVolume({
      volume: "default/vol", sizeBytes: size, labels: { "storageos.com/replicas": "2" },
      replicas: [{ node: "n2", address: n2.address }, { node: "n3", address: n3.address }],
    })
    assert.is((yield* volume.status).health, "healthy")
    const data = new Uint8Array(3 << 20).map((_, i) => (i * 31 + 7) & 0xff)
    yield* volume.write(12345, data)
    yield* Effect.forEach([0, 1, 2, 3, 4, 5, 6, 7], (i) => volume.write(1000 + i * 100, new Uint8Array(300).fill(i + 1)), { concurrency: "unbounded" })
    yield* volume.flush
    const digests = ["/n1", "/n2", "/n3"].map((d) => (stores.byPath.get(`${d}/copies/default/vol.img`) as MemoryStore).digest())
    assert.is(digests[1], digests[0])
    assert.is(digests[2], digests[0])
  }))
  await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(Layer.succeed(Transport, withInProcessLinks(counted)), stores.layer))))
  assert.is(tcpDials, 0, "no dial went to TCP")
})

test("bytes arrive in order, as sent (a buffer changed after send is not seen), and a close delivers what was sent before it", async () => {
  const links = withInProcessLinks(tcpTransport)
  const scope = Effect.runSync(Scope.make())
  const accepted: Link[] = []
  await Effect.runPromise(Scope.provide(scope)(links.listen({ host: "127.0.0.1", port: port + 1 }, (link) => void accepted.push(link))))
  const client = await Effect.runPromise(links.dial({ host: "127.0.0.1", port: port + 1 }))
  await turn()
  assert.is(accepted.length, 1)
  const server = accepted[0]!
  const received: number[] = []
  server.onData((chunk) => received.push(...chunk))
  const reused = new Uint8Array([1, 2, 3])
  client.send([reused, new Uint8Array([4])])
  reused.fill(9)
  client.send([new Uint8Array([5, 6])])
  let serverClosed = ""
  server.onClose((reason) => void (serverClosed = reason))
  client.close("done")
  assert.is(client.isOpen(), false)
  assert.is(client.send([new Uint8Array([7])]), false, "a closed link refuses sends")
  await turn()
  assert.equal(received, [1, 2, 3, 4, 5, 6])
  assert.is(serverClosed, "closed by peer")
  assert.is(server.isOpen(), false)
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

test("closing the listener's scope closes the links it accepted; a dial afterwards goes to the wrapped transport (refused: nothing listens)", async () => {
  const links = withInProcessLinks(tcpTransport)
  const scope = Effect.runSync(Scope.make())
  await Effect.runPromise(Scope.provide(scope)(links.listen({ host: "127.0.0.1", port: port + 2 }, () => undefined)))
  const client = await Effect.runPromise(links.dial({ host: "127.0.0.1", port: port + 2 }))
  await turn()
  let closed = ""
  client.onClose((reason) => void (closed = reason))
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await turn()
  assert.is(closed, "closed by peer")
  assert.is(client.isOpen(), false)
  const again = await Effect.runPromise(Effect.result(links.dial({ host: "127.0.0.1", port: port + 2 }, { timeoutMs: 2_000 })))
  assert.is(again._tag, "Failure")
  if (again._tag === "Failure") assert.is(again.failure.reason, "refused")
})

test.run()
