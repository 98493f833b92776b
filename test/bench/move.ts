/**
 * Planned move (`volume move`): the pause a client sees while a volume's master hands over to an
 * in-sync replica (fence, drain, promotion at the next epoch), with the DEFAULT cluster settings.
 * Target (issue 10): ≤ 100 ms at the client.
 *
 * Three node processes (support/cluster-node.ts) on 127.0.7.1..3 and a real etcd; a 64 MiB volume
 * with 1 replica; a client process (support/cluster-writer.ts, no node: it reaches the master over
 * the wire) writing 4 KiB blocks one at a time. Each trial asks the master's node to move the
 * volume to its replica and waits until the replica serves; the pause is the slowest client write
 * that was in flight between the request and the new master serving (+ 500 ms). The baseline is
 * the median client write measured in the same run just before each move; ratio = median pause /
 * baseline. The first move is a warm-up (not counted). Also printed, from the nodes' events: fence →
 * hand-over recorded, fence → the new master serving (MOVE_DEBUG=1 prints every event of each move).
 *
 * Prints one JSON line on stdout (progress on stderr). Env: TRIALS (5).
 */
import { median, round, spread } from "./support/stats.ts"
import { startEtcdCluster, waitEvent } from "./support/cluster-etcd.ts"

const trialCount = Number(process.env.TRIALS ?? 5)
const targetMs = 100
const volume = "bench/move"
const sizeBytes = 64 << 20
const blockBytes = 4 << 10
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const cluster = await startEtcdCluster({ nodeCount: 3 })
const pauses: number[] = []
const baselines: number[] = []
const handovers: number[] = []
const serving: number[] = []
let failedWrites = 0
try {
  await cluster.createVolume({ volume, sizeBytes, master: "n1", replicas: ["n2"] })
  await cluster.waitHealthy(volume, 60_000)
  const writer = await cluster.startWriter(volume)
  writer.send({ cmd: "steady-start", blockBytes })
  process.stderr.write(`move: 3 nodes (default settings), ${sizeBytes >> 20} MiB volume, 1 replica, ${blockBytes >> 10} KiB writes one at a time from a client process; ${trialCount} moves + 1 warm-up\n`)
  for (let trial = 0; trial <= trialCount; trial++) {
    const info = await cluster.waitHealthy(volume, 120_000)
    const master = info.master!
    const to = info.replicas[0]!.node
    await sleep(1500)
    const baseline = await cluster.request(writer, { cmd: "median", fromMs: Date.now() - 1000, toMs: Date.now() }, "median")
    const from = writer.events.length
    const requestedAtMs = Date.now()
    const node = cluster.nodes.get(master)!
    const fromNode = node.events.length
    node.send({ cmd: "move", volume, to })
    const moved = await waitEvent(node, "the move", 120_000, (e) => (e.event === "moved" || e.event === "move-failed") && e.volume === volume, fromNode)
    if (moved.event !== "moved") throw new Error(`move failed: ${String(moved.message)}`)
    await sleep(500)
    const longest = await cluster.request(writer, { cmd: "longest", fromMs: requestedAtMs, toMs: Number(moved.atMs) }, "longest")
    const handedOver = node.events.slice(fromNode).find((e) => e.event === "cluster" && e.kind === "volume-moved")
    const handoverMs = Number(/in (\d+) ms/.exec(String(handedOver?.message ?? ""))?.[1] ?? Number.NaN)
    const fencedAtMs = Number(handedOver?.atMs) - handoverMs
    const target = cluster.nodes.get(to)!
    const servedAt = target.events.find((e) => e.event === "cluster" && e.kind === "master-serving" && e.volume === volume && Number(e.atMs) >= requestedAtMs)
    const openingAt = target.events.find((e) => e.event === "cluster" && e.kind === "master-opening" && e.volume === volume && Number(e.atMs) >= requestedAtMs)
    const servingMs = Number(servedAt?.atMs) - fencedAtMs
    if (process.env.MOVE_DEBUG) {
      for (const [name, child] of cluster.nodes) for (const e of child.events) if (e.event === "cluster" && Number(e.atMs) >= requestedAtMs) process.stderr.write(`    ${name} +${Number(e.atMs) - fencedAtMs} ${e.kind}: ${String(e.message).slice(0, 160)}\n`)
    }
    const failed = writer.events.slice(from).filter((e) => e.event === "write-failed").length
    process.stderr.write(`  ${trial === 0 ? "warm-up" : `trial ${trial}`}: ${master} → ${to}: slowest client write ${longest.tookMs} ms (baseline ${baseline.tookMs} ms; fence→recorded ${handoverMs} ms, →opening ${Number(openingAt?.atMs) - fencedAtMs} ms, →serving ${servingMs} ms; request→done ${Number(moved.atMs) - requestedAtMs} ms; ${failed} failed writes)\n`)
    if (trial > 0) {
      pauses.push(Number(longest.tookMs))
      baselines.push(Number(baseline.tookMs))
      if (Number.isFinite(handoverMs)) handovers.push(handoverMs)
      if (Number.isFinite(servingMs)) serving.push(servingMs)
      failedWrites += failed
    }
  }
  await cluster.request(writer, { cmd: "steady-stop" }, "steady-stopped", 60_000)
} finally {
  await cluster.close()
}

const pause = spread(pauses, 0)
const baselineMs = median(baselines)
const met = pause.median <= targetMs
console.log(JSON.stringify({
  name: "move",
  workload: { nodes: 3, settings: "defaults", sizeBytes, replicas: 1, blockBytes, inFlight: 1, trials: trialCount },
  clientPauseMs: pause,
  fenceToRecordedMs: handovers.length ? spread(handovers, 0) : undefined,
  fenceToServingMs: serving.length ? spread(serving, 0) : undefined,
  baseline: { steadyWriteMs: round(baselineMs, 1) },
  ratio: round(pause.median / Math.max(baselineMs, 0.1), 1),
  failedWrites,
  target: { clientPauseMs: targetMs },
  met: { clientPauseMs: met },
}))
process.stderr.write(`  client pause during the hand-over: median ${pause.median} ms (${pause.min}–${pause.max}), ${round(pause.median / Math.max(baselineMs, 0.1), 1)}× a steady write (${round(baselineMs, 1)} ms); target ≤ ${targetMs} ms: ${met ? "met" : "MISSED"}\n`)
