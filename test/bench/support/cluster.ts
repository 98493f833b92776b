/**
 * A throwaway replivol cluster for one benchmark: a master process (master-process.ts) on
 * 127.0.0.1 and replica processes (replica-process.ts) on 127.0.0.2 / 127.0.0.3, port 5703 by
 * default, each with its own data directory under one temp directory; TLS between them (a
 * throwaway CA in that directory) unless `tls: false`.
 *
 * Other engineers' tests use the same addresses on this machine, so when a port is taken the
 * whole cluster is started again 10 ports higher (a few times). Every process started here is
 * ended here by pid (exit command, then SIGKILL after a grace period), the temp directory is
 * removed, and SIGINT/SIGTERM of the benchmark end them too. With BENCH_CPU_PROF=DIR the children
 * write CPU profiles there when they exit cleanly (support/profiler.ts).
 */
import { mkdirSync, rmSync } from "node:fs"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { ensureLocalPki } from "../../../lib/platform/certificates.ts"
import { spawnTs, type Child } from "../../support/processes.ts"

export interface ClusterVolume {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  /** Replica node names, from "n2" and "n3". */
  readonly replicaNodes: ReadonlyArray<string>
}

export interface ClusterOptions {
  readonly volumes: ReadonlyArray<ClusterVolume>
  /** Size of the master's plain local file (the baseline target "local"). */
  readonly localBytes: number
  /** Run a TCP echo server on each replica's host, at port + 1. */
  readonly echo?: boolean
  /** TLS between the nodes (default true: a throwaway CA in the temp directory); false: plain TCP. */
  readonly tls?: boolean
}

export interface BenchCluster {
  readonly tls: boolean
  readonly port: number
  readonly echoPort: number
  readonly hostOf: (node: string) => string
  readonly master: Child
  readonly replicas: ReadonlyMap<string, Child>
  /** Sends a command to the master and waits for `doneEvent` (rejects on an error event). */
  readonly request: (command: Record<string, unknown>, doneEvent: string, timeoutMs?: number) => Promise<Record<string, unknown>>
  readonly replicaStats: (node: string) => Promise<{ rchar: number | undefined; replicas: Array<{ volume: string; bytesApplied: number; writesApplied: number }> }>
  readonly close: () => Promise<void>
}

const secret = "replivol-bench-secret-0123456789"
const hosts: Readonly<Record<string, string>> = { n1: "127.0.0.1", n2: "127.0.0.2", n3: "127.0.0.3" }
const script = (name: string) => `test/bench/support/${name}`
const lifetimeMs = 30 * 60_000
const portAttemptsMax = 5

const liveDirs = new Set<string>()
process.on("exit", () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true })
})
// processes.ts kills the children it started on "exit"; make the usual signals reach "exit".
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130))

const hostOf = (node: string): string => {
  const host = hosts[node]
  if (!host) throw new Error(`unknown bench node ${node}; allowed: ${Object.keys(hosts).join(", ")}`)
  return host
}

const spawnChild = (name: string, args: ReadonlyArray<string>): Child => spawnTs(script(name), args, { lifetimeMs })

const endChild = async (child: Child, graceMs = 10_000) => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  try {
    child.send({ cmd: "exit" })
  } catch {
    // stdin already closed: the kill below ends it.
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
  await child.exited
  clearTimeout(timer)
}

const isAddressInUse = (error: unknown) => /address-in-use|EADDRINUSE/.test(String((error as Error).message))

const startOnce = async (options: ClusterOptions, base: string, port: number) => {
  const replicaNodes = [...new Set(options.volumes.flatMap((v) => v.replicaNodes))].sort()
  const replicas = new Map<string, Child>()
  const started: Child[] = []
  const security = options.tls === false ? ["--plaintext"] : ["--tls-dir", join(base, "tls")]
  if (options.tls !== false) await Effect.runPromise(ensureLocalPki(join(base, "tls"), Object.entries(hosts).map(([name, host]) => ({ name, host }))))
  try {
    for (const node of replicaNodes) {
      const volumes = options.volumes.filter((v) => v.replicaNodes.includes(node)).map((v) => `${v.volume}=${v.sizeBytes}`).join(",")
      const child = spawnChild("replica-process.ts", [
        "--name", node, "--host", hostOf(node), "--port", String(port), "--data", join(base, node), "--secret", secret,
        "--volumes", volumes, ...(options.echo ? ["--echo-port", String(port + 1)] : []), ...security,
      ])
      started.push(child)
      replicas.set(node, child)
    }
    await Promise.all([...replicas.values()].map((child) => child.next("ready", 60_000)))
    const volumes = options.volumes.map((v) => ({ volume: v.volume, sizeBytes: v.sizeBytes, labels: v.labels, replicas: v.replicaNodes.map((node) => ({ node, host: hostOf(node) })) }))
    const master = spawnChild("master-process.ts", [
      "--name", "n1", "--host", hostOf("n1"), "--port", String(port), "--data", join(base, "n1"), "--secret", secret,
      "--volumes", JSON.stringify(volumes), "--local-bytes", String(options.localBytes), ...security,
    ])
    started.push(master)
    await master.next("ready", 60_000)
    return { master, replicas }
  } catch (error) {
    await Promise.all(started.map((child) => endChild(child, 2_000)))
    throw error
  }
}

export const startCluster = async (options: ClusterOptions): Promise<BenchCluster> => {
  const base = await mkdtemp(join(tmpdir(), "replivol-bench-"))
  liveDirs.add(base)
  let port = Number(process.env.BENCH_PORT ?? 5703)
  for (let attempt = 1; ; attempt++, port += 10) {
    try {
      const { master, replicas } = await startOnce(options, base, port)
      const request = (command: Record<string, unknown>, doneEvent: string, timeoutMs = 300_000) => {
        const reply = master.next(doneEvent, timeoutMs)
        master.send(command)
        return reply
      }
      const replicaStats = async (node: string) => {
        const child = replicas.get(node)
        if (!child) throw new Error(`no replica process ${node}`)
        const reply = child.next("stats", 30_000)
        child.send({ cmd: "stats" })
        return (await reply) as unknown as Awaited<ReturnType<BenchCluster["replicaStats"]>>
      }
      const close = async () => {
        await endChild(master)
        await Promise.all([...replicas.values()].map((child) => endChild(child)))
        rmSync(base, { recursive: true, force: true })
        liveDirs.delete(base)
      }
      return { tls: options.tls !== false, port, echoPort: port + 1, hostOf, master, replicas, request, replicaStats, close }
    } catch (error) {
      if (!isAddressInUse(error) || attempt >= portAttemptsMax) {
        rmSync(base, { recursive: true, force: true })
        liveDirs.delete(base)
        throw error
      }
      process.stderr.write(`port ${port} is in use on a bench address; trying ${port + 10}\n`)
      rmSync(base, { recursive: true, force: true })
      mkdirSync(base)
    }
  }
}
