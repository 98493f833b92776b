/**
 * Online verify of a volume's copies (`replivol volume verify`, DRBD's `drbdadm verify`): every
 * in-sync replica is compared with the master region by region, by CRC-32C, while the volume
 * keeps serving IO; with `repair`, the regions that differ are sent again from the master and
 * compared once more.
 *
 * Why no false differences under concurrent writes: a region is compared at one point of the
 * ordered stream. Under the master's order lock (the lock every write takes to apply locally and
 * queue on every link) the master reads its own region and queues a Verify on each link; the
 * replica applies its connection's frames in order, so it checksums the region after every
 * write queued before the Verify and before any queued after — exactly the bytes the master
 * read. A repair goes the same way: a SyncChunk of the master's bytes and a Verify behind it.
 *
 * The master is the reference: a difference is repaired towards it. Copies not in sync when the
 * verify starts (syncing, failed) are not compared: a resync owes them every differing byte
 * anyway. A copy that fails while being compared is reported as skipped, with the reason.
 */
import { Deferred, Effect, type Semaphore } from "effect"
import { crc32c } from "../core/checksum.ts"
import { sectorBytes, writeChunkBytesMax, MiB } from "../core/limits.ts"
import type { BlockStore } from "../store/BlockStore.ts"
import { MessageType } from "../wire/index.ts"
import { ReplicationError, VolumeIoError, type VolumeUnavailable } from "./errors.ts"
import { LinkFailure, type ReplicaLink } from "./replicaLink.ts"

/** Region compared by one Verify frame, unless the caller asks for another size. */
export const verifyRegionBytesDefault = 1 * MiB
/** Smallest region a caller may ask for. */
export const verifyRegionBytesMin = 4 * 1024
/** Regions in flight per verify (like the resync's window of sync chunks). */
export const verifyWindowRegions = 4
/** Comparisons of one region whose answers were unsure (a reconnect resent frames around them) before the copy is skipped. */
export const verifyRechecksMax = 3
/** Most differences a report lists (every one is counted; the list stops here). */
export const verifyDifferencesListedMax = 10_000

export interface VerifyOptions {
  /** Send the differing regions again from the master and compare them once more. */
  readonly repair?: boolean
  /** Bytes per compared region: a multiple of 512, 4 KiB..1 MiB (default 1 MiB). */
  readonly regionBytes?: number
}

export interface RegionDifference {
  readonly node: string
  readonly offset: number
  readonly length: number
  /** Sent again from the master and found equal afterwards. */
  repaired: boolean
}

export interface VerifiedCopy {
  readonly node: string
  /** `compared`: every region was compared; `skipped`: the copy failed during the verify. */
  state: "compared" | "skipped"
  reason?: string
}

/** What a verify found; updated while it runs (the admin API serves it as its progress). */
export interface VerifyReport {
  readonly volume: string
  readonly epoch: number
  readonly master: string
  readonly repair: boolean
  readonly regionBytes: number
  state: "running" | "done" | "failed"
  readonly startedAtMs: number
  finishedAtMs: number | undefined
  bytesDone: number
  readonly bytesTotal: number
  /** The replicas in sync when the verify started. */
  readonly copies: VerifiedCopy[]
  /** Every difference found (at most `verifyDifferencesListedMax` listed). */
  readonly differences: RegionDifference[]
  differencesFound: number
  /** Differences still there at the end (not repaired, or the repair did not take). */
  differingRegions: number
  error: string | undefined
}

/** What the verify needs of its master volume. */
export interface VerifyContext {
  readonly volume: string
  readonly epoch: number
  readonly master: string
  readonly store: BlockStore
  readonly orderLock: Semaphore.Semaphore
  readonly links: () => ReadonlyArray<ReplicaLink>
  /** Why the master stopped serving, if it did: the verify stops too. */
  readonly fenced: () => VolumeUnavailable | undefined
  /** The resync throttle: pauses while foreground IO is active, given when this step started. */
  readonly throttle: (startedMs: number) => Effect.Effect<void>
  readonly nowMs: () => number
  readonly emit: (kind: "verify-started" | "verify-progress" | "verify-done", message: string) => void
}

/** A bad `regionBytes` as a typed error, or undefined. */
export const checkVerifyOptions = (volume: string, options: VerifyOptions): ReplicationError | undefined => {
  const region = options.regionBytes ?? verifyRegionBytesDefault
  if (Number.isSafeInteger(region) && region % sectorBytes === 0 && region >= verifyRegionBytesMin && region <= writeChunkBytesMax) return undefined
  return new ReplicationError({ reason: "bad-request", volume, message: `volume ${volume}: verify region of ${region} bytes is not allowed: a multiple of ${sectorBytes} bytes from ${verifyRegionBytesMin} to ${writeChunkBytesMax}` })
}

