/**
 * Full resync throughput, and foreground writes during a resync. Targets (issue 3): a full resync
 * runs at ≥ 0.5× a raw TCP stream of the same bytes between the same loopback addresses, and
 * sequential 1 MiB foreground writes keep ≥ 0.5× their throughput while a resync runs.
 *
 * Setup: etcd and four node processes (support/cluster-node.ts) on 127.0.7.1..4 with a short
 * grace period (--grace-ms 1000, so a lost replica is replaced after ~1 s instead of 30 s); a
 * 256 MiB volume with one replica (master n1), filled once with random data by a client process.
 * A full resync is caused the way it happens in production: the replica's node is SIGKILLed, the
 * controller places a replacement on a free node after the grace period and the master copies the
 * whole volume to it. Its throughput is the volume size over the time between the master's
 * "sync-started" and "sync-done" events for that replica. The killed node is started again with a
 * fresh data directory, so two spare nodes remain for the next resync.
 *
 * Each trial, in an order that rotates from trial to trial (PLATFORM-NOTES §6: placement and
 * fresh memory swing results, so baseline and subject are interleaved): (a) the raw TCP stream
 * (support/cluster-tcp-stream.ts, 127.0.7.1 → a spare node's address, port+1), (b) an idle full
 * resync, (c) foreground sequential 1 MiB writes (8 in flight) for 3 s on the healthy volume,
 * (d) the same writes while a full resync runs, counted from its sync-started to its sync-done or
 * at most LOAD_WINDOW_MS (5000) later (then the writer stops and the resync finishes unloaded; the
 * resync's own progress in that window, from its sync-progress events, is printed too).
 * A warm-up round of (a)–(d) is not counted. Medians and ranges of the trials are printed, and
 * the ratios of medians of per-trial ratios.
 *
 * Prints one JSON line on stdout (progress on stderr). Env: TRIALS (3), SIZE_MIB (256), LOAD_WINDOW_MS (5000).
 */
import { MiB } from "../../lib/core/limits.ts"
import { median, megabytesPerSecond, round, spread } from "./support/stats.ts"
import { isSyncEvent, startEtcdCluster, startTcpStream, syncReplicaOf, syncTotalOf, waitEvent } from "./support/cluster-etcd.ts"

const trialCount = Number(process.env.TRIALS ?? 3)
const sizeBytes = Number(process.env.SIZE_MIB ?? 256) * MiB
const foregroundMs = 3000
const loadWindowMs = Number(process.env.LOAD_WINDOW_MS ?? 5000)
const targets = { resyncVsTcp: 0.5, foregroundDuringResync: 0.5 }
const volume = "bench/resync"

