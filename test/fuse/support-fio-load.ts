/**
 * fio verify rounds back to back while a drill runs (a fault, an operation): the shape of the
 * FUSE and etcd drills that prove nothing acknowledged is lost while the cluster changes.
 *
 * Each round is one fio job writing `roundBytes` with crc32c verify and reading all of it back.
 * The load starts `leadMs` before the drill and stops once a round that started after the drill
 * finished has finished (or a round fails, the drill fails, or `maxMs` passed). Then every round
 * must be clean and a whole round must have run after the drill: the load did not stop early.
 */
import * as assert from "uvu/assert"
import { fio, sleep, type FioRun } from "./support-cluster.ts"

export interface FioRound {
  readonly index: number
  readonly startedMs: number
  readonly run: FioRun
}

export interface FioLoad {
  /** fio's arguments for round `index`: file, region, seed, verify options. */
  readonly roundArgs: (index: number) => string
  /** What each round writes, and so must verify. */
  readonly roundBytes: number
  readonly roundTimeoutMs: number
  /** Bound of the whole load. */
  readonly maxMs: number
  /** How long fio runs before the drill starts. */
  readonly leadMs: number
  /** What a failed check prints after the problem (recent events, node logs). */
  readonly context: () => string
}

/** What a round must show: exit 0, no job error, `bytes` written and every one read back and verified. */
export const fioRoundProblem = (round: FioRound, bytes: number): string | undefined => {
  const [job] = round.run.jobs
  if (round.run.code !== 0 || job === undefined || job.error !== 0) return `fio round ${round.index} failed (${round.run.code}): ${round.run.stderr.slice(-2000)}`
  if (job.writeBytes !== bytes || job.readBytes !== bytes) return `fio round ${round.index} wrote ${job.writeBytes} and verified ${job.readBytes} bytes, not ${bytes}`
  return undefined
}

/** `N fio rounds, write IOPS per round: …; slowest write … ms`, for a drill's step log. */
export const fioRoundsSummary = (rounds: ReadonlyArray<FioRound>): string =>
  `${rounds.length} fio rounds, write IOPS per round: ${rounds.map((r) => Math.round(r.run.jobs[0]?.writeIops ?? 0)).join(" ")}; ` +
  `slowest write ${Math.max(...rounds.map((r) => r.run.jobs[0]?.writeMaxLatencyMs ?? 0)).toFixed(0)} ms`

const runRounds = async (load: FioLoad, shared: { doneAtMs: number | undefined; failed: boolean }): Promise<FioRound[]> => {
  const rounds: FioRound[] = []
  const deadlineMs = performance.now() + load.maxMs
  for (let index = 0; ; index++) {
    const startedMs = performance.now()
    const round = { index, startedMs, run: await fio(load.roundArgs(index), load.roundTimeoutMs) }
    rounds.push(round)
    const after = shared.doneAtMs !== undefined && startedMs > shared.doneAtMs
    if (fioRoundProblem(round, load.roundBytes) !== undefined || after || shared.failed || performance.now() > deadlineMs) return rounds
  }
}

/** Runs `drill` under the fio load and checks the rounds (see the module doc); the drill's result, the rounds and when the drill finished. */
export const underFioLoad = async <T>(load: FioLoad, drill: () => Promise<T>): Promise<{ result: T; rounds: FioRound[]; doneAtMs: number }> => {
  const shared = { doneAtMs: undefined as number | undefined, failed: false }
  const rounds = runRounds(load, shared)
  const drilled = (async () => {
    await sleep(load.leadMs)
    const result = await drill()
    shared.doneAtMs = performance.now()
    return result
  })().catch((error: unknown) => {
    shared.failed = true
    throw error
  })
  const [ran, done] = await Promise.allSettled([rounds, drilled])
  if (done.status === "rejected") throw done.reason
  if (ran.status === "rejected") throw ran.reason
  for (const round of ran.value) {
    const problem = fioRoundProblem(round, load.roundBytes)
    assert.ok(problem === undefined, `${problem}\n${load.context()}`)
  }
  const doneAtMs = shared.doneAtMs!
  assert.ok(ran.value[ran.value.length - 1]!.startedMs > doneAtMs, "a whole fio round ran after the drill (the load did not stop early)")
  return { result: done.value, rounds: ran.value, doneAtMs }
}
