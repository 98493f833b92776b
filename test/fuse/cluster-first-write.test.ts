/**
 * The first write to a new volume pauses, never fails: `replivol cluster up` (3 nodes, FUSE
 * mount), then 50 times in a row a volume is created and an application (dd, O_DIRECT) writes its
 * FUSE file the moment the file appears: before the new volume's master serves, or while its
 * replicas do their first sync and its failure mode does not yet allow IO. The write must wait
 * and succeed (no EIO), and the bytes must read back. Soft replicas=2 (the `npm start` demo's
 * volume) and hard replicas=1 rounds alternate; each volume is removed after its round.
 */
import * as assert from "uvu/assert"
import { listCacheMsDefault } from "../../fuse/mount.ts"
import { clusterSuite, sleep, type FuseCluster } from "./support-cluster.ts"
import { fuseUnavailableReason, sh } from "./support.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`fuse cluster first-write tests skipped: ${skipReason}`)
const { Suite: FirstWrite, it, drill: context } = clusterSuite("a write the moment a new volume's file appears: a pause, never EIO", { nodes: 3, hostBase: "127.0.14.", port: 28813, apiPort: 28815, leaseTtlMs: 1500 }, skipReason)
const rounds = 50
/** The demo's volumes are larger; the size hardly matters, as a new volume's first sync copies only written regions. */
const sizeBytes = 64 * 1024 * 1024
const writeBytes = 64 * 1024

interface NumberedEvent { readonly seq: number; readonly kind: string; readonly volume?: string }
interface Round { readonly volume: string; readonly code: number; readonly output: string; readonly elapsedMs: number; readonly paused: boolean }

/** The shell side of one round: wait for the file, write a pattern with O_DIRECT, read it back and compare. */
const writeWhenItAppears = (file: string, tag: string) =>
  `src=$(mktemp); trap 'rm -f "$src"' EXIT; yes '${tag}' | head -c ${writeBytes} > "$src"; ` +
  `n=0; while ! test -e '${file}'; do n=$((n+1)); [ $n -gt 1500 ] && { echo "the file never appeared"; exit 3; }; sleep 0.02; done; ` +
  `dd if="$src" of='${file}' bs=${writeBytes} count=1 oflag=direct conv=notrunc 2>&1 || exit 1; ` +
  `dd if='${file}' bs=${writeBytes} count=1 iflag=direct 2>/dev/null | cmp - "$src" || { echo "read back differs"; exit 2; }`

/**
 * One round: create, write at once, then whether the client waited (typed events), then remove.
 * The mount's volume list is let go stale first, so the file shows at the first look after the
 * create — before the new master has opened, when the write must wait.
 */
const round = async (cluster: FuseCluster, index: number): Promise<Round> => {
  const volume = `first/v${index}`
  const labels = index % 2 === 0 ? { "storageos.com/replicas": "2" } : { "storageos.com/replicas": "1", "storageos.com/failure.mode": "hard" }
  const { next } = await cluster.admin<{ next: number }>("GET", "/v1/events?since=0")
  await sleep(listCacheMsDefault + 100)
  await cluster.admin("POST", "/v1/volumes", { volume, sizeBytes, labels })
  const result = await sh(writeWhenItAppears(`${cluster.mount}/${volume}`, `round-${index}`), 120_000)
  const { events } = await cluster.admin<{ events: ReadonlyArray<NumberedEvent> }>("GET", `/v1/events?since=${next}`)
  await cluster.admin("DELETE", `/v1/volumes/${volume}`)
  const paused = events.some((e) => e.kind === "client-retry" && e.volume === volume)
  return { volume, code: result.code, output: result.stdout.trim(), elapsedMs: result.elapsedMs, paused }
}

it(`${rounds} new volumes, each written the moment its file appears: no EIO, the bytes read back`, async () => {
  const cluster = context.cluster!
  const done: Round[] = []
  for (let index = 0; index < rounds; index++) done.push(await round(cluster, index))
  const failed = done.filter((r) => r.code !== 0)
  const paused = done.filter((r) => r.paused).length
  const slowestMs = Math.max(...done.map((r) => r.elapsedMs))
  console.log(`  ${rounds} rounds: ${failed.length} failed, ${paused} waited (master or first sync), slowest ${Math.round(slowestMs)} ms`)
  assert.equal(failed.map((r) => `${r.volume} (exit ${r.code}): ${r.output}`), [], `every first write succeeded\ncluster log:\n${cluster.log().slice(-3000)}`)
  assert.not.ok(done.some((r) => /Input\/output error/.test(r.output)), "no EIO")
  assert.ok(paused >= rounds / 5, `at least ${rounds / 5} writes landed before their volume could serve (else this test did not exercise the wait), got ${paused}`)
})

FirstWrite.run()
