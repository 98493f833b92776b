/**
 * A throwaway multi-process cluster for the cluster benchmarks (failover, resync, delta): a real
 * etcd (test/support/etcd.ts), node processes (cluster-node.ts) on 127.0.7.1..N port 5703 (clear
 * of the tests' 127.0.0.x / 127.0.3.x), a client process (cluster-writer.ts), and ways to kill a
 * node (SIGKILL, by pid), start it again (same data or a fresh directory), create a volume record
 * and wait for cluster states and events.
 *
 * Every process started here ends here (stdin closed, then SIGKILL after a grace period; and
 * processes.ts kills leftovers on exit), and the temp directory is removed. Env:
 * BENCH_CLUSTER_HOST_BASE ("127.0.7."), BENCH_CLUSTER_PORT (5703).
 */
import { rmSync } from "node:fs"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { layerEtcd } from "../../../lib/platform/etcdControlStore.ts"
import { layerTcp } from "../../../lib/platform/tcp.ts"
import { makeClusterClient } from "../../../lib/cluster/client.ts"
import type { VolumeInfo } from "../../../lib/cluster/clusterNode.ts"
import { ControlStore } from "../../../lib/control/ControlStore.ts"
import { encode, keys, type VolumeRecord } from "../../../lib/cluster/records.ts"
import { validateLabels } from "../../../lib/volume/labels.ts"
import { startEtcd, type TestEtcd } from "../../support/etcd.ts"
import { spawnTs, type Child } from "../../support/processes.ts"

export type Event = Record<string, unknown>

export interface EtcdClusterOptions {
  readonly nodeCount: number
  /** Passed as --grace-ms to every node; omitted: the library default. */
  readonly graceMs?: number
}

export interface VolumeLayout {
  readonly volume: string
  readonly sizeBytes: number
  readonly master: string
  readonly replicas: ReadonlyArray<string>
}

export interface EtcdBenchCluster {
  readonly etcd: TestEtcd
  readonly port: number
  readonly hostOf: (node: string) => string
  /** The running process of each node. */
  readonly nodes: Map<string, Child>
  /** Starts node `name` (same data directory, or a fresh one) and waits for "ready". */
  readonly startNode: (name: string, fresh: boolean) => Promise<Child>
  /** SIGKILLs node `name`'s process and waits for it to exit; returns the kill time (Date.now ms). */
  readonly killNode: (name: string) => Promise<number>
  readonly createVolume: (layout: VolumeLayout) => Promise<void>
  readonly inspect: (volume: string) => Promise<VolumeInfo>
  /** Waits until the volume is healthy, every replica in sync and `extra` (if given) holds. */
  readonly waitHealthy: (volume: string, timeoutMs: number, extra?: (info: VolumeInfo) => boolean) => Promise<VolumeInfo>
  readonly startWriter: (volume: string) => Promise<Child>
  /** Sends a command and waits for `doneEvent` from that child. */
  readonly request: (child: Child, command: Event, doneEvent: string, timeoutMs?: number) => Promise<Event>
  readonly close: () => Promise<void>
}

const secret = "replivol-cluster-bench-secret-0123"
const lifetimeMs = 30 * 60_000
const liveDirs = new Set<string>()
process.on("exit", () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` every 50 ms until it gives a value; rejects after `timeoutMs`. */
export const waitFor = async <A>(what: string, timeoutMs: number, probe: () => Promise<A | undefined> | A | undefined): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`)
    await sleep(50)
  }
}

/** The first event of `child` (from index `from`) that satisfies `match`. */
export const waitEvent = (child: Child, what: string, timeoutMs: number, match: (event: Event) => boolean, from = 0): Promise<Event> =>
  waitFor(what, timeoutMs, () => {
    if (child.process.exitCode !== null || child.process.signalCode !== null) throw new Error(`process exited; stderr: ${child.stderr().slice(-1500)}`)
    return child.events.slice(from).find(match)
  })

/** A cluster event of `kind` about replica `replica` (sync-started / sync-done messages name it). */
export const isSyncEvent = (kind: "sync-started" | "sync-done", replica: string | undefined, volume: string, sinceMs: number) => (event: Event) => {
  if (event.event !== "cluster" || event.kind !== kind || event.volume !== volume || Number(event.atMs) < sinceMs) return false
  const named = /^replica (\S+?)(:| is)/.exec(String(event.message))?.[1]
  return replica === undefined || named === replica
}

/** The replica named by a sync event's message. */
export const syncReplicaOf = (event: Event): string => /^replica (\S+?)(:| is)/.exec(String(event.message))?.[1] ?? "?"

/** Bytes a "sync-started" event says it copies ("copying N bytes"). */
export const syncTotalOf = (event: Event): number => Number(/copying (\d+) bytes/.exec(String(event.message))?.[1] ?? Number.NaN)