const cluster = await startEtcdCluster({ nodeCount: 4, graceMs: 1000 })
const sink = await startTcpStream(["--role", "sink", "--host", cluster.hostOf("n4"), "--port", String(cluster.port + 1)])
const source = await startTcpStream(["--role", "source", "--bind", cluster.hostOf("n1")])
const series = { tcpMBps: [] as number[], resyncMBps: [] as number[], foregroundMBps: [] as number[], foregroundDuringMBps: [] as number[], resyncUnderLoadMBps: [] as number[] }
const ratios = { resyncVsTcp: [] as number[], foregroundDuringResync: [] as number[] }
try {
  await cluster.createVolume({ volume, sizeBytes, master: "n1", replicas: ["n2"] })
  await cluster.waitHealthy(volume, 60_000)
  const writer = await cluster.startWriter(volume)
  const master = cluster.nodes.get("n1")!
  const filled = await cluster.request(writer, { cmd: "fill" }, "filled", 600_000)
  process.stderr.write(`resync: ${sizeBytes / MiB} MiB volume filled with random data in ${filled.ms} ms; ${trialCount} trials + 1 warm-up\n`)

  const tcp = async () => {
    const sent = await cluster.request(source.child, { cmd: "send", host: cluster.hostOf("n4"), port: cluster.port + 1, bytes: sizeBytes }, "sent", 120_000)
    return megabytesPerSecond(sizeBytes, Number(sent.ms))
  }
  /**
   * Kills the current replica's node, waits for its replacement's full sync, restarts the killed
   * node fresh. With `load`, the foreground writer starts at the kill and is stopped at sync-done
   * or `loadWindowMs` after sync-started, whichever comes first (a resync starved by foreground
   * IO would otherwise hold the benchmark for minutes); the resync then finishes without load.
   */
  const resync = async (load?: { readonly start: () => void; readonly stop: () => Promise<void> }) => {
    const info = await cluster.waitHealthy(volume, 120_000)
    const old = info.replicas[0]!.node
    const from = master.events.length
    const killedAtMs = await cluster.killNode(old)
    load?.start()
    const started = await waitEvent(master, "sync-started of a replacement", 60_000, (e) => isSyncEvent("sync-started", undefined, volume, killedAtMs)(e) && syncReplicaOf(e) !== old, from)
    const replacement = syncReplicaOf(started)
    const isDone = isSyncEvent("sync-done", replacement, volume, killedAtMs)
    let loadToMs = Number.NaN
    if (load) {
      await waitEvent(master, `sync-done of ${replacement} or the end of the load window`, loadWindowMs + 60_000, (e) => isDone(e) || Date.now() >= Number(started.atMs) + loadWindowMs, from)
      const early = master.events.slice(from).find(isDone)
      loadToMs = early ? Number(early.atMs) : Date.now()
      await load.stop()
    }
    const done = await waitEvent(master, `sync-done of ${replacement}`, 600_000, isDone, from)
    await cluster.startNode(old, true)
    const ms = Number(done.atMs) - Number(started.atMs)
    // Resync progress while loaded: the last "N of M bytes" progress event inside the load window.
    const progressed = master.events.slice(from).filter((e) => e.event === "cluster" && e.kind === "sync-progress" && e.volume === volume && String(e.message).startsWith(`replica ${replacement}:`) && Number(e.atMs) <= loadToMs).at(-1)
    const loadedBytes = Number(done.atMs) <= loadToMs ? syncTotalOf(started) : Number(/: (\d+) of/.exec(String(progressed?.message ?? ""))?.[1] ?? 0)
    return {
      fromMs: Number(started.atMs), toMs: Number(done.atMs), MBps: megabytesPerSecond(syncTotalOf(started), ms), bytes: syncTotalOf(started), replacement,
      loadToMs, loadedMBps: megabytesPerSecond(loadedBytes, loadToMs - Number(started.atMs)),
    }
  }
  const idleResync = async () => {
    const r = await resync()
    if (r.bytes !== sizeBytes) process.stderr.write(`  note: the resync copied ${r.bytes} bytes, not ${sizeBytes}\n`)
    return r.MBps
  }
  const foreground = async () => {
    await cluster.waitHealthy(volume, 120_000)
    writer.send({ cmd: "seq-start" })
    await new Promise((r) => setTimeout(r, 500))
    const fromMs = Date.now()
    await new Promise((r) => setTimeout(r, foregroundMs))
    const toMs = Date.now()
    await cluster.request(writer, { cmd: "seq-stop" }, "seq-stopped", 120_000)
    const counted = await cluster.request(writer, { cmd: "count", fromMs, toMs }, "count")
    return megabytesPerSecond(Number(counted.bytes), toMs - fromMs)
  }
  const foregroundDuring = async () => {
    const r = await resync({
      start: () => writer.send({ cmd: "seq-start" }),
      stop: async () => void (await cluster.request(writer, { cmd: "seq-stop" }, "seq-stopped", 120_000)),
    })
    const counted = await cluster.request(writer, { cmd: "count", fromMs: r.fromMs, toMs: r.loadToMs }, "count")
    series.resyncUnderLoadMBps.push(r.loadedMBps)
    return megabytesPerSecond(Number(counted.bytes), r.loadToMs - r.fromMs)
  }
  const steps = [["tcpMBps", tcp], ["resyncMBps", idleResync], ["foregroundMBps", foreground], ["foregroundDuringMBps", foregroundDuring]] as const
  for (let trial = 0; trial <= trialCount; trial++) {
    const got = new Map<string, number>()
    for (let i = 0; i < steps.length; i++) {
      const [key, step] = steps[(trial + i) % steps.length]!
      got.set(key, await step())
    }
    if (trial === 0) series.resyncUnderLoadMBps.length = 0
    else {
      for (const [key] of steps) series[key].push(got.get(key)!)
      ratios.resyncVsTcp.push(got.get("resyncMBps")! / got.get("tcpMBps")!)
      ratios.foregroundDuringResync.push(got.get("foregroundDuringMBps")! / got.get("foregroundMBps")!)
    }
    process.stderr.write(`  ${trial === 0 ? "warm-up" : `trial ${trial}`}: ${steps.map(([key]) => `${key} ${got.get(key)!.toFixed(0)}`).join(", ")}\n`)
  }
  writer.process.stdin?.end()
} finally {
  await source.close()
  await sink.close()
  await cluster.close()
}

const ratio = { resyncVsTcp: round(median(ratios.resyncVsTcp), 2), foregroundDuringResync: round(median(ratios.foregroundDuringResync), 2) }
const met = { resyncVsTcp: ratio.resyncVsTcp >= targets.resyncVsTcp, foregroundDuringResync: ratio.foregroundDuringResync >= targets.foregroundDuringResync }
console.log(JSON.stringify({
  name: "resync",
  workload: { sizeBytes, data: "random", replicas: 1, graceMs: 1000, foreground: "sequential 1 MiB writes, 8 in flight, client process", trials: trialCount },
  baseline: { tcpMBps: spread(series.tcpMBps, 0), foregroundMBps: spread(series.foregroundMBps, 0) },
  resyncMBps: spread(series.resyncMBps, 0),
  foregroundDuringResyncMBps: spread(series.foregroundDuringMBps, 0),
  resyncUnderForegroundMBps: spread(series.resyncUnderLoadMBps, 0),
  ratio, ratioRange: { resyncVsTcp: spread(ratios.resyncVsTcp, 2), foregroundDuringResync: spread(ratios.foregroundDuringResync, 2) },
  target: targets, met,
}))
process.stderr.write(`  resync ${ratio.resyncVsTcp}× TCP (target ≥ ${targets.resyncVsTcp}: ${met.resyncVsTcp ? "met" : "MISSED"}), foreground during resync ${ratio.foregroundDuringResync}× (target ≥ ${targets.foregroundDuringResync}: ${met.foregroundDuringResync ? "met" : "MISSED"})\n`)
