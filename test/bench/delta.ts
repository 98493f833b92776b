/**
 * Delta catch-up: a replica's node is stopped (SIGKILL) for a few seconds while 1 % of a 256 MiB
 * volume is rewritten (64 KiB pieces at random 4 KiB-aligned offsets), then started again on the
 * same data directory within the grace period. Reported: sync bytes the master sent to it (its
 * link's syncBytesSent, asked from the master's process) / bytes dirtied (distinct 4 KiB pages
 * rewritten), target ≤ 2× (issue 3); and the catch-up time (the master's "sync-started" →
 * "sync-done" for it) vs a full resync of the same volume measured in the same trial (the replica's
 * node killed and left away past the grace period, so a replacement is synced in full).
 *
 * Setup: etcd and four node processes (support/cluster-node.ts) on 127.0.7.1..4 with
 * --grace-ms 20000 (long enough for a restart, short enough to wait out for the full resync);
 * volume with one replica, master n1, filled once with random data by a client process. A
 * warm-up trial is not counted.
 *
 * Prints one JSON line on stdout (progress on stderr). Env: TRIALS (3), SIZE_MIB (256), AWAY_MS (3000).
 */
import { MiB } from "../../lib/core/limits.ts"
import { median, megabytesPerSecond, round, spread } from "./support/stats.ts"
import { isSyncEvent, startEtcdCluster, syncReplicaOf, syncTotalOf, waitEvent, type Event } from "./support/cluster-etcd.ts"

const trialCount = Number(process.env.TRIALS ?? 3)
const sizeBytes = Number(process.env.SIZE_MIB ?? 256) * MiB
const awayMs = Number(process.env.AWAY_MS ?? 3000)
const graceMs = 20_000
const targetRatio = 2
const volume = "bench/delta"

const cluster = await startEtcdCluster({ nodeCount: 4, graceMs })
const series = { dirtiedBytes: [] as number[], sentBytes: [] as number[], ratio: [] as number[], catchUpMs: [] as number[], fullResyncMs: [] as number[], speedup: [] as number[] }
try {
  await cluster.createVolume({ volume, sizeBytes, master: "n1", replicas: ["n2"] })
  await cluster.waitHealthy(volume, 60_000)
  const writer = await cluster.startWriter(volume)
  const master = cluster.nodes.get("n1")!
  const filled = await cluster.request(writer, { cmd: "fill" }, "filled", 600_000)
  process.stderr.write(`delta: ${sizeBytes / MiB} MiB volume filled in ${filled.ms} ms; replica away ${awayMs} ms while 1 % is rewritten; ${trialCount} trials + 1 warm-up\n`)
  const sentTo = async (node: string) => {
    const stats = await cluster.request(master, { cmd: "link-stats", volume }, "link-stats", 30_000)
    return (stats.links as Array<{ node: string; syncBytesSent: number }>).find((l) => l.node === node)?.syncBytesSent
  }
  for (let trial = 0; trial <= trialCount; trial++) {
    // Delta: stop the replica's node, rewrite 1 %, start it again on the same data.
    const away = (await cluster.waitHealthy(volume, 120_000)).replicas[0]!.node
    const sentBefore = (await sentTo(away)) ?? 0
    const from = master.events.length
    const killedAtMs = await cluster.killNode(away)
    process.stderr.write(`  killed ${away}; rewriting 1 %\n`)
    const rewritten = await cluster.request(writer, { cmd: "rewrite", bytes: Math.ceil(sizeBytes / 100), pieceBytes: 64 << 10, seed: 100 + trial }, "rewritten", 120_000)
    await new Promise((r) => setTimeout(r, Math.max(0, killedAtMs + awayMs - Date.now())))
    const restartedAtMs = Date.now()
    await cluster.startNode(away, false)
    process.stderr.write(`  ${away} restarted ${Date.now() - killedAtMs} ms after the kill (the rewrite took ${rewritten.ms} ms, its slowest write ${rewritten.slowestWriteMs} ms)\n`)
    const started = await waitEvent(master, `sync-started of ${away}`, 60_000, isSyncEvent("sync-started", away, volume, restartedAtMs), from)
    const done = await waitEvent(master, `sync-done of ${away}`, 120_000, isSyncEvent("sync-done", away, volume, restartedAtMs), from)
    const sentAfter = (await sentTo(away)) ?? 0
    const sent = sentAfter >= sentBefore ? sentAfter - sentBefore : sentAfter // a new link starts counting at 0
    const dirtied = Number(rewritten.dirtiedBytes)
    const catchUpMs = Number(done.atMs) - Number(started.atMs)
    // Full resync of the same volume: the replica's node stays away past the grace period.
    const info = await cluster.waitHealthy(volume, 120_000)
    const fullFrom = master.events.length
    const fullKilledAtMs = await cluster.killNode(info.replicas[0]!.node)
    const isReplacementStart = (e: Event) => isSyncEvent("sync-started", undefined, volume, fullKilledAtMs)(e) && syncReplicaOf(e) !== away
    const fullStarted = await waitEvent(master, "sync-started of a replacement", graceMs + 60_000, isReplacementStart, fullFrom)
    const fullDone = await waitEvent(master, "sync-done of the replacement", 600_000, isSyncEvent("sync-done", syncReplicaOf(fullStarted), volume, fullKilledAtMs), fullFrom)
    await cluster.startNode(away, true)
    const fullMs = Number(fullDone.atMs) - Number(fullStarted.atMs)
    process.stderr.write(`  ${trial === 0 ? "warm-up" : `trial ${trial}`}: dirtied ${dirtied} B (written ${rewritten.writtenBytes}), catch-up announced ${syncTotalOf(started)} B, sent ${sent} B = ${(sent / dirtied).toFixed(2)}×; catch-up ${catchUpMs} ms vs full resync ${fullMs} ms (${megabytesPerSecond(syncTotalOf(fullStarted), fullMs).toFixed(0)} MB/s)\n`)
    if (trial === 0) continue
    series.dirtiedBytes.push(dirtied)
    series.sentBytes.push(sent)
    series.ratio.push(sent / dirtied)
    series.catchUpMs.push(catchUpMs)
    series.fullResyncMs.push(fullMs)
    series.speedup.push(fullMs / Math.max(1, catchUpMs))
  }
  writer.process.stdin?.end()
} finally {
  await cluster.close()
}

const ratio = round(median(series.ratio), 2)
const met = ratio <= targetRatio
console.log(JSON.stringify({
  name: "delta",
  workload: { sizeBytes, rewrittenShare: 0.01, pieceBytes: 65536, alignBytes: 4096, awayMs, graceMs, replicas: 1, trials: trialCount },
  dirtiedBytes: spread(series.dirtiedBytes, 0),
  sentBytes: spread(series.sentBytes, 0),
  catchUpMs: spread(series.catchUpMs, 0),
  baseline: { fullResyncMs: spread(series.fullResyncMs, 0) },
  fullResyncVsCatchUp: spread(series.speedup, 1),
  ratio: { sentPerDirtied: ratio }, ratioRange: { sentPerDirtied: spread(series.ratio, 2) },
  target: { sentPerDirtied: targetRatio }, met: { sentPerDirtied: met },
}))
process.stderr.write(`  sent / dirtied: median ${ratio}× (target ≤ ${targetRatio}: ${met ? "met" : "MISSED"}); catch-up ${round(median(series.catchUpMs), 0)} ms vs full resync ${round(median(series.fullResyncMs), 0)} ms\n`)
