/** `replivol volume verify [--repair]` against a `cluster up` child: clean copies pass; a replica's file corrupted behind its back is found, its metric set, and --repair makes it equal again. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { open } from "node:fs/promises"
import { join } from "node:path"
import { checkExposition } from "../support/prometheus.ts"
import { startUp, type UpCluster } from "./support.ts"

const test = suite("replivol volume verify against cluster up")
let up: UpCluster
const MiB = 1024 * 1024
const corruptAt = 3 * MiB + 12345

test.before(async () => {
  up = await startUp({ hostBase: "127.0.14.", port: 27703, apiPort: 27705, extra: ["--no-mount"] })
})

test.after(async () => {
  assert.is(await up?.stop(), 0, "cluster up exits 0 on SIGTERM")
})

const metric = async (name: string, volume: string): Promise<number | undefined> => {
  const text = await (await fetch(`http://${up.api}/metrics`)).text()
  assert.equal(checkExposition(text), [], "the exposition is well formed")
  const line = text.split("\n").find((l) => l.startsWith(`${name}{volume="${volume}"}`))
  return line === undefined ? undefined : Number(line.split(" ").pop())
}

const replicaFile = async (volume: string) => {
  const inspected = await up.cli("volume", "inspect", volume, "--json")
  assert.is(inspected.code, 0, inspected.stderr)
  const info = JSON.parse(inspected.stdout) as { replicas: Array<{ node: string; state: string }> }
  const replica = info.replicas.find((r) => r.state === "in-sync")!
  return { node: replica.node, path: join(up.data, replica.node, "copies", `${volume}.img`) }
}

test("identical copies verify clean (exit 0); a corrupted replica is named with its region (exit 1); --repair fixes it", async () => {
  const created = await up.cli("volume", "create", "vfy/db", "--size", "8MiB", "--label", "storageos.com/replicas=2")
  assert.is(created.code, 0, created.stderr)
  const healthy = await up.cli("volume", "inspect", "vfy/db", "--watch", "--timeout", "60")
  assert.is(healthy.code, 0, healthy.stderr)

  const clean = await up.cli("volume", "verify", "vfy/db")
  assert.is(clean.code, 0, clean.stderr)
  assert.match(clean.stdout, /verifying vfy\/db \[#+\] 100% 8 MiB\/8 MiB/)
  assert.match(clean.stdout, "differing regions: 0")
  assert.is(await metric("replivol_volume_verify_differing_regions", "vfy/db"), 0)

  // Behind the cluster's back: bytes written straight into one replica's backing file.
  const { node, path } = await replicaFile("vfy/db")
  const file = await open(path, "r+")
  await file.write(new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 0, 4, corruptAt)
  await file.close()

  const found = await up.cli("volume", "verify", "vfy/db", "--json")
  assert.is(found.code, 1, "differences found: exit 1")
  assert.match(found.stderr, /^replivol: 1 regions of vfy\/db differ from its master; repair them with: replivol volume verify vfy\/db --repair/m)
  const report = JSON.parse(found.stdout) as { differences: Array<{ node: string; offset: number; length: number }>; copies: Array<{ node: string; state: string }> }
  assert.equal(report.differences.map((d) => `${d.node}@${d.offset}+${d.length}`), [`${node}@${3 * MiB}+${MiB}`])
  assert.is(report.copies.length, 2)
  assert.is(await metric("replivol_volume_verify_differing_regions", "vfy/db"), 1)

  const repaired = await up.cli("volume", "verify", "vfy/db", "--repair")
  assert.is(repaired.code, 0, repaired.stderr)
  assert.match(repaired.stdout, "differing regions: 0 (found 1, repaired 1)")
  const bytes = new Uint8Array(4)
  const check = await open(path, "r")
  await check.read(bytes, 0, 4, corruptAt)
  await check.close()
  assert.equal([...bytes], [0, 0, 0, 0], "the replica holds the master's bytes again")
  assert.is(await metric("replivol_volume_verify_differing_regions", "vfy/db"), 0)
  assert.ok((await metric("replivol_volume_verify_last_success_timestamp_seconds", "vfy/db"))! > 1_700_000_000)

  const again = await up.cli("volume", "verify", "vfy/db")
  assert.is(again.code, 0, again.stderr)
})

test("verify of a volume that does not exist fails with a reason (exit 1); a bad flag is a usage error (exit 2)", async () => {
  const missing = await up.cli("volume", "verify", "vfy/nope")
  assert.is(missing.code, 1)
  assert.match(missing.stderr, "volume vfy/nope does not exist")
  const bad = await up.cli("volume", "verify", "vfy/db", "--timeout", "0")
  assert.is(bad.code, 2)
})

test.run()
