/**
 * Encryption at rest on a real local cluster (4 nodes, file stores, real TCP): a known pattern
 * written to an encrypted volume through a volume handle is on no copy's backing file (and is on
 * every copy of a plain volume: the search can fail); reads give it back, before and after the
 * master's node is killed and its replica promoted; verify finds the copies equal. A node given
 * no key, or another key, neither creates nor serves an encrypted volume and says why; the label
 * cannot be changed after creation; the control store never holds the unwrapping key.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLocalCluster, type LocalClusterHandle } from "../../lib/cli/localCluster.ts"
import type { VolumeInfo } from "../../lib/cluster/clusterNode.ts"
import { newKeyFileText, parseKeyFile, type KeyRing } from "../../lib/crypt/keys.ts"
import type { CryptoPrimitives } from "../../lib/crypt/primitives.ts"
import { nodeCrypto } from "../../lib/platform/nodeCrypto.ts"

const test = suite("encryption at rest on a local cluster")
const dir = mkdtempSync(join(tmpdir(), "replivol-encryption-"))
const crypto = nodeCrypto() as CryptoPrimitives
const keyText = newKeyFileText(crypto)
const ring = (text: string | undefined, source: string): KeyRing => ({ crypto, unwrappingKey: text === undefined ? undefined : (parseKeyFile(text, source) as Uint8Array), source })
const good = ring(keyText, "key file A")
const sizeBytes = 8 << 20
const pattern = new TextEncoder().encode("REPLIVOL-AT-REST-PATTERN-7d1e9c|")
const patternFill = (length: number) => Uint8Array.from({ length }, (_, i) => pattern[i % pattern.length]!)
let cluster: LocalClusterHandle

test.before(async () => {
  cluster = await createLocalCluster({
    nodes: 4, hostBase: "127.0.47.", port: 27303, dataDir: dir, node: { leaseTtlMs: 1500 },
    nodeKeyRings: { n1: good, n2: good, n3: ring(undefined, "no --encryption-key-file was given"), n4: ring(newKeyFileText(crypto), "key file B") },
  })
  // The first volumes go on n1 and n2 only (both have the key), so the failover below promotes a node that can serve.
  for (const n of ["n3", "n4"]) await setCordon(n, true)
})
test.after(async () => {
  await cluster?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Cordons or uncordons a node through its own API. */
const setCordon = (name: string, cordoned: boolean) => Effect.runPromise(cluster.effect.node(name)!.configureNode(name, { cordoned }))

