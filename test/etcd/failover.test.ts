/**
 * Four node processes on 127.0.0.1..4:5703 sharing a real etcd; a volume with replicas=2; a
 * workload process writing numbered blocks. SIGKILL the master's process mid-workload: writes
 * resume on the new master, no acknowledged write is lost, a new replica is placed and reaches
 * in-sync, and the copies end byte-identical. Prints the time from the kill to the first
 * successful write after it.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { layerEtcd } from "../../lib/platform/etcdControlStore.ts"
import { layerTcp } from "../../lib/platform/tcp.ts"
import { ensureLocalPki } from "../../lib/platform/certificates.ts"
import { makeClusterClient } from "../../lib/cluster/client.ts"
import { ControlStore } from "../../lib/control/ControlStore.ts"
import { keys, encode, type VolumeRecord } from "../../lib/cluster/records.ts"
import { validateLabels } from "../../lib/volume/labels.ts"
import { startEtcd, type TestEtcd } from "../support/etcd.ts"
import { spawnTs, type Child } from "../support/processes.ts"

const test = suite("failover with etcd and real processes")
const secret = "etcd-failover-secret-0123456789"
/** Nodes listen on <base>1..4 port 5703 (override the base to run beside another cluster on this machine). */
const hostBase = process.env.TEST_HOST_BASE ?? "127.0.0."
let etcd: TestEtcd
let base: string
let children: Child[] = []

test.before(async () => {
  etcd = await startEtcd()
  base = await mkdtemp(join(tmpdir(), "replivol-etcd-"))
  await Effect.runPromise(ensureLocalPki(join(base, "tls"), [...[1, 2, 3, 4].map((i) => ({ name: `n${i}`, host: `${hostBase}${i}` })), { name: "workload", host: "127.0.0.1" }]))
})
test.after(async () => {
  for (const child of children) child.kill("SIGKILL")
  await Promise.all(children.map((c) => c.exited))
  await etcd?.stop()
  await rm(base, { recursive: true, force: true })
})

const inCluster = <A, E>(effect: Effect.Effect<A, E, ControlStore | import("../../lib/net/Transport.ts").Transport>) =>
  Effect.runPromise(effect.pipe(Effect.provide(Layer.mergeAll(layerTcp, layerEtcd({ hosts: etcd.endpoints })))) as Effect.Effect<A, E>)

const inspect = (volume: string) =>
  inCluster(Effect.flatMap(makeClusterClient({ name: "tester", secret }), (c) => c.inspectVolume(volume)))

const waitFor = async <A>(what: string, timeoutMs: number, probe: () => Promise<A | undefined>): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test("SIGKILL the master: writes resume on a new master, nothing acknowledged is lost, copies converge", async () => {
  const nodes = [1, 2, 3, 4].map((i) =>
    spawnTs("test/support/cluster-node-process.ts", ["--name", `n${i}`, "--host", `${hostBase}${i}`, "--data", join(base, `n${i}`), "--etcd", etcd.endpoints, "--secret", secret, "--lease-ttl-ms", "1000", "--ack-timeout-ms", "1000", "--tls-dir", join(base, "tls")]))
  children.push(...nodes)
  await Promise.all(nodes.map((n) => n.next("ready", 30_000)))
  // Create the volume record the way the API does (placement by the first node's API would also do).
  const volume = "default/db"
  const spec = validateLabels({ "storageos.com/replicas": "2" })
  if ("_tag" in spec) throw spec
  const record: VolumeRecord = { volume, sizeBytes: 64 << 20, labels: { "storageos.com/replicas": "2" }, spec, createdAtMs: Date.now(), epoch: 1, master: "n1", replicas: [{ node: "n2", state: "provisioned" }, { node: "n3", state: "provisioned" }], rulesApplied: [] }
  await inCluster(ControlStore.use((s) => s.put(keys.volume(volume), encode(record))))
  const dump = () => nodes.map((n, i) => `n${i + 1}: ${n.events.slice(-8).map((e) => `${e.kind}: ${e.message}`).join(" | ")} ${n.stderr().slice(-500)}`).join("\n")
  const healthy = await waitFor("healthy", 30_000, async () => { const i = await inspect(volume); return i.health === "healthy" ? i : undefined }).catch((e) => { throw new Error(`${e.message}\n${dump()}`) })
  assert.is(healthy.master, "n1")

  const workload = spawnTs("test/support/cluster-workload.ts", ["--etcd", etcd.endpoints, "--tls-dir", join(base, "tls"), "--secret", secret, "--volume", volume, "--block-bytes", "65536", "--count", "600", "--seed", "9"])
  children.push(workload)
  for (let i = 0; i < 100; i++) await workload.next("ack", 30_000)
  const master = nodes[0]!
  const killedAt = Date.now()
  master.kill("SIGKILL")
  const firstAfter = await workload.next("ack", 60_000)
  const pauseMs = Number(firstAfter.atMs) - killedAt
  const done = await workload.next("done", 120_000)
  console.log(`\n    kill → first successful write: ${pauseMs} ms; ${done.acked} acknowledged, ${JSON.stringify(done.failed)} failed, ${done.retries} retries`)
  assert.is(done.mismatches, 0, "every acknowledged block reads back")
  assert.equal(done.failed, {}, "no write failed: the application saw a pause, not an error")
  const after = await waitFor("healthy with a new master and replica", 60_000, async () => {
    const i = await inspect(volume)
    return i.health === "healthy" && i.master !== "n1" && i.replicas.every((r) => r.node !== "n1" && r.state === "in-sync") ? i : undefined
  })
  assert.ok(after.epoch > healthy.epoch)
  const copies = [after.master!, ...after.replicas.map((r) => r.node)]
  assert.ok(copies.includes("n4") || copies.length === 3, "a new replica was placed")
  const digests = await Promise.all(copies.map(async (n) => createHash("sha256").update(await readFile(join(base, n, "copies", `${volume}.img`))).digest("hex")))
  assert.ok(digests.every((d) => d === digests[0]), `copies are byte-identical: ${copies.join(", ")}`)
})

test.run()
