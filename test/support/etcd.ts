/**
 * A throwaway etcd for tests: spawns /usr/bin/etcd (Debian etcd-server 3.4) on 127.0.0.1 with
 * free client and peer ports and a temporary data directory, tuned for speed (no fsync, 10/100 ms
 * raft timings, which also make a 1 s lease TTL possible), and waits for /health (bounded).
 * `stop()` kills exactly that pid and removes the directory; a process exit hook does the same
 * if a test forgets.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface TestEtcd {
  readonly endpoints: string
  readonly pid: number
  stop(): Promise<void>
}

export const etcdBinary = process.env.ETCD_BINARY ?? "/usr/bin/etcd"
const healthTimeoutMs = 10_000
const stopTimeoutMs = 5_000

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const healthy = async (endpoint: string): Promise<boolean> => {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(500) })
    const body = (await res.json()) as { health?: string }
    return res.ok && body.health === "true"
  } catch {
    return false
  }
}

const waitExit = (child: ChildProcess, timeoutMs: number) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve()
    }, timeoutMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
  })

export async function startEtcd(): Promise<TestEtcd> {
  if (!existsSync(etcdBinary)) {
    throw new Error(`etcd binary not found at ${etcdBinary}: install it with \`apt-get install etcd-server\` (or set ETCD_BINARY)`)
  }
  const [clientPort, peerPort] = [await freePort(), await freePort()]
  const dataDir = mkdtempSync(join(tmpdir(), "replivol-etcd-"))
  const endpoints = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const child = spawn(etcdBinary, [
    "--name", "test", "--data-dir", join(dataDir, "data"),
    "--listen-client-urls", endpoints, "--advertise-client-urls", endpoints,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `test=${peer}`, "--initial-cluster-state", "new",
    "--unsafe-no-fsync", "--heartbeat-interval", "10", "--election-timeout", "100",
    "--logger", "zap", "--log-level", "warn",
  ], { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr!.on("data", (chunk: Buffer) => void (log = (log + chunk.toString()).slice(-4000)))
  const pid = child.pid!
  const cleanupOnExit = () => {
    try { process.kill(pid, "SIGKILL") } catch { /* already gone */ }
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.once("exit", cleanupOnExit)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    process.removeListener("exit", cleanupOnExit)
    child.kill("SIGTERM")
    await waitExit(child, stopTimeoutMs)
    rmSync(dataDir, { recursive: true, force: true })
  }
  const deadline = performance.now() + healthTimeoutMs
  while (!(await healthy(endpoints))) {
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop()
      throw new Error(`etcd on ${endpoints} did not become healthy within ${healthTimeoutMs} ms (exit ${child.exitCode}):\n${log}`)
    }
    await sleep(50)
  }
  return { endpoints, pid, stop }
}
