/**
 * Deterministic simulation of the whole cluster (lib/testing/clusterSim.ts): 5 nodes, 3 volumes
 * (one big and sparse), writers up to 32 deep, and every fault drawn from the seed — crashes,
 * power losses, wiped disks, disks restored from older images, partitions, resets, slow links, bit
 * flips, store errors (EIO, ENOSPC, torn writes, failed fdatasync), wall-clock steps, pauses longer
 * than a lease, control-store latency, volumes deleted and created again while a node is away.
 * CLUSTER_SIM_SEEDS=n (default 500) seeds run in SIM_WORKERS worker processes (default 2, the
 * machine's two cores); SEED=n replays exactly one seed in this process. Failing seeds print their
 * replay command. Named scenarios (bugs the simulator found) are in cluster-scenarios.test.ts.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { runClusterSim, type ClusterSimResult, type Sabotage, type ViolationKind } from "../../lib/testing/clusterSim.ts"
import type { CryptoPrimitives } from "../../lib/crypt/primitives.ts"
import { nodeCrypto } from "../../lib/platform/nodeCrypto.ts"

const test = suite("cluster simulation")
const root = fileURLToPath(new URL("../../", import.meta.url))
const only = process.env.SEED === undefined ? undefined : Number(process.env.SEED)
const seedCount = Number(process.env.CLUSTER_SIM_SEEDS ?? 500)
const workers = Math.max(1, Number(process.env.SIM_WORKERS ?? 2))
const isBun = typeof (process.versions as Record<string, string | undefined>).bun === "string"
/** With this many seeds, every kind of fault must have been injected somewhere. */
const seedsForEveryFault = 200
const faultKinds = ["crash", "power-loss", "wipe", "restore", "isolate", "block", "reset", "clock-step", "pause", "latency", "recreate", "store-write", "store-write-torn", "store-flush", "store-flush-drop", "store-read", "store-writeMeta", "store-readMeta"]