export const newVerifyReport = (context: VerifyContext, sizeBytes: number, options: VerifyOptions): VerifyReport => ({
  volume: context.volume, epoch: context.epoch, master: context.master, repair: options.repair === true,
  regionBytes: options.regionBytes ?? verifyRegionBytesDefault, state: "running", startedAtMs: context.nowMs(), finishedAtMs: undefined,
  bytesDone: 0, bytesTotal: sizeBytes, copies: [], differences: [], differencesFound: 0, differingRegions: 0, error: undefined,
})

interface Answer {
  readonly link: ReplicaLink
  readonly checksum: Deferred.Deferred<number, LinkFailure>
  /** The link's reconnections when the Verify was queued. */
  readonly reconnects: number
}

interface Pending {
  readonly offset: number
  readonly length: number
  readonly masterChecksum: number
  readonly answers: ReadonlyArray<Answer>
}

/**
 * At one point of the ordered stream: reads the master's region and queues `beforeVerify` (a
 * repair's SyncChunk) and a Verify on each link. Uninterruptible like a write: a queued Verify
 * always gets its answer awaited.
 */
const compareAt = (context: VerifyContext, links: ReadonlyArray<ReplicaLink>, offset: number, length: number, beforeVerify?: (link: ReplicaLink, bytes: Uint8Array) => void) =>
  context.orderLock.withPermits(1)(Effect.uninterruptible(Effect.gen(function* () {
    const fenced = context.fenced()
    if (fenced) return yield* Effect.fail(fenced)
    const bytes = yield* context.store.read(offset, length).pipe(Effect.mapError((error) =>
      new VolumeIoError({ volume: context.volume, reason: error.reason === "closed" ? "closed" : "io", message: `volume ${context.volume}: the master could not read its copy to verify it: ${error.message}`, cause: error })))
    const answers: Answer[] = []
    for (const link of links) {
      if (!link.inSync()) continue
      beforeVerify?.(link, bytes)
      const checksum = link.verify(offset, length)
      if (checksum) answers.push({ link, checksum, reconnects: link.reconnects() })
    }
    return { bytes, answers }
  }))).pipe(Effect.map(({ bytes, answers }): Pending => ({ offset, length, masterChecksum: crc32c(bytes), answers })))

const skip = (report: VerifyReport, node: string, reason: string) => {
  const copy = report.copies.find((c) => c.node === node)
  if (copy && copy.state !== "skipped") {
    copy.state = "skipped"
    copy.reason = reason
  }
}

/**
 * What one answer says. `differs` is exact: the Verify and every frame before it were applied
 * once, in order, on one connection. `unsure`: the link reconnected meanwhile and resent its
 * unacknowledged frames, so the replica may have applied an earlier write again over a later
 * one and checksummed that intermediate state (the resent suffix converges only at its end);
 * the region is compared again. Found by the replication simulator (seeds 10 and 18).
 */
type Outcome = "equal" | "differs" | "unsure" | LinkFailure

const outcomeOf = (pending: Pending, answer: Answer): Effect.Effect<Outcome> =>
  Effect.map(Effect.result(Deferred.await(answer.checksum)), (result) =>
    result._tag === "Failure" ? result.failure
    : result.success === pending.masterChecksum ? "equal"
    : answer.link.reconnects() === answer.reconnects ? "differs" : "unsure")

const recordDifference = (report: VerifyReport, node: string, offset: number, length: number) => {
  report.differencesFound++
  if (report.differences.length < verifyDifferencesListedMax) report.differences.push({ node, offset, length, repaired: false })
}

/** Compares one region of one copy again until an exact answer, at most `verifyRechecksMax` times. */
const recheck = (context: VerifyContext, report: VerifyReport, link: ReplicaLink, offset: number, length: number) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < verifyRechecksMax; attempt++) {
      const pending = yield* compareAt(context, [link], offset, length)
      const answer = pending.answers[0]
      if (!answer) return "skipped" as const
      const outcome = yield* outcomeOf(pending, answer)
      if (outcome instanceof LinkFailure) {
        skip(report, link.target.node, outcome.message)
        return "skipped" as const
      }
      if (outcome !== "unsure") return outcome
    }
    skip(report, link.target.node, `its connection was reset during each of ${verifyRechecksMax} comparisons of the region at offset ${offset}`)
    return "skipped" as const
  })

/** Waits for every answer of one region: records exact differences, returns the links whose answer is unsure. */
const settle = (report: VerifyReport, pending: Pending) =>
  Effect.map(Effect.forEach(pending.answers, (answer) => Effect.map(outcomeOf(pending, answer), (outcome) => ({ answer, outcome }))), (outcomes) => {
    const unsure: Unsure[] = []
    for (const { answer, outcome } of outcomes) {
      if (outcome instanceof LinkFailure) skip(report, answer.link.target.node, outcome.message)
      else if (outcome === "differs") recordDifference(report, answer.link.target.node, pending.offset, pending.length)
      else if (outcome === "unsure") unsure.push({ link: answer.link, offset: pending.offset, length: pending.length })
    }
    return unsure
  })

interface Unsure {
  readonly link: ReplicaLink
  readonly offset: number
  readonly length: number
}

