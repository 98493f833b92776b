/**
 * The admin API's probes and /metrics on a live 3-node local cluster (real TCP on loopback): after
 * 4 KiB writes, reads and a flush through a volume handle, the whole /metrics output parses, every
 * family has HELP and TYPE and summable labels, and the frontend, network and backend histograms
 * counted what was done; /readyz turns 503 when no node runs.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Exit, Scope } from "effect"
import { createLocalCluster, type LocalClusterHandle } from "../../lib/cli/localCluster.ts"
import { makeMetrics } from "../../lib/core/metrics.ts"
import { serveAdmin } from "../../lib/platform/adminHttp.ts"
import { checkExposition, parsePrometheus } from "../support/prometheus.ts"

const test = suite("admin API: probes and /metrics on a local cluster")
const token = "metrics-test-token-0123456789"
const writeCount = 64
let cluster: LocalClusterHandle
let scope: Scope.Closeable
let api = ""

test.before(async () => {
  cluster = await createLocalCluster({ nodes: 3, hostBase: "127.0.31.", port: 31703, metrics: makeMetrics() })
  scope = Effect.runSync(Scope.make())
  const c = cluster.effect
  const server = await Effect.runPromise(serveAdmin("127.0.0.1:0", { node: () => c.node(), events: c.events, metrics: c.metrics, token, local: c.control }).pipe(Scope.provide(scope)))
  api = server.address
})

test.after(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await cluster.close()
})

const get = async (path: string, withToken = false) => {
  const response = await fetch(`http://${api}${path}`, withToken ? { headers: { authorization: `Bearer ${token}` } } : {})
  return { status: response.status, text: await response.text() }
}

test("/healthz and /readyz answer without a token once the nodes are registered", async () => {
  assert.equal(await get("/healthz"), { status: 200, text: JSON.stringify({ status: "ok" }) })
  const ready = await get("/readyz")
  assert.is(ready.status, 200, ready.text)
  const body = JSON.parse(ready.text)
  assert.is(body.ready, true)
  assert.equal(body.checks.map((c: { name: string }) => c.name), ["node-running", "control-store", "node-registered"])
})

test("writes, reads and a flush show in the frontend, network and backend histograms; the whole output is well-formed", async () => {
  await cluster.createVolume("m/v", 16 << 20, { "storageos.com/replicas": "1" })
  await cluster.waitHealthy("m/v", 30_000)
  const volume = await cluster.openVolume("m/v")
  const block = new Uint8Array(4096).fill(7)
  for (let i = 0; i < writeCount; i++) await volume.write(i * 4096, block)
  await volume.flush()
  for (let i = 0; i < 8; i++) await volume.read(i * 4096, 4096)
  await volume.close()
  await new Promise((resolve) => setTimeout(resolve, 1200)) // one gauge refresh (health)
  const metrics = await get("/metrics")
  assert.is(metrics.status, 200)
  assert.equal(checkExposition(metrics.text), [])
  const { families } = parsePrometheus(metrics.text)
  const count = (family: string, op: string) =>
    families.get(family)?.samples.find((s) => s.name === `${family}_count` && s.labels.volume === "m/v" && s.labels.op === op)?.value ?? 0
  assert.ok(count("replivol_frontend_latency_seconds", "write") >= writeCount, `frontend writes ${count("replivol_frontend_latency_seconds", "write")}`)
  assert.ok(count("replivol_frontend_latency_seconds", "read") >= 8)
  assert.ok(count("replivol_frontend_latency_seconds", "flush") >= 1)
  assert.ok(count("replivol_network_latency_seconds", "write") >= writeCount, `network writes ${count("replivol_network_latency_seconds", "write")}`)
  assert.ok(count("replivol_network_latency_seconds", "flush") >= 1)
  assert.ok(count("replivol_backend_latency_seconds", "write") >= 2 * writeCount, "master and replica copies both write")
  assert.ok(count("replivol_backend_latency_seconds", "flush") >= 2)
  for (const gauge of ["replivol_process_heap_used_bytes", "replivol_process_resident_memory_bytes", "replivol_process_event_loop_delay_p99_seconds"]) {
    assert.ok(families.get(gauge)?.samples[0]?.value !== undefined, `${gauge} is exported`)
  }
  assert.ok(families.get("replivol_process_resident_memory_bytes")!.samples[0]!.value > 1 << 20)
  assert.is(families.get("replivol_volume_health")?.samples.find((s) => s.labels.volume === "m/v")?.value, 0)
  assert.not.ok(metrics.text.includes("kind="), "no kind label anywhere")
})

test("/v1/health lists the control store, every node and the volume", async () => {
  const health = await get("/v1/health", true)
  assert.is(health.status, 200, health.text)
  const body = JSON.parse(health.text)
  assert.is(body.controlStore.reachable, true)
  assert.equal(body.nodes.map((n: { name: string; state: string }) => [n.name, n.state]), [["n1", "up"], ["n2", "up"], ["n3", "up"]])
  assert.equal(body.volumes.map((v: { volume: string; health: string; replicasInSync: number; replicasRequested: number }) => [v.volume, v.health, v.replicasInSync, v.replicasRequested]), [["m/v", "healthy", 1, 1]])
  assert.is(body.healthy, true)
})

test("/readyz is 503 once no node of the process runs", async () => {
  for (const name of cluster.names) await cluster.killNode(name)
  const ready = await get("/readyz")
  assert.is(ready.status, 503)
  assert.is(JSON.parse(ready.text).checks[0].name, "node-running")
  assert.is((await get("/healthz")).status, 200, "the process itself is alive")
})

test.run()
