// Failure-mode arithmetic: every row of the seed's failure-mode table, for replicas 0..5.
//
// The tables below are written from the seed (seed/replication.md, "Failover"), not computed from
// the implementation: for each mode and replica count, the fewest in-sync replicas with which the
// volume must still be usable.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { assessVolume, usableVolume, waitsForSync, type ReplicaCounts } from "../../../lib/volume/health.ts"
import { Label, LabelError, validateLabels, type VolumeSpec } from "../../../lib/volume/labels.ts"
import { InvariantViolation } from "../../../lib/core/assert.ts"
import { failureToleranceMax } from "../../../lib/core/limits.ts"

const Health = suite("volume/health")

const specOf = (labels: Record<string, string>): VolumeSpec => {
  const result = validateLabels(labels)
  if (result instanceof LabelError) throw new Error(result.message)
  return result
}

/** Every way to split `replicas` between in-sync, syncing and failed, with `inSync` fixed. */
const splits = (replicas: number, inSync: number): ReplicaCounts[] => {
  const out: ReplicaCounts[] = []
  for (let syncing = 0; syncing <= replicas - inSync; syncing++) out.push({ inSync, syncing, failed: replicas - inSync - syncing })
  return out
}

/** Fewest in-sync replicas for a usable volume, indexed by replica count 0..5 (from the seed). */
const minInSyncTable: ReadonlyArray<{ row: string; labels: (replicas: number) => Record<string, string>; minInSync: ReadonlyArray<number> }> = [
  // Hard: below the requested count the volume is unavailable.
  { row: "hard", labels: () => ({ [Label.failureMode]: "hard" }), minInSync: [0, 1, 2, 3, 4, 5] },
  // Always on: usable as long as any copy (the master) is available.
  { row: "alwayson", labels: () => ({ [Label.failureMode]: "alwayson" }), minInSync: [0, 0, 0, 0, 0, 0] },
  // Soft (the default mode), default tolerance: 1 if one replica, replicas - 1 if more.
  { row: "soft, default tolerance", labels: () => ({}), minInSync: [0, 0, 1, 1, 1, 1] },
  { row: "soft explicit, default tolerance", labels: () => ({ [Label.failureMode]: "soft" }), minInSync: [0, 0, 1, 1, 1, 1] },
  // Soft with an explicit tolerance (the seed's example uses failure.tolerance=2).
  { row: "soft, tolerance 0", labels: () => ({ [Label.failureTolerance]: "0" }), minInSync: [0, 1, 2, 3, 4, 5] },
  { row: "soft, tolerance 1", labels: (r) => (r >= 1 ? { [Label.failureTolerance]: "1" } : {}), minInSync: [0, 0, 1, 2, 3, 4] },
  { row: "soft, tolerance 2", labels: (r) => (r >= 2 ? { [Label.failureTolerance]: "2" } : {}), minInSync: [0, 0, 0, 1, 2, 3] },
  { row: "soft, tolerance 4", labels: (r) => (r >= 4 ? { [Label.failureTolerance]: "4" } : {}), minInSync: [0, 0, 1, 1, 0, 1] },
]

Health("every failure-mode row, replicas 0..5, every split of in-sync / syncing / failed", () => {
  for (const { row, labels, minInSync } of minInSyncTable) {
    for (let replicas = 0; replicas <= 5; replicas++) {
      const spec = specOf({ [Label.replicas]: String(replicas), ...labels(replicas) })
      for (let inSync = 0; inSync <= replicas; inSync++) {
        for (const counts of splits(replicas, inSync)) {
          const a = assessVolume(spec, counts)
          const where = `${row}, replicas=${replicas}, ${JSON.stringify(counts)}: ${a.reason}`
          assert.is(a.usable, inSync >= minInSync[replicas]!, where)
          assert.is(a.health, !a.usable ? "unavailable" : inSync === replicas ? "healthy" : "degraded", where)
        }
      }
    }
  }
})

Health("a syncing replica does not protect data: hard mode is unavailable until it is in sync", () => {
  const spec = specOf({ [Label.replicas]: "2", [Label.failureMode]: "hard" })
  assert.equal(assessVolume(spec, { inSync: 1, syncing: 1, failed: 0 }), {
    health: "unavailable",
    usable: false,
    reason: "hard mode: 1 of 2 replicas in sync, 1 syncing, below the requested 2",
  })
  assert.is(assessVolume(spec, { inSync: 2, syncing: 0, failed: 0 }).health, "healthy")
})

Health("reasons are human sentences naming the counts and the mode", () => {
  const soft2 = specOf({ [Label.replicas]: "2" })
  assert.is(assessVolume(soft2, { inSync: 2, syncing: 0, failed: 0 }).reason, "2 of 2 replicas in sync")
  assert.is(assessVolume(soft2, { inSync: 1, syncing: 1, failed: 0 }).reason, "1 of 2 replicas in sync, 1 syncing; soft mode tolerates 1 failed")
  assert.is(
    assessVolume(soft2, { inSync: 0, syncing: 0, failed: 2 }).reason,
    "soft mode: 0 of 2 replicas in sync, 2 failed; 2 missing, more than the tolerated 1",
  )
  const always = specOf({ [Label.replicas]: "1", [Label.failureMode]: "alwayson" })
  assert.is(assessVolume(always, { inSync: 0, syncing: 0, failed: 1 }).reason, "0 of 1 replica in sync, 1 failed; alwayson mode stays usable while the master is available")
  assert.is(assessVolume(specOf({}), { inSync: 0, syncing: 0, failed: 0 }).reason, "no replicas requested; the master holds the only copy")
})