/** Compares every region, `verifyWindowRegions` in flight, throttled like a resync; unsure answers are compared again. */
const compareAll = (context: VerifyContext, report: VerifyReport, targets: ReadonlyArray<ReplicaLink>) =>
  Effect.gen(function* () {
    const window: Pending[] = []
    const unsure: Unsure[] = []
    let lastProgressMs = context.nowMs()
    for (let offset = 0; offset < report.bytesTotal; offset += report.regionBytes) {
      const startedMs = context.nowMs()
      const length = Math.min(report.regionBytes, report.bytesTotal - offset)
      window.push(yield* compareAt(context, targets, offset, length))
      if (window.length >= verifyWindowRegions) unsure.push(...(yield* settle(report, window.shift()!)))
      report.bytesDone = offset + length
      if (context.nowMs() - lastProgressMs >= 500) {
        lastProgressMs = context.nowMs()
        context.emit("verify-progress", `verify of ${context.volume}: ${report.bytesDone} of ${report.bytesTotal} bytes, ${report.differencesFound} differing regions so far`)
      }
      yield* context.throttle(startedMs)
    }
    for (const pending of window) unsure.push(...(yield* settle(report, pending)))
    for (const { link, offset, length } of unsure) {
      if ((yield* recheck(context, report, link, offset, length)) === "differs") recordDifference(report, link.target.node, offset, length)
    }
  })

/** Sends each differing region again from the master (a SyncChunk through the ordered stream) and compares it once more. */
const repairAll = (context: VerifyContext, report: VerifyReport) =>
  Effect.forEach(report.differences, (difference) =>
    Effect.gen(function* () {
      const link = context.links().find((l) => l.target.node === difference.node)
      if (!link || !link.inSync()) return
      const startedMs = context.nowMs()
      const pending = yield* compareAt(context, [link], difference.offset, difference.length, (target, bytes) => {
        target.enqueue(MessageType.SyncChunk, difference.offset, bytes)
      })
      const answer = pending.answers[0]
      if (!answer) return
      const outcome = yield* outcomeOf(pending, answer)
      if (outcome instanceof LinkFailure) skip(report, difference.node, outcome.message)
      else difference.repaired = (outcome === "unsure" ? yield* recheck(context, report, link, difference.offset, difference.length) : outcome) === "equal"
      yield* context.throttle(startedMs)
    }), { discard: true })

/** Makes the repaired regions durable on their replicas (an fdatasync there), as a flush would. */
const flushRepaired = (context: VerifyContext, report: VerifyReport) =>
  Effect.forEach(new Set(report.differences.filter((d) => d.repaired).map((d) => d.node)), (node) => {
    const link = context.links().find((l) => l.target.node === node)
    const flushed = link?.inSync() ? link.enqueue(MessageType.Flush, 0, new Uint8Array(0)) : undefined
    return flushed && link ? Effect.catch(link.awaitAck(flushed), (failure) => Effect.sync(() => skip(report, node, failure.message))) : Effect.void
  }, { discard: true })

/**
 * Runs a verify into `report` (which shows its progress meanwhile). Fails only when the master
 * cannot go on (fenced, its own store unreadable); the report then says `failed`.
 */
export const runVerify = (context: VerifyContext, report: VerifyReport): Effect.Effect<VerifyReport, VolumeUnavailable | VolumeIoError> =>
  Effect.gen(function* () {
    const targets = context.links().filter((link) => link.inSync())
    for (const link of targets) report.copies.push({ node: link.target.node, state: "compared" })
    context.emit("verify-started", `verify of ${context.volume}: comparing ${targets.length} in-sync ${targets.length === 1 ? "replica" : "replicas"} with the master in ${report.regionBytes}-byte regions${report.repair ? " (repairing differences)" : ""}`)
    yield* compareAll(context, report, targets)
    if (report.repair && report.differences.length > 0) {
      yield* repairAll(context, report)
      yield* flushRepaired(context, report)
    }
    report.differingRegions = report.differencesFound - report.differences.filter((d) => d.repaired).length
    report.state = "done"
    report.finishedAtMs = context.nowMs()
    const skipped = report.copies.filter((c) => c.state === "skipped").length
    context.emit("verify-done", `verify of ${context.volume}: ${report.differingRegions} differing regions${report.repair ? `, ${report.differencesFound - report.differingRegions} repaired` : ""}${skipped > 0 ? `, ${skipped} copies skipped (failed during the verify)` : ""}`)
    return report
  }).pipe(
    Effect.tapError((error) => Effect.sync(() => end(context, report, error.message))),
    Effect.onInterrupt(() => Effect.sync(() => end(context, report, "interrupted (the master closed or the caller stopped waiting)"))),
  )

const end = (context: VerifyContext, report: VerifyReport, why: string) => {
  report.state = "failed"
  report.error = why
  report.finishedAtMs = context.nowMs()
  context.emit("verify-done", `verify of ${context.volume} failed: ${why}`)
}
