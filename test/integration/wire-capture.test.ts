/**
 * What crosses the network: a local cluster (3 nodes on 127.0.0.1..3:29803) whose every node-to-node
 * and client-to-master connection goes through a recording TCP proxy (127.0.0.x:29804 → :29803),
 * while a known pattern is written to a `storageos.com/nocompress=true` volume. With TLS (the
 * default) the pattern never appears in the recorded bytes; with `--insecure-plaintext` it does,
 * which shows the search can fail.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Exit, Layer, Scope } from "effect"
import { layerMemory } from "../../lib/control/embedded.ts"
import { localMembers, startLocalCluster } from "../../lib/cli/localCluster.ts"
import { Transport } from "../../lib/net/Transport.ts"
import { localClusterTransport } from "../../lib/platform/nodeTransport.ts"
import { makeMemoryStores } from "../../lib/store/Stores.ts"
import { startRecordingProxy, type RecordingProxy } from "../support/recordingProxy.ts"

const test = suite("wire capture: TLS hides volume data, plaintext shows it")
const port = 29803
const proxyPort = 29804
const motif = Buffer.from("REPLIVOL-CAPTURE-PATTERN-7f3a9c1e") // 33 bytes, never produced by chance
const pattern = new Uint8Array(256 * 1024).map((_, i) => motif[i % motif.length]!)

/** Runs the cluster with or without TLS, writes the pattern, returns what the proxies recorded. */
const capture = async (tls: "tls" | "plaintext") => {
  const members = localMembers(3)
  const { layer } = await Effect.runPromise(localClusterTransport(members, undefined, tls === "plaintext" ? "insecure-plaintext" : undefined, () => Effect.void))
  const real = await Effect.runPromise(Effect.provide(Effect.service(Transport), layer))
  const proxies: RecordingProxy[] = []
  for (const member of members) proxies.push(await startRecordingProxy({ host: member.host, port: proxyPort }, { host: member.host, port }))
  // Every dial goes to the proxy on the same host (so certificates still name the address dialed).
  const viaProxy = Transport.of({ listen: real.listen, dial: (address, options) => real.dial({ host: address.host, port: proxyPort }, options) })
  const scope = Effect.runSync(Scope.make())
  try {
    const written = await Effect.runPromise(Effect.gen(function* () {
      const cluster = yield* startLocalCluster({ nodes: 3, port, dataDir: "/memory", secret: "capture-test-secret-0123456789", node: { inProcessShortcut: false, leaseTtlMs: 2000 } })
      const n1 = cluster.node("n1")!
      yield* n1.createVolume({ volume: "default/capture", sizeBytes: 16 << 20, labels: { "storageos.com/replicas": "2", "storageos.com/nocompress": "true" } })
      const healthy = yield* n1.waitHealthy("default/capture", 20_000)
      const via = cluster.names.find((n) => n !== healthy.master)!
      const volume = yield* cluster.node(via)!.openVolume("default/capture")
      for (let i = 0; i < 4; i++) yield* volume.write(i * pattern.length, pattern)
      yield* volume.flush
      return yield* volume.read(pattern.length, pattern.length)
    }).pipe(Scope.provide(scope), Effect.provideService(Transport, viaProxy), Effect.provide(Layer.merge(makeMemoryStores().layer, layerMemory))))
    assert.equal(written, pattern, "the volume holds the pattern")
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    for (const proxy of proxies) await proxy.close()
  }
  const recorded = Buffer.concat(proxies.map((p) => p.recorded()))
  return { recorded, connections: proxies.reduce((sum, p) => sum + p.connections(), 0) }
}

test("with TLS the pattern never appears on the wire, though every copy of it crossed the proxies", async () => {
  const { recorded, connections } = await capture("tls")
  assert.ok(connections >= 2, `the nodes talked through the proxies (${connections} connections)`)
  // 4 × 256 KiB to two replicas, plus the client's writes to the master: at least 3 MiB crossed.
  assert.ok(recorded.length > 3 * 4 * pattern.length * 0.9, `recorded ${recorded.length} bytes`)
  assert.is(recorded.indexOf(motif), -1, "the pattern is not in the captured bytes")
  assert.ok(recorded.includes(Buffer.from([0x17, 0x03, 0x03])), "the capture holds TLS application-data records")
})

test("with --insecure-plaintext the same capture shows the pattern (the search can fail)", async () => {
  const { recorded } = await capture("plaintext")
  assert.ok(recorded.indexOf(motif) >= 0, "the pattern crossed the network in the clear")
})

test.run()