const runWorker = (first: number, count: number, stride: number) =>
  new Promise<ClusterSimResult[]>((resolve, reject) => {
    const args = isBun ? ["test/sim/cluster-worker.ts"] : ["--import", "tsx", "test/sim/cluster-worker.ts"]
    const child = spawn(process.execPath, [...args, String(first), String(count), String(stride)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    const results: ClusterSimResult[] = []
    createInterface({ input: child.stdout }).on("line", (line) => results.push(JSON.parse(line)))
    child.on("exit", (code) => (code === 0 ? resolve(results) : reject(new Error(`worker for seeds ${first}+${stride}k exited ${code} after ${results.length} seeds`))))
  })

/**
 * Seeds that fail on this product version, run and printed but not counted as failures: open bugs
 * the simulator found and docs/design.md lists under "Known limits" (none now). Any other failing
 * seed fails the test, and a listed seed that passes is reported so the list shrinks. Fixed
 * before: 127 and 234 (a write acknowledged while a failed replica's record was still under way);
 * 377 (a crashed master stepped down for a replica that had lost power: copy continuity,
 * lib/store/continuity.ts); 276 (a master that lost power served alone while its in-sync replica
 * was away: it waits for it up to the grace period); 321 (did not converge; passes since the
 * controller fails an in-sync replica on a lost node only after two lease TTLs); 211 (a replica
 * that had just lost power was promoted and the old master's copy dropped: the former master
 * stays listed until the new master serves). The named ones are in cluster-scenarios.test.ts.
 */
const knownFailing: ReadonlySet<number> = new Set([])

const describe = (r: ClusterSimResult) => `seed ${r.seed}: ${r.violations.slice(0, 3).join("; ")}\n    replay: SEED=${r.seed} node --import tsx test/run.ts --group sim cluster.test`

test(only === undefined ? `${seedCount} seeds: no acknowledged write lost, one master at a time, only complete copies promoted, convergence` : `seed ${only}`, async () => {
  const started = performance.now()
  const results = only !== undefined
    ? [await runClusterSim({ seed: only })]
    : (await Promise.all(Array.from({ length: workers }, (_, w) => runWorker(1 + w, Math.ceil((seedCount - w) / workers), workers)))).flat()
  const failing = results.filter((r) => r.violations.length > 0 && !knownFailing.has(r.seed))
  for (const r of results.filter((r) => knownFailing.has(r.seed))) {
    console.log(r.violations.length > 0 ? `    known failure (open bug, docs/design.md "Known limits"): ${describe(r)}` : `    seed ${r.seed} is listed as a known failure but passes now: take it off the list`)
  }
  const sum = (f: (r: ClusterSimResult) => number) => results.reduce((n, r) => n + f(r), 0)
  const faults: Record<string, number> = {}
  for (const r of results) for (const [kind, n] of Object.entries(r.faults)) faults[kind] = (faults[kind] ?? 0) + n
  console.log(`\n    ${results.length} seeds in ${((performance.now() - started) / 1000).toFixed(0)} s: ${sum((r) => r.acknowledged)} blocks acknowledged, ${sum((r) => r.refused)} refused, ${sum((r) => r.promotions)} promotions`)
  console.log(`    faults: ${Object.entries(faults).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k} ${n}`).join(", ")}`)
  assert.is(results.length, only === undefined ? seedCount : 1, "every seed ran")
  assert.ok(sum((r) => r.promotions) > 0 || only !== undefined, "failovers happened")
  if (only === undefined && seedCount >= seedsForEveryFault) {
    const missing = faultKinds.filter((kind) => (faults[kind] ?? 0) === 0)
    assert.equal(missing, [], "every kind of fault was injected")
  }
  assert.is(failing.length, 0, failing.map(describe).join("\n"))
})

test("the same seed replays exactly", async () => {
  const seed = only ?? 11
  const [a, b] = [await runClusterSim({ seed }), await runClusterSim({ seed })]
  assert.is(b.trace, a.trace)
})

// Each checker can fail: the cluster's results broken on purpose, the matching violation reported.
const sabotaged: ReadonlyArray<[Sabotage, ViolationKind]> = [
  ["lose-acknowledged-write", "lost-write"],
  ["diverge-replica", "diverged-copy"],
  ["promote-incomplete", "incomplete-promotion"],
  ["second-master", "two-masters"],
]
for (const [sabotage, expected] of sabotaged) {
  test(`checker fails when broken on purpose: ${sabotage}`, async () => {
    // Seed 8 fails over (a promotion) and keeps its replicas in sync, so every checker has something to see.
    const result = await runClusterSim({ seed: 8, sabotage })
    assert.ok(result.violationKinds.includes(expected), `expected a ${expected} violation, got: ${result.violations.join("; ") || "none"}`)
  })
}

const encryptedSeeds = Number(process.env.CLUSTER_SIM_ENCRYPTED_SEEDS ?? 3)
test(`every volume encrypted (storageos.com/encryption=true), ${encryptedSeeds} seeds: the same checkers (the promotion checker decrypts the promoted copy), and it still fails on a promoted incomplete copy`, async () => {
  const encryption = nodeCrypto() as CryptoPrimitives
  const seeds = only === undefined ? Array.from({ length: encryptedSeeds }, (_, i) => 1 + i) : [only]
  const failing: string[] = []
  let acknowledged = 0
  for (const seed of seeds) {
    const result = await runClusterSim({ seed, encryption })
    acknowledged += result.acknowledged
    if (result.violations.length > 0) failing.push(`${describe(result)} (encrypted: add CLUSTER_SIM_ENCRYPTED_SEEDS)`)
  }
  console.log(`\n    encrypted: ${seeds.length} seeds, ${acknowledged} writes acknowledged (${encryption.xtsImplementation})`)
  assert.ok(acknowledged > 0, "the workload makes progress")
  assert.is(failing.length, 0, failing.join("\n"))
  const sabotaged = await runClusterSim({ seed: 2, encryption, sabotage: "promote-incomplete" })
  assert.ok(sabotaged.violationKinds.includes("incomplete-promotion"), `the promotion checker missed a changed promoted copy: ${sabotaged.violations.join("; ")}`)
})

test.run()
