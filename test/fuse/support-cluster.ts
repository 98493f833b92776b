/**
 * A real replicated cluster behind the FUSE mount, for the acceptance tests and the benchmark:
 * `replivol cluster up` as a child process (nodes on a private loopback range, its own admin port,
 * temp data and mount directories), the CLI against it, and the checks a user would make — the
 * volume file appears, `inspect --json` reports healthy, the copies on disk are byte-identical.
 *
 * Only the child started here is killed, by pid; `stop()` unmounts (SIGTERM: the cluster unmounts
 * itself; a lazy `fusermount -uz` if it had to be SIGKILLed) and `remove()` deletes the temp
 * directories. Everything that touches the mount runs in child processes (`sh`).
 */
import { suite } from "uvu"
import { spawn, type ChildProcess } from "node:child_process"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { runCli, type CliResult } from "../cli/support.ts"
import { repoRoot } from "../support/processes.ts"
import { cleanupMount, isMounted, makeTempDir, removeDir, sh } from "./support.ts"

export interface ReplicaView {
  readonly node: string
  readonly state: string
}

export interface VolumeView {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels: Record<string, string>
  readonly epoch: number
  readonly master: string
  readonly health: string
  readonly usable: boolean
  readonly reason: string
  readonly replicas: ReadonlyArray<ReplicaView>
}

export interface FuseCluster {
  readonly data: string
  readonly mount: string
  readonly api: string
  readonly pid: number
  readonly log: () => string
  readonly cli: (...args: string[]) => Promise<CliResult>
  /** Creates `ns/name` with the labels; resolves once the file is under the mount and the volume is healthy. */
  readonly createVolume: (volume: string, size: string, labels: Record<string, string>) => Promise<VolumeView>
  /** The admin API's view of a volume (what `inspect --json` prints), polled cheaply. */
  readonly inspect: (volume: string) => Promise<VolumeView>
  /** `replivol node kill NAME` through the admin API (no CLI process start: the timing is the kill's own). */
  readonly killNode: (name: string) => Promise<void>
  /** One admin API call with the token (what the CLI sends, without a process start); throws on a non-2xx status. */
  readonly admin: <T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown) => Promise<T>
  /** `replivol volume inspect NS/NAME --json` in a child process. */
  readonly inspectCli: (volume: string) => Promise<VolumeView>
  /** Polls `inspect` until `check` accepts the view; throws with the last view after `timeoutMs`. */
  readonly waitVolume: (volume: string, what: string, timeoutMs: number, check: (v: VolumeView) => boolean) => Promise<VolumeView>
  /** The node-local copy file of `volume` on `node`. */
  readonly copyPath: (node: string, volume: string) => string
  /** SIGTERM (SIGKILL after `timeoutMs`), then makes sure the mount is gone; the exit code. */
  readonly stop: (timeoutMs?: number) => Promise<number | null>
  /** Deletes the temp directories (after `stop`). */
  readonly remove: () => Promise<void>
}

export interface FuseClusterOptions {
  readonly nodes: number
  readonly hostBase: string
  readonly port: number
  readonly apiPort: number
  readonly leaseTtlMs?: number
  /** The grace period before a down node's replicas are replaced (the node default, 30 s, if unset). */
  readonly graceMs?: number
  /** Also print cluster events to the log (default true: they explain a failure). */
  readonly events?: boolean
  /** Extra node flags for the `cluster up` process (e.g. `--cpu-prof` from a benchmark). */
  readonly nodeArgs?: ReadonlyArray<string>
}

const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL")
})

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it returns a value; throws `describe()` after `timeoutMs`. */
export const pollFor = async <T>(timeoutMs: number, check: () => Promise<T | undefined>, describe: () => string): Promise<T> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(describe())
    await sleep(250)
  }
}