const copyOf = (node: string, volume: string) => readFileSync(join(dir, node, "copies", `${volume}.img`))
const holdsPattern = (node: string, volume: string) => copyOf(node, volume).indexOf(pattern.subarray(0, 24)) >= 0
const waitFor = async (volume: string, what: string, timeoutMs: number, check: (info: VolumeInfo) => boolean) => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const info = await cluster.inspectVolume(volume).catch(() => undefined)
    if (info && check(info)) return info
    if (performance.now() > deadline) throw new Error(`${volume}: not ${what} within ${timeoutMs} ms: ${JSON.stringify(info)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
const eventsOf = (node: string, kind: string, volume: string) => cluster.effect.node(node)!.recentEvents().filter((e) => e.kind === kind && e.volume === volume)

/** Writes the pattern at an aligned and an unaligned place (through a handle on another node), flushes; the model. */
const writePattern = async (volume: string) => {
  const handle = await cluster.openVolume(volume)
  const model = new Uint8Array(sizeBytes)
  for (const [offset, length] of [[0, 1 << 20], [3_000_001, 70_000]] as const) {
    const data = patternFill(length)
    await handle.write(offset, data)
    model.set(data, offset)
  }
  await handle.flush()
  return { handle, model }
}

test("a known pattern is on no copy of an encrypted volume (and on every copy of a plain one); reads, failover and verify work", async () => {
  await cluster.createVolume("sec/plain", sizeBytes, { "storageos.com/replicas": "1", "storageos.com/hint.master": "n1" })
  const created = await cluster.createVolume("sec/enc", sizeBytes, { "storageos.com/replicas": "1", "storageos.com/hint.master": "n1", "storageos.com/encryption": "true" })
  assert.is(created.labels["storageos.com/encryption"], "true")
  for (const volume of ["sec/plain", "sec/enc"]) await cluster.waitHealthy(volume, 30_000)
  const plain = await writePattern("sec/plain")
  const enc = await writePattern("sec/enc")
  await plain.handle.close()
  assert.equal([holdsPattern("n1", "sec/plain"), holdsPattern("n2", "sec/plain")], [true, true], "the plain volume's copies hold the pattern: the search finds it")
  assert.equal([holdsPattern("n1", "sec/enc"), holdsPattern("n2", "sec/enc")], [false, false], "no copy of the encrypted volume holds it")
  assert.equal(copyOf("n1", "sec/enc"), copyOf("n2", "sec/enc"), "master and replica hold the same ciphertext")
  assert.equal(await enc.handle.read(0, sizeBytes), enc.model, "reads give the plaintext")
  const report = await cluster.verifyVolume("sec/enc")
  assert.is(report.differencesFound, 0)
  // Failover: the master's node dies; the replica on n2 (it has the key) is promoted and reads the plaintext.
  await cluster.killNode("n1")
  await waitFor("sec/enc", "served by n2", 30_000, (info) => info.master === "n2" && info.usable)
  assert.equal(await enc.handle.read(0, sizeBytes), enc.model, "after the failover reads still give the plaintext")
  await enc.handle.write(5000, patternFill(100))
  await enc.handle.flush()
  assert.not.ok(holdsPattern("n2", "sec/enc"))
  await enc.handle.close()
  await cluster.reviveNode("n1")
  const control = readFileSync(join(dir, "control.json"), "utf8")
  assert.not.ok(control.toLowerCase().includes(keyText), "the control store never holds the unwrapping key")
  assert.match(control, /replivol\/nskeys\/sec/)
})

test("a node without the key, or with another key, refuses to create or serve an encrypted volume, saying why", async () => {
  for (const n of ["n3", "n4"]) await setCordon(n, false)
  const viaNoKey = await Effect.runPromise(Effect.flip(cluster.effect.node("n3")!.createVolume({ volume: "sec/refused", sizeBytes, labels: { "storageos.com/encryption": "true" } })))
  assert.is(viaNoKey._tag, "EncryptionError")
  assert.is((viaNoKey as { reason: string }).reason, "no-key")
  assert.match(viaNoKey.message, /--encryption-key-file/)
  const viaOther = await Effect.runPromise(Effect.flip(cluster.effect.node("n4")!.createVolume({ volume: "sec/refused", sizeBytes, labels: { "storageos.com/encryption": "true" } })))
  assert.is((viaOther as { reason: string }).reason, "wrong-key")
  const missing = await cluster.inspectVolume("sec/refused").then(() => undefined, (e: { reason?: string }) => e)
  assert.is(missing?.reason, "not-found", "nothing was created")
  // Masters placed on them (hint.master) do not serve: an event says why, and no master lease is taken.
  for (const [node, reason] of [["n3", "no-key"], ["n4", "wrong-key"]] as const) {
    const volume = `sec/on-${node}`
    await cluster.createVolume(volume, sizeBytes, { "storageos.com/hint.master": node, "storageos.com/encryption": "true" })
    const deadline = performance.now() + 10_000
    while (eventsOf(node, "master-refused", volume).length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    const refused = eventsOf(node, "master-refused", volume)
    assert.ok(refused.length > 0, `${node} published no master-refused event for ${volume}`)
    assert.match(refused[0]!.message, new RegExp(`cannot serve ${volume} \\(${reason}\\)`))
    assert.not.ok(eventsOf(node, "master-serving", volume).length > 0, `${node} must not serve ${volume}`)
  }
  assert.match(eventsOf("n4", "master-refused", "sec/on-n4")[0]!.message, /check value [0-9a-f]{16}.*check value [0-9a-f]{16}/)
})

test("storageos.com/encryption is chosen at creation: turning it off, removing it, or turning it on later is refused and changes nothing", async () => {
  for (const change of [{ setLabels: { "storageos.com/encryption": "false" } }, { removeLabels: ["storageos.com/encryption"] }]) {
    const error = await cluster.updateVolume("sec/enc", change).then(() => undefined, (e: { reason?: string; message: string }) => e)
    assert.is(error?.reason, "immutable")
    assert.match(error?.message ?? "", /cannot be changed after creation/)
  }
  const on = await cluster.updateVolume("sec/plain", { setLabels: { "storageos.com/encryption": "true" } }).then(() => undefined, (e: { reason?: string }) => e)
  assert.is(on?.reason, "immutable")
  assert.is((await cluster.inspectVolume("sec/enc")).labels["storageos.com/encryption"], "true")
  assert.is((await cluster.inspectVolume("sec/plain")).labels["storageos.com/encryption"], undefined)
})

test.run()