Health("replicas not yet placed count as failed", () => {
  const spec = specOf({ [Label.replicas]: "3", [Label.failureMode]: "hard" })
  const a = assessVolume(spec, { inSync: 2, syncing: 0, failed: 0 })
  assert.is(a.usable, false)
  assert.ok(a.reason.includes("1 failed"), a.reason)
  const soft = specOf({ [Label.replicas]: "3" })
  assert.equal([assessVolume(soft, { inSync: 1, syncing: 0, failed: 0 }).health], ["degraded"])
})

Health("with the master unavailable no mode is usable, until a promotion", () => {
  for (const mode of ["hard", "soft", "alwayson"]) {
    for (let replicas = 0; replicas <= 5; replicas++) {
      const spec = specOf({ [Label.replicas]: String(replicas), [Label.failureMode]: mode })
      const a = assessVolume(spec, { inSync: replicas, syncing: 0, failed: 0 }, false)
      assert.equal([a.usable, a.health], [false, "unavailable"], `${mode} replicas=${replicas}`)
    }
  }
  const spec = specOf({ [Label.replicas]: "2" })
  assert.ok(assessVolume(spec, { inSync: 1, syncing: 0, failed: 1 }, false).reason.includes("promoted"))
  assert.ok(assessVolume(spec, { inSync: 0, syncing: 1, failed: 1 }, false).reason.includes("no in-sync replica"))
})

Health("impossible counts are invariant violations (bugs), not answers", () => {
  const spec = specOf({ [Label.replicas]: "2" })
  const bad: ReplicaCounts[] = [
    { inSync: 3, syncing: 0, failed: 0 },
    { inSync: 1, syncing: 1, failed: 1 },
    { inSync: -1, syncing: 0, failed: 0 },
    { inSync: 0.5, syncing: 0, failed: 0 },
    { inSync: 0, syncing: Number.NaN, failed: 0 },
  ]
  for (const counts of bad) assert.throws(() => assessVolume(spec, counts), (e: unknown) => e instanceof InvariantViolation, JSON.stringify(counts))
})

Health("a refusal is a wait only while syncing replicas are all that is missing", () => {
  const soft = specOf({ [Label.replicas]: "2" })
  const hard = specOf({ [Label.replicas]: "1", [Label.failureMode]: "hard" })
  assert.ok(waitsForSync(soft, { inSync: 0, syncing: 2, failed: 0 }), "a new soft volume's first sync")
  assert.ok(waitsForSync(hard, { inSync: 0, syncing: 1, failed: 0 }), "a new hard volume's first sync")
  assert.not.ok(waitsForSync(hard, { inSync: 0, syncing: 0, failed: 1 }), "a failed replica: the refusal stands")
  assert.ok(waitsForSync(soft, { inSync: 0, syncing: 1, failed: 1 }), "one syncing, one failed, tolerance 1: usable (degraded) once synced")
  const strict = specOf({ [Label.replicas]: "2", [Label.failureTolerance]: "0" })
  assert.not.ok(waitsForSync(strict, { inSync: 0, syncing: 1, failed: 1 }), "one syncing, one failed, tolerance 0: unusable even once synced")
  assert.not.ok(waitsForSync(hard, { inSync: 1, syncing: 0, failed: 0 }), "nothing syncing: nothing to wait for")
})

Health("usableVolume (asked on every IO) agrees with assessVolume's verdict for every mode, count and tolerance", () => {
  let compared = 0
  for (const mode of ["hard", "soft", "alwayson"]) {
    for (let replicas = 0; replicas <= 5; replicas++) {
      for (let tolerance = 0; tolerance <= Math.min(replicas, failureToleranceMax); tolerance++) {
        if (mode !== "soft" && tolerance > 0) continue
        const spec = specOf({ [Label.replicas]: String(replicas), [Label.failureMode]: mode, ...(mode === "soft" ? { [Label.failureTolerance]: String(tolerance) } : {}) })
        for (let inSync = 0; inSync <= replicas; inSync++) {
          for (let syncing = 0; inSync + syncing <= replicas; syncing++) {
            for (let failed = 0; inSync + syncing + failed <= replicas; failed++) {
              const counts = { inSync, syncing, failed }
              assert.is(usableVolume(spec, counts), assessVolume(spec, counts).usable, `${mode} replicas=${replicas} tolerance=${tolerance} ${JSON.stringify(counts)}`)
              compared++
            }
          }
        }
      }
    }
  }
  // An unknown mode read from a damaged record: nothing missing is usable, as assessVolume says.
  const odd = { ...specOf({ [Label.replicas]: "1" }), failureMode: "unheard-of" } as unknown as VolumeSpec
  assert.is(usableVolume(odd, { inSync: 1, syncing: 0, failed: 0 }), assessVolume(odd, { inSync: 1, syncing: 0, failed: 0 }).usable)
  assert.ok(compared > 300, `${compared} cases compared`)
})

Health.run()