const spawnUp = (options: FuseClusterOptions, data: string, mount: string, api: string): ChildProcess => {
  const args = [
    ...(options.nodeArgs ?? []), `${repoRoot}lib/cli/replivol.mjs`, "cluster", "up", "--nodes", String(options.nodes), "--data", data, "--mount", mount,
    "--api", api, "--host-base", options.hostBase, "--port", String(options.port), "--lease-ttl-ms", String(options.leaseTtlMs ?? 1500),
    ...(options.graceMs === undefined ? [] : ["--grace-ms", String(options.graceMs)]),
    ...(options.events === false ? ["--quiet"] : []),
  ]
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  return child
}

/** Starts `cluster up` and resolves once it printed "ready" with the FUSE mount in place. */
export const startFuseCluster = async (options: FuseClusterOptions): Promise<FuseCluster> => {
  const root = await makeTempDir("replivol-fuse-cluster-")
  const data = join(root, "data")
  const mount = join(root, "mnt")
  const api = `127.0.0.1:${options.apiPort}`
  const child = spawnUp(options, data, mount, api)
  let log = ""
  child.stdout!.on("data", (chunk: Buffer) => (log += String(chunk)))
  child.stderr!.on("data", (chunk: Buffer) => (log += String(chunk)))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const cli = (...args: string[]) => runCli([...args, "--api", api, "--data", data], {}, 120_000)
  /** GET /v1/volumes/NS/NAME on the admin API (the CLI's own call, without starting a process each poll). */
  const inspect = async (volume: string): Promise<VolumeView> => {
    const token = (await readFile(`${data}/admin.token`, "utf8")).trim()
    const response = await fetch(`http://${api}/v1/volumes/${volume}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
    if (!response.ok) throw new Error(`GET /v1/volumes/${volume}: ${response.status} ${await response.text()}`)
    return (await response.json()) as VolumeView
  }
  const killNode = async (name: string): Promise<void> => {
    const token = (await readFile(`${data}/admin.token`, "utf8")).trim()
    const response = await fetch(`http://${api}/v1/nodes/${name}/kill`, { method: "POST", headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
    if (!response.ok) throw new Error(`POST /v1/nodes/${name}/kill: ${response.status} ${await response.text()}`)
  }
  const admin = async <T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> => {
    const token = (await readFile(`${data}/admin.token`, "utf8")).trim()
    const response = await fetch(`http://${api}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(30_000),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
    return (text === "" ? undefined : JSON.parse(text)) as T
  }
  /** `replivol volume inspect NS/NAME --json`, as a user runs it. */
  const inspectCli = async (volume: string): Promise<VolumeView> => {
    const result = await cli("volume", "inspect", volume, "--json")
    if (result.code !== 0) throw new Error(`volume inspect ${volume} failed (${result.code}): ${result.stderr}`)
    return JSON.parse(result.stdout) as VolumeView
  }
  const waitVolume = async (volume: string, what: string, timeoutMs: number, check: (v: VolumeView) => boolean) => {
    let last: VolumeView | undefined
    return pollFor(timeoutMs, async () => {
      last = await inspect(volume).catch(() => last)
      return last !== undefined && check(last) ? last : undefined
    }, () => `${volume} did not become ${what} within ${timeoutMs} ms; last inspect: ${JSON.stringify(last)}\ncluster log:\n${log.slice(-4000)}`)
  }
  const stop = async (timeoutMs = 20_000) => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGTERM")
    const timer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, "SIGKILL"), timeoutMs)
    const code = await exited
    clearTimeout(timer)
    children.delete(child)
    await cleanupMount(mount)
    return code
  }
  await pollFor(90_000, async () => {
    if (child.exitCode !== null) throw new Error(`cluster up exited (${child.exitCode}); log:\n${log.slice(-3000)}`)
    return /^ready$/m.test(log) && (await isMounted(mount)) ? true : undefined
  }, () => `cluster up was not ready and mounted within 90 s; log:\n${log.slice(-3000)}`).catch(async (error) => {
    await stop()
    await removeDir(root)
    throw error
  })
  return {
    data, mount, api, pid: child.pid!,
    log: () => log,
    cli, inspect, inspectCli, killNode, admin, waitVolume, stop,
    copyPath: (node, volume) => `${data}/${node}/copies/${volume}.img`,
    remove: () => removeDir(root),
    createVolume: async (volume, size, labels) => {
      const created = await cli("volume", "create", volume, "--size", size, ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]))
      if (created.code !== 0) throw new Error(`volume create ${volume} failed (${created.code}): ${created.stderr}`)
      await pollFor(30_000, async () => ((await sh(`test -f '${mount}/${volume}'`)).code === 0 ? true : undefined), () => `${mount}/${volume} did not appear`)
      return waitVolume(volume, "healthy", 180_000, (v) => v.health === "healthy")
    },
  }
}

/** sha256 of each file (read by a child process), in order; "" for a file that could not be read. */
export const sha256Of = async (paths: ReadonlyArray<string>): Promise<Array<string>> => {
  const result = await sh(`sha256sum ${paths.map((p) => `'${p}'`).join(" ")}`, 300_000)
  const sums = new Map(result.stdout.trim().split("\n").map((line) => {
    const [sum, ...rest] = line.split(/\s+/)
    return [rest.join(" ").replace(/^\*/, ""), sum ?? ""] as const
  }))
  return paths.map((p) => sums.get(p) ?? "")
}

export interface FioJob {
  readonly error: number
  readonly writeBytes: number
  readonly readBytes: number
  readonly writeIops: number
  readonly writeMBps: number
  /** Longest single write completion, in ms. */
  readonly writeMaxLatencyMs: number
}

export interface FioRun {
  readonly code: number
  readonly stderr: string
  readonly stdout: string
  readonly elapsedMs: number
  readonly jobs: ReadonlyArray<FioJob>
}

/** Runs fio with JSON output; never throws (a failed run has `code` ≠ 0 and its stderr). */
export const fio = async (args: string, timeoutMs = 600_000): Promise<FioRun> => {
  // --verify_state_save=0: fio would otherwise leave *-verify.state files in the working directory.
  const raw = await sh(`fio --output-format=json --verify_state_save=0 ${args}`, timeoutMs)
  const start = raw.stdout.indexOf("{")
  let jobs: Array<FioJob> = []
  if (start >= 0) {
    try {
      jobs = (JSON.parse(raw.stdout.slice(start)).jobs as Array<any>).map((job) => ({
        error: job.error,
        writeBytes: job.write.io_bytes,
        readBytes: job.read.io_bytes,
        writeIops: job.write.iops,
        writeMBps: job.write.bw_bytes / 1e6,
        writeMaxLatencyMs: (job.write.clat_ns?.max ?? 0) / 1e6,
      }))
    } catch {
      jobs = []
    }
  }
  return { code: raw.code, stderr: raw.stderr, stdout: raw.stdout, elapsedMs: raw.elapsedMs, jobs }
}

/** Wraps a before/after hook so its error is printed (uvu swallows hook errors; run.ts then counts the tests as failed). */
export const loudHook = (name: string, hook: () => Promise<void>) => async (): Promise<void> => {
  try {
    await hook()
  } catch (error) {
    console.error(`${name} failed:`, error)
    throw error
  }
}

/**
 * A uvu suite with its own cluster: started in `before` (not at all when `skipReason` is set; its
 * tests are then skipped), then `prepare` (volumes the tests share); always stopped and its
 * directories removed in `after`.
 */
export const clusterSuite = (title: string, options: FuseClusterOptions, skipReason: string | undefined, prepare?: (cluster: FuseCluster) => Promise<unknown>) => {
  const drill = { cluster: undefined as FuseCluster | undefined }
  const Suite = suite(title)
  Suite.before(loudHook("before", async () => {
    if (skipReason !== undefined) return
    drill.cluster = await startFuseCluster(options)
    await prepare?.(drill.cluster)
  }))
  Suite.after(loudHook("after", async () => {
    if (drill.cluster === undefined) return
    try {
      await drill.cluster.stop()
    } finally {
      await drill.cluster.remove()
    }
  }))
  return { Suite, it: skipReason === undefined ? Suite : Suite.skip, drill }
}
