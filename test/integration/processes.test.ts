/**
 * Master and two replicas as three OS processes on 127.0.0.1/2/3, port 5703 each.
 * 64 MiB of random writes → the three backing files are byte-identical and every read returns
 * what was written; then SIGKILL a replica mid-workload: soft mode keeps completing writes, hard
 * mode refuses them with VolumeUnavailable, and no acknowledged write is missing from the master
 * or the surviving replica.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { createHash } from "node:crypto"
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { patternBytes } from "../support/pattern.ts"
import { spawnTs, type Child } from "../support/processes.ts"
import { Effect } from "effect"
import { ensureLocalPki } from "../../lib/platform/certificates.ts"

const test = suite("three node processes over TCP 5703")
const script = "test/support/node-process.ts"
const secret = "integration-secret-0123456789"
const volume = "default/vol"
const sizeBytes = 128 * 1024 * 1024
let children: Child[] = []
let dirs: string[] = []

test.after.each(async () => {
  for (const child of children) child.kill("SIGKILL")
  await Promise.all(children.map((c) => c.exited))
  children = []
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  dirs = []
})

const startCluster = async (mode: string) => {
  const base = await mkdtemp(join(tmpdir(), "replivol-it-"))
  dirs.push(base)
  await Effect.runPromise(ensureLocalPki(join(base, "tls"), [1, 2, 3].map((i) => ({ name: `n${i}`, host: `127.0.0.${i}` }))))
  const common = ["--tls-dir", join(base, "tls"), "--secret", secret, "--volume", volume, "--size", String(sizeBytes), "--ack-timeout-ms", "1000"]
  const replicas = [2, 3].map((i) => spawnTs(script, ["replica", "--name", `n${i}`, "--host", `127.0.0.${i}`, "--data", join(base, `n${i}`), ...common]))
  children.push(...replicas)
  await Promise.all(replicas.map((r) => r.next("ready", 30_000)))
  const master = spawnTs(script, ["master", "--name", "n1", "--host", "127.0.0.1", "--data", join(base, "n1"), "--mode", mode, "--replicas", "n2=127.0.0.2,n3=127.0.0.3", ...common])
  children.push(master)
  const ready = await master.next("ready", 30_000)
  const file = (i: number) => join(base, `n${i}`, "copies", `${volume}.img`)
  return { master, replicas, ready, file }
}

const sha256 = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex")

const readRegion = async (path: string, offset: number, length: number) => {
  const handle = await open(path, "r")
  try {
    const buffer = Buffer.alloc(length)
    await handle.read(buffer, 0, length, offset)
    return buffer
  } finally {
    await handle.close()
  }
}

test("64 MiB of random writes: three identical files, reads return what was written", async () => {
  const { master, file, ready } = await startCluster("soft")
  assert.is((ready.status as { health: string }).health, "healthy")
  master.send({ cmd: "random", bytes: 64 * 1024 * 1024, seed: 42 })
  const done = await master.next("random-done", 240_000)
  assert.is(done.mismatches, 0, "every read returns what was written")
  assert.ok(Number(done.bytes) >= 64 * 1024 * 1024)
  const [a, b, c] = await Promise.all([sha256(file(1)), sha256(file(2)), sha256(file(3))])
  assert.is(b, a, "replica n2 is byte-identical to the master")
  assert.is(c, a, "replica n3 is byte-identical to the master")
})

const killDuringBlocks = async (mode: string) => {
  const { master, replicas, file } = await startCluster(mode)
  const blockBytes = 64 * 1024
  master.send({ cmd: "blocks", seed: 7, blockBytes, first: 0, count: 1500, concurrency: 4 })
  await master.next("progress", 60_000)
  replicas[1]!.kill("SIGKILL")
  const killedAt = master.events.filter((e) => e.event === "progress").length
  const done = await master.next("blocks-done", 120_000)
  const acked = done.acked as number[]
  const failed = done.failed as Record<string, number>
  // No acknowledged write is missing from the master or the surviving replica.
  let missing = 0
  for (const index of acked) {
    const expected = Buffer.from(patternBytes(7, index, blockBytes))
    for (const i of [1, 2]) if (!(await readRegion(file(i), index * blockBytes, blockBytes)).equals(expected)) missing++
  }
  return { acked, failed, missing, killedAt, status: done.status as { health: string } }
}

test("soft mode (tolerance 1): SIGKILL a replica mid-workload, writes keep completing", async () => {
  const { acked, failed, missing, status } = await killDuringBlocks("soft")
  assert.is(missing, 0, "acknowledged writes are on the master and the surviving replica")
  assert.equal(failed, {}, "no write failed")
  assert.is(acked.length, 1500)
  assert.is(status.health, "degraded")
})

test("hard mode: SIGKILL a replica mid-workload, writes fail with VolumeUnavailable", async () => {
  const { acked, failed, missing, status } = await killDuringBlocks("hard")
  assert.is(missing, 0, "acknowledged writes are on the master and the surviving replica")
  assert.ok((failed.VolumeUnavailable ?? 0) > 0, `writes after the kill fail with VolumeUnavailable (got ${JSON.stringify(failed)})`)
  assert.equal(Object.keys(failed), ["VolumeUnavailable"])
  assert.ok(acked.length > 0 && acked.length < 1500)
  assert.is(status.health, "unavailable")
})

test.run()
