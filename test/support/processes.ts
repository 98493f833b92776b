/**
 * Child processes for multi-process tests: spawn with a deadline, read their JSON-line events,
 * and always kill what we started (by pid) when the test ends.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

export interface Child {
  readonly process: ChildProcess
  readonly events: Array<Record<string, unknown>>
  readonly next: (event: string, timeoutMs?: number) => Promise<Record<string, unknown>>
  readonly send: (command: Record<string, unknown>) => void
  readonly kill: (signal?: NodeJS.Signals) => void
  readonly exited: Promise<number | null>
  readonly stderr: () => string
}

const started = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL")
})

export const spawnTs = (script: string, args: ReadonlyArray<string>, options?: { readonly lifetimeMs?: number }): Child => {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] })
  started.add(child)
  const events: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  let errText = ""
  child.stderr!.on("data", (chunk) => void (errText = (errText + String(chunk)).slice(-20_000)))
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      events.push(JSON.parse(line))
    } catch {
      events.push({ event: "text", line })
    }
    for (const wake of waiters.splice(0)) wake()
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    started.delete(child)
    for (const wake of waiters.splice(0)) wake()
    resolve(code)
  }))
  const lifetime = setTimeout(() => child.kill("SIGKILL"), options?.lifetimeMs ?? 300_000)
  lifetime.unref()
  let consumed = 0
  const next = (event: string, timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no "${event}" from ${script} ${args.join(" ")} within ${timeoutMs} ms; stderr: ${errText.slice(-2000)}`)), timeoutMs)
      const check = () => {
        for (; consumed < events.length; consumed++) {
          if (events[consumed]!.event === event) {
            clearTimeout(deadline)
            resolve(events[consumed++]!)
            return
          }
          if (events[consumed]!.event === "error") {
            clearTimeout(deadline)
            reject(new Error(`child reported an error: ${JSON.stringify(events[consumed])}`))
            return
          }
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(deadline)
          reject(new Error(`child exited (${child.exitCode ?? child.signalCode}) before "${event}"; stderr: ${errText.slice(-2000)}`))
          return
        }
        waiters.push(check)
      }
      check()
    })
  return {
    process: child, events, next,
    send: (command) => child.stdin!.write(`${JSON.stringify(command)}\n`),
    kill: (signal = "SIGKILL") => void child.kill(signal),
    exited,
    stderr: () => errText,
  }
}
