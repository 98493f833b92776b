/**
 * Optional CPU profiling of a bench child process (`--cpu-prof` is not allowed in NODE_OPTIONS,
 * so the profile is taken through node:inspector instead). When BENCH_CPU_PROF=DIR is set,
 * `startProfiler(name)` starts the V8 sampling profiler and the returned `stop` writes
 * DIR/<name>-<pid>.cpuprofile (open it in Chrome DevTools, or summarize it with
 * `node --import tsx test/bench/support/profile-top.ts FILE`). Without the variable both are no-ops.
 */
import { writeFileSync, mkdirSync } from "node:fs"
import { Session } from "node:inspector"
import { join, resolve } from "node:path"

const post = (session: Session, method: string, params?: object) =>
  new Promise<unknown>((done, fail) => session.post(method, params ?? {}, (error, result) => (error ? fail(error) : done(result))))

export const startProfiler = async (name: string): Promise<() => Promise<void>> => {
  const dir = process.env.BENCH_CPU_PROF
  if (!dir) return async () => {}
  const session = new Session()
  session.connect()
  await post(session, "Profiler.enable")
  await post(session, "Profiler.setSamplingInterval", { interval: 100 })
  await post(session, "Profiler.start")
  return async () => {
    const { profile } = (await post(session, "Profiler.stop")) as { profile: unknown }
    mkdirSync(resolve(dir), { recursive: true })
    writeFileSync(join(resolve(dir), `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile))
    session.disconnect()
  }
}
