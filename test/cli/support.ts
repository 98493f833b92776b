/**
 * A `replivol cluster up` child process for the CLI tests: temp data and mount directories, a
 * free loopback range for the nodes, its own admin port; `cli(...)` runs the command line
 * against it. Only the processes started here are killed, by pid.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { repoRoot } from "../support/processes.ts"

export const launcher = `${repoRoot}lib/cli/replivol.mjs`

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface UpCluster {
  readonly api: string
  readonly data: string
  readonly mount: string
  readonly log: () => string
  readonly cli: (...args: string[]) => Promise<CliResult>
  readonly waitFor: (pattern: RegExp, timeoutMs: number) => Promise<void>
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  readonly stop: (timeoutMs?: number) => Promise<number | null>
}

const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL")
})

export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> =>
  new Promise((resolve) => {
    execFile(process.execPath, [launcher, ...args], { cwd: repoRoot, timeout: timeoutMs, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })

/** Starts `cluster up`; resolves once it printed "ready". */
export const startUp = async (options: { readonly hostBase: string; readonly port: number; readonly apiPort: number; readonly extra?: ReadonlyArray<string> }): Promise<UpCluster> => {
  const root = await mkdtemp(join(tmpdir(), "replivol-cli-"))
  const data = join(root, "data")
  const mount = join(root, "mnt")
  const api = `127.0.0.1:${options.apiPort}`
  const child = spawn(process.execPath, [launcher, "cluster", "up", "--data", data, "--mount", mount, "--api", api, "--host-base", options.hostBase, "--port", String(options.port), ...(options.extra ?? [])], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  let log = ""
  const listeners: Array<() => void> = []
  const onData = (chunk: Buffer) => {
    log += String(chunk)
    for (const wake of listeners.splice(0)) wake()
  }
  child.stdout!.on("data", onData)
  child.stderr!.on("data", onData)
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const waitFor = (pattern: RegExp, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cluster up did not print ${pattern} within ${timeoutMs} ms; log:\n${log.slice(-3000)}`)), timeoutMs)
      const check = () => {
        if (pattern.test(log)) {
          clearTimeout(timer)
          resolve()
        } else if (child.exitCode !== null) {
          clearTimeout(timer)
          reject(new Error(`cluster up exited (${child.exitCode}); log:\n${log.slice(-3000)}`))
        } else listeners.push(check)
      }
      check()
    })
  await waitFor(/^ready$/m, 30_000)
  return {
    api, data, mount,
    log: () => log,
    cli: (...args) => runCli([...args, "--api", api, "--data", data]),
    waitFor,
    stop: async (timeoutMs = 20_000) => {
      if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGTERM")
      const timer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, "SIGKILL"), timeoutMs)
      const code = await exited
      clearTimeout(timer)
      children.delete(child)
      await rm(root, { recursive: true, force: true }).catch(() => undefined)
      return code
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export const eventually = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`)
    await sleep(250)
  }
}