const endChild = async (child: Child, graceMs = 10_000) => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.stdin?.end()
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
  await child.exited
  clearTimeout(timer)
}

export const startEtcdCluster = async (options: EtcdClusterOptions): Promise<EtcdBenchCluster> => {
  const hostBase = process.env.BENCH_CLUSTER_HOST_BASE ?? "127.0.7."
  const port = Number(process.env.BENCH_CLUSTER_PORT ?? 5703)
  const base = await mkdtemp(join(tmpdir(), "replivol-cluster-bench-"))
  liveDirs.add(base)
  const etcd = await startEtcd()
  const runtime = ManagedRuntime.make(Layer.mergeAll(layerTcp, layerEtcd({ hosts: etcd.endpoints })))
  const nodes = new Map<string, Child>()
  const others: Child[] = []
  const generation = new Map<string, number>()
  const hostOf = (node: string) => `${hostBase}${Number(node.slice(1))}`

  const startNode = async (name: string, fresh: boolean) => {
    const old = nodes.get(name)
    if (old && old.process.exitCode === null && old.process.signalCode === null) throw new Error(`node ${name} is still running`)
    if (fresh || !generation.has(name)) generation.set(name, (generation.get(name) ?? 0) + 1)
    const child = spawnTs("test/bench/support/cluster-node.ts", [
      "--name", name, "--host", hostOf(name), "--port", String(port), "--data", join(base, `${name}-${generation.get(name)}`),
      "--etcd", etcd.endpoints, "--secret", secret, ...(options.graceMs === undefined ? [] : ["--grace-ms", String(options.graceMs)]),
    ], { lifetimeMs })
    nodes.set(name, child)
    await child.next("ready", 60_000)
    return child
  }

  const killNode = async (name: string) => {
    const child = nodes.get(name)
    if (!child) throw new Error(`no node ${name}`)
    const killedAtMs = Date.now()
    child.kill("SIGKILL")
    await child.exited
    return killedAtMs
  }

  const run = <A, E>(effect: Effect.Effect<A, E, ControlStore | import("../../../lib/net/Transport.ts").Transport>) => runtime.runPromise(effect)
  const inspect = (volume: string) => run(Effect.flatMap(makeClusterClient({ name: "bench-inspector", secret }), (client) => client.inspectVolume(volume)))

  const createVolume = async (layout: VolumeLayout) => {
    const labels = { "storageos.com/replicas": String(layout.replicas.length) }
    const spec = validateLabels(labels)
    if ("_tag" in spec) throw new Error(spec.message)
    const record: VolumeRecord = {
      volume: layout.volume, sizeBytes: layout.sizeBytes, labels, spec, createdAtMs: Date.now(), epoch: 1, master: layout.master,
      replicas: layout.replicas.map((node) => ({ node, state: "provisioned" as const })), rulesApplied: [],
    }
    await run(ControlStore.use((store) => store.put(keys.volume(layout.volume), encode(record))))
  }

  const waitHealthy = (volume: string, timeoutMs: number, extra?: (info: VolumeInfo) => boolean) =>
    waitFor(`${volume} healthy with every replica in sync`, timeoutMs, async () => {
      const info = await inspect(volume)
      return info.health === "healthy" && info.replicas.every((r) => r.state === "in-sync") && (extra?.(info) ?? true) ? info : undefined
    })

  const startWriter = async (volume: string) => {
    const child = spawnTs("test/bench/support/cluster-writer.ts", ["--etcd", etcd.endpoints, "--secret", secret, "--volume", volume], { lifetimeMs })
    others.push(child)
    await child.next("ready", 60_000)
    return child
  }

  const request = (child: Child, command: Event, doneEvent: string, timeoutMs = 300_000) => {
    const reply = child.next(doneEvent, timeoutMs)
    child.send(command)
    return reply
  }

  const close = async () => {
    await Promise.all(others.map((child) => endChild(child)))
    await Promise.all([...nodes.values()].map((child) => endChild(child)))
    await runtime.dispose()
    await etcd.stop()
    rmSync(base, { recursive: true, force: true })
    liveDirs.delete(base)
  }

  try {
    for (let i = 1; i <= options.nodeCount; i++) await startNode(`n${i}`, true)
  } catch (error) {
    await close()
    throw error
  }
  return { etcd, port, hostOf, nodes, startNode, killNode, createVolume, inspect, waitHealthy, startWriter, request, close }
}

/** Starts a process of the raw-TCP baseline (cluster-tcp-stream.ts) and waits for "ready". */
export const startTcpStream = async (args: ReadonlyArray<string>): Promise<{ readonly child: Child; readonly close: () => Promise<void> }> => {
  const child = spawnTs("test/bench/support/cluster-tcp-stream.ts", args, { lifetimeMs })
  await child.next("ready", 60_000)
  return { child, close: () => endChild(child) }
}
