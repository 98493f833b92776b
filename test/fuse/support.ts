/**
 * Shared helpers of the FUSE tests and benchmarks: run a shell command in a child process (never
 * touch the mount with sync fs calls from this process: that deadlocks the FUSE thread), parse dd
 * and fio results, and clean up mounts and loop devices by path.
 */
import { execFile } from "node:child_process"
import { access, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface ShellResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  readonly elapsedMs: number
}

/** Runs `command` with sh in a child process; never rejects. Killed after `timeoutMs`. */
export const sh = (command: string, timeoutMs = 120_000): Promise<ShellResult> =>
  new Promise((resolve) => {
    const startedMs = performance.now()
    execFile("sh", ["-c", command], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout: String(stdout), stderr: String(stderr), elapsedMs: performance.now() - startedMs })
    })
  })

/** Whether this machine can run the FUSE tests; the reason when not. */
export const fuseUnavailableReason = async (): Promise<string | undefined> => {
  if ("Bun" in globalThis || "Deno" in globalThis) return "FUSE tests run only on Node"
  try {
    await access("/dev/fuse")
  } catch {
    return "/dev/fuse is missing"
  }
  return undefined
}

export const makeTempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), prefix))

/** Lazily unmounts `dir` if it is still mounted, then removes it (best effort, for after hooks). */
export const cleanupMount = async (dir: string): Promise<void> => {
  const mounts = await sh("cat /proc/mounts")
  if (mounts.stdout.split("\n").some((line) => line.split(" ")[1] === dir)) await sh(`fusermount -uz '${dir}'`)
}

export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true })

/** Whether `dir` is listed as a mount point in /proc/mounts. */
export const isMounted = async (dir: string): Promise<boolean> =>
  (await sh("cat /proc/mounts")).stdout.split("\n").some((line) => line.split(" ")[1] === dir)

/** Throughput in MB/s from dd's last stderr line ("N bytes (...) copied, S s, ..."). */
export const ddMBps = (stderr: string): number => {
  const match = /(\d+) bytes .* copied, ([\d.e-]+) s/.exec(stderr)
  if (match === null) throw new Error(`dd printed no throughput: ${stderr}`)
  return Number(match[1]) / Number(match[2]) / 1e6
}

export interface FioResult {
  readonly MBps: number
  readonly iops: number
  readonly errors: number
}

/** Runs fio with `args` and JSON output; the write (or read) side of its single job. */
export const runFio = async (args: string, timeoutMs = 300_000): Promise<FioResult & { raw: ShellResult }> => {
  const raw = await sh(`fio --output-format=json ${args}`, timeoutMs)
  const start = raw.stdout.indexOf("{")
  if (raw.code !== 0 || start < 0) throw new Error(`fio failed (${raw.code}): ${raw.stderr}${raw.stdout}`)
  const job = JSON.parse(raw.stdout.slice(start)).jobs[0]
  const side = job.write.io_bytes > 0 ? job.write : job.read
  return { MBps: side.bw_bytes / 1e6, iops: side.iops, errors: job.error, raw }
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/** A file system on a loop device: the directory it is mounted at and the device ("" when not set up). */
export interface LoopFs {
  fsDir: string
  loop: string
}

/** Unmounts the file system (lazily if busy) and detaches the loop device; safe to call again. */
export const releaseLoopFs = async (fs: LoopFs): Promise<void> => {
  if (fs.fsDir !== "" && (await isMounted(fs.fsDir))) await sh(`umount ${fs.fsDir} || umount -l ${fs.fsDir}`)
  if (fs.loop !== "") {
    await sh(`losetup -d ${fs.loop}`)
    fs.loop = ""
  }
}
