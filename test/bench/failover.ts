/**
 * Failover time: SIGKILL of the master's node process → the first successful write of a client
 * workload after it, with the DEFAULT cluster settings (lease TTL 1 s, tick 100 ms, ack timeout
 * 5 s, grace 30 s, client defaults). Target (issue 3): ≤ 2000 ms.
 *
 * Four node processes (support/cluster-node.ts) on 127.0.7.1..4 port 5703 and a real etcd; a
 * 64 MiB volume with 2 replicas; a client process (support/cluster-writer.ts) writing 64 KiB
 * blocks one at a time. Each trial kills whichever node is the master, measures, starts the killed
 * node again with a fresh data directory (so four nodes stay available) and waits until the volume
 * is healthy again (new master, two in-sync replicas) before the next trial. The first kill is a
 * warm-up (not counted). Also printed per trial, from the nodes' own events: kill → promotion
 * recorded by the controller, kill → the new master serving.
 *
 * Prints one JSON line on stdout (progress on stderr). Env: TRIALS (5).
 */
import { median, round, spread } from "./support/stats.ts"
import { startEtcdCluster, waitEvent, type Event } from "./support/cluster-etcd.ts"

const trialCount = Number(process.env.TRIALS ?? 5)
const targetMs = 2000
const volume = "bench/failover"
const sizeBytes = 64 << 20
const blockBytes = 64 << 10

const cluster = await startEtcdCluster({ nodeCount: 4 })
const pauses: number[] = []
const promoted: number[] = []
const serving: number[] = []
let failedWrites = 0
try {
  await cluster.createVolume({ volume, sizeBytes, master: "n1", replicas: ["n2", "n3"] })
  await cluster.waitHealthy(volume, 60_000)
  const writer = await cluster.startWriter(volume)
  writer.send({ cmd: "steady-start", blockBytes })
  process.stderr.write(`failover: 4 nodes (default settings), ${sizeBytes >> 20} MiB volume, 2 replicas, ${blockBytes >> 10} KiB writes one at a time; ${trialCount} trials + 1 warm-up\n`)
  for (let trial = 0; trial <= trialCount; trial++) {
    const info = await cluster.waitHealthy(volume, 120_000)
    const master = info.master!
    // Let the writer run steadily on this master first.
    const from = writer.events.length
    await waitEvent(writer, "writer progress", 30_000, (e) => e.event === "progress", from)
    const killedAtMs = await cluster.killNode(master)
    const firstAck = await waitEvent(writer, "first write after the kill", 120_000, (e) => e.event === "pause-ack" && Number(e.atMs) >= killedAtMs, from)
    const pauseMs = Number(firstAck.atMs) - killedAtMs
    const after = await cluster.waitHealthy(volume, 120_000, (i) => i.master !== master)
    const newMaster = cluster.nodes.get(after.master!)!
    const servedAt = newMaster.events.find((e: Event) => e.event === "cluster" && e.kind === "master-serving" && e.volume === volume && Number(e.atMs) >= killedAtMs)
    const promotedAt = [...cluster.nodes.values()].flatMap((n) => n.events).find((e) => e.event === "cluster" && e.kind === "controller-action" && /promoted/.test(String(e.message)) && Number(e.atMs) >= killedAtMs)
    const failed = writer.events.slice(from).filter((e) => e.event === "write-failed").length
    failedWrites += trial === 0 ? 0 : failed
    process.stderr.write(`  ${trial === 0 ? "warm-up" : `trial ${trial}`}: killed ${master} → first write after ${pauseMs} ms on ${after.master} (promoted +${promotedAt ? Number(promotedAt.atMs) - killedAtMs : "?"} ms, serving +${servedAt ? Number(servedAt.atMs) - killedAtMs : "?"} ms, ${failed} failed writes)\n`)
    if (trial > 0) {
      pauses.push(pauseMs)
      if (promotedAt) promoted.push(Number(promotedAt.atMs) - killedAtMs)
      if (servedAt) serving.push(Number(servedAt.atMs) - killedAtMs)
    }
    await cluster.startNode(master, true)
  }
  await cluster.request(writer, { cmd: "steady-stop" }, "steady-stopped", 60_000)
} finally {
  await cluster.close()
}

const result = spread(pauses, 0)
const met = result.median <= targetMs
console.log(JSON.stringify({
  name: "failover",
  workload: { nodes: 4, settings: "defaults (leaseTtlMs 1000, tickMs 100, ackTimeoutMs 5000, graceMs 30000)", sizeBytes, replicas: 2, blockBytes, inFlight: 1, trials: trialCount },
  killToFirstWriteMs: result,
  killToPromotedMs: promoted.length ? spread(promoted, 0) : undefined,
  killToServingMs: serving.length ? spread(serving, 0) : undefined,
  failedWrites,
  target: { killToFirstWriteMs: targetMs },
  met: { killToFirstWriteMs: met },
}))
process.stderr.write(`  kill → first write: median ${round(median(pauses), 0)} ms (${result.min}–${result.max}); target ≤ ${targetMs} ms: ${met ? "met" : "MISSED"}\n`)
