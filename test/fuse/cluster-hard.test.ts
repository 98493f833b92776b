/**
 * A `hard` volume below its replica count refuses IO promptly: a replicas=1 volume labelled
 * storageos.com/failure.mode=hard (3 nodes), an application (dd, O_DIRECT) writing its FUSE file
 * in a loop, and the replica's node killed. dd must fail with EIO within seconds of the kill —
 * not hang, and not keep succeeding with a single copy.
 */
import * as assert from "uvu/assert"
import { clusterSuite, sleep, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason, sh } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster hard-mode tests skipped: ${skipReason}`)
const volume = "strict/vol"
const { Suite: Hard, it, drill: context } = clusterSuite("a hard volume below its replica count: EIO, promptly", { nodes: 3, hostBase: "127.0.9.", port: 28733, apiPort: 28735, leaseTtlMs: 1500 }, skipReason, async (cluster) => {
  await cluster.createVolume(volume, "64MiB", { "storageos.com/replicas": "1", "storageos.com/failure.mode": "hard" })
})
/** How soon after the kill the application must see EIO (lease TTL 1.5 s; a shared 2-vCPU VM). */
const eioWithinMs = 10_000

it("dd writing the file gets EIO within seconds after the replica's node is killed", async () => {
  const cluster = context.cluster!
  const before = await cluster.inspectCli(volume)
  assert.is(before.labels["storageos.com/failure.mode"], "hard")
  assert.is(before.replicas.length, 1)
  const replicaNode = before.replicas[0]!.node
  const file = `${cluster.mount}/${volume}`
  const first = await sh(`dd if=/dev/urandom of=${file} bs=64k count=16 oflag=direct conv=notrunc 2>&1`)
  assert.is(first.code, 0, `a healthy hard volume takes writes: ${first.stdout}`)
  // The application: dd rewrites the first 4 MiB over and over until a write fails.
  const app = sh(
    `n=0; while dd if=/dev/zero of=${file} bs=64k count=64 oflag=direct conv=notrunc 2>/tmp/replivol-hard-dd.$$; do n=$((n+1)); done; ` +
      `echo "rounds=$n"; cat /tmp/replivol-hard-dd.$$; rm -f /tmp/replivol-hard-dd.$$; exit 1`,
    120_000,
  )
  let appEndedMs: number | undefined
  void app.then(() => (appEndedMs = performance.now()))
  await sleep(1_000)
  assert.is(appEndedMs, undefined, "the application is still writing before the kill")
  const killedAtMs = performance.now()
  await cluster.killNode(replicaNode)
  const killReturnedMs = performance.now() - killedAtMs
  const result = await app
  const eioAfterMs = (appEndedMs ?? performance.now()) - killedAtMs
  console.log(`  dd got its error ${(eioAfterMs / 1000).toFixed(2)} s after the kill of ${replicaNode} (the kill call took ${(killReturnedMs / 1000).toFixed(2)} s; ${result.stdout.split("\n")[0]})`)
  const events = cluster.log().split("\n").filter((line) => line.includes(volume) || line.includes(replicaNode)).slice(-15).join("\n")
  assert.match(result.stdout, /Input\/output error/, `dd failed with EIO: ${result.stdout}`)
  assert.ok(eioAfterMs < eioWithinMs, `EIO within ${eioWithinMs} ms of the kill, took ${Math.round(eioAfterMs)} ms; cluster events:\n${events}`)
  const view = await cluster.inspect(volume)
  assert.is.not(view.health, "healthy", `a hard volume without its replica is not healthy: ${JSON.stringify(view)}`)
  // A new write is refused promptly too, as long as the volume is below its replica count.
  const again = await sh(`dd if=/dev/zero of=${file} bs=4k count=1 oflag=direct conv=notrunc 2>&1`, 60_000)
  const still = await cluster.inspect(volume)
  if (still.health !== "healthy") {
    assert.is.not(again.code, 0, `a write while ${still.health} fails: ${again.stdout}`)
    assert.match(again.stdout, /Input\/output error/)
    assert.ok(again.elapsedMs < eioWithinMs, `the next write failed after ${Math.round(again.elapsedMs)} ms`)
  }
})

Hard.run()
