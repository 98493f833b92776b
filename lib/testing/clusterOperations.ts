/**
 * The cluster simulator's operations: what an operator does to a live cluster, drawn from the seed
 * among the faults (clusterFaults.ts's table) and bounded in time — each through some running
 * node's API, the way the CLI and the admin API call it:
 *
 * - resize: a volume grows online (`volume resize`);
 * - update: a volume's labels change at run time (`volume update`): its replica count up or down
 *   (0 to one per other node), failure mode and tolerance, nocompress, hint.master;
 * - move: a volume's master moves to a random node (`volume move`);
 * - cordon: a node is cordoned for a while; drain: a node is drained (`node drain`), then uncordoned;
 * - verify: a volume's copies are compared with its master's (`volume verify`), in the background
 *   while the faults go on; any region it reports differing is a violation.
 *
 * Refusals (a typed reason: too few nodes, no serving master, a move to its own master…) are
 * expected, counted apart, never violations. `verifyCopies` is also the checker run on every
 * volume after convergence (clusterSim.ts).
 */
import { Effect, Schedule } from "effect"
import type { VolumeRecord } from "../cluster/records.ts"
import type { VolumeLabelChange } from "../cluster/types.ts"
import type { VerifyReport } from "../replication/verify.ts"
import { Label, LabelError, validateLabels, type FailureMode, type VolumeSpec } from "../volume/labels.ts"
import { between, count, nameOf, nodeCount, report, runningNodes, type SimVolume, type SimWorld } from "./clusterWorld.ts"

type SimNode = NonNullable<SimWorld["slots"][number]["node"]>

const pickVolume = (world: SimWorld) => world.volumes[Math.floor(world.faultRandom.next() * world.volumes.length)]!

/** How far a resize fault grows a volume at most, against its size at creation (keeps the sparse pages bounded). */
const resizeGrowthMax = 4

/**
 * A volume grows online (`volume resize`, through some running node): the request is recorded and
 * the fault returns; the master grows every copy and commits while the other faults go on, and
 * the model follows the committed size (clusterSim.ts). Converged, every copy must have it.
 */
export const resize = (world: SimWorld, _index: number) =>
  Effect.gen(function* () {
    const volume = pickVolume(world)
    const record = volume.model.record
    const via = runningNodes(world)[0]?.node
    if (!record || !via) return
    const base = record.resizeToBytes ?? record.sizeBytes
    const next = Math.min(base + (1 + Math.floor(world.faultRandom.next() * 4)) * 1024 * 1024, volume.createdBytes * resizeGrowthMax)
    if (next <= base) return
    const result = yield* Effect.result(via.resizeVolume(volume.name, next, 0))
    if (result._tag === "Success") count(world, "resize", `${volume.name} to ${next}`)
  })

/** Bound of one move, drain or update in the simulator (a refused one returns at once). */
const operationMaxMs = 30_000

/** Runs `operation` through some running node within `operationMaxMs`; counts it done, refused (a typed reason) or cut short. */
const operate = (world: SimWorld, name: string, target: string, operation: (via: SimNode) => Effect.Effect<unknown, { readonly _tag: string; readonly reason?: string }>) =>
  Effect.gen(function* () {
    const via = runningNodes(world)[Math.floor(world.faultRandom.next() * Math.max(1, runningNodes(world).length))]?.node
    if (!via) return "no-node" as const
    const result = yield* Effect.result(operation(via).pipe(Effect.timeoutOrElse({ duration: operationMaxMs, orElse: () => Effect.succeed("timeout" as const) })))
    const outcome = result._tag === "Failure" ? "refused" as const : result.success === "timeout" ? "cut-short" as const : "done" as const
    count(world, outcome === "done" ? name : `${name}-${outcome}`, target)
    return outcome
  })

/** A volume's master moves to a random node (often refused: the node is its master, down or cordoned). */
export const move = (world: SimWorld, index: number) => {
  const volume = pickVolume(world)
  const to = world.slots[index]!.host.name
  return Effect.asVoid(operate(world, "move", `${volume.name} → ${to}`, (via) => via.moveVolume(volume.name, to)))
}

/** Sets the node's cordon through some running node, retrying while the control store is out of reach. */
const setCordon = (world: SimWorld, node: string, cordoned: boolean) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 50; attempt++) {
      const via = runningNodes(world)[0]?.node
      const result = via ? yield* Effect.result(via.configureNode(node, { cordoned })) : undefined
      if (result?._tag === "Success") return
      yield* Effect.sleep(100)
    }
  })

export const cordon = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const node = world.slots[index]!.host.name
    yield* setCordon(world, node, true)
    count(world, "cordon", node)
    yield* Effect.sleep(between(world, 500, 4000))
    yield* setCordon(world, node, false)
  })

/** The node is drained (or the drain refused), then uncordoned so it takes copies again. */
export const drain = (world: SimWorld, index: number) =>
  Effect.gen(function* () {
    const node = world.slots[index]!.host.name
    yield* operate(world, "drain", node, (via) => via.drainNode(node))
    yield* setCordon(world, node, false)
  })

/** Replica counts an update asks for: none up to one per other node (more is refused), one or two most often. */
const updateReplicaCounts = [0, 1, 1, 2, 2, 3, 4]
const updateModes: ReadonlyArray<FailureMode> = ["soft", "hard", "alwayson"]

/**
 * A label change drawn from the seed, and the spec it asks for. Every label an update decides is
 * set or removed explicitly, so the spec follows from the change whatever the record holds then
 * (the labels it leaves alone, the topology key and encryption, no update changes).
 */
const drawChange = (world: SimWorld, record: VolumeRecord): { readonly change: VolumeLabelChange; readonly spec: VolumeSpec | LabelError } => {
  const random = world.faultRandom
  const replicas = updateReplicaCounts[Math.floor(random.next() * updateReplicaCounts.length)]!
  const mode = updateModes[Math.floor(random.next() * updateModes.length)]!
  const tolerance = random.next() < 0.5 ? undefined : Math.floor(random.next() * (replicas + 1))
  const hint = random.next() < 0.25 ? nameOf(Math.floor(random.next() * nodeCount)) : undefined
  const setLabels: Record<string, string> = {
    [Label.replicas]: String(replicas), [Label.failureMode]: mode, [Label.nocompress]: String(random.next() < 0.5),
    ...(tolerance === undefined ? {} : { [Label.failureTolerance]: String(tolerance) }),
    ...(hint === undefined ? {} : { [Label.hintMaster]: hint }),
  }
  const removeLabels: string[] = [...(tolerance === undefined ? [Label.failureTolerance] : []), ...(hint === undefined ? [Label.hintMaster] : [])]
  const labels = Object.fromEntries(Object.entries({ ...record.labels, ...setLabels }).filter(([key]) => !removeLabels.includes(key)))
  return { change: { setLabels, removeLabels }, spec: validateLabels(labels) }
}

/**
 * A volume's labels change at run time (`volume update`, through some running node). While the
 * call is under way its spec is one a committed record may change to (the model's
 * `updatesInFlight`; clusterSim.ts reports any other change of a record's spec as a lost update);
 * converged, the volume must be healthy with the new count and every copy byte-identical.
 */
export const update = (world: SimWorld, _index: number) =>
  Effect.gen(function* () {
    const volume = pickVolume(world)
    const model = volume.model
    const record = model.record
    if (!record) return
    const { change, spec } = drawChange(world, record)
    if (spec instanceof LabelError) return report(world, "run-failed", `${volume.name}: the simulator drew labels the cluster cannot take: ${spec.message}`)
    model.updatesInFlight.push(spec)
    const outcome = yield* operate(world, "update", `${volume.name} replicas ${record.spec.replicas} → ${spec.replicas}, ${spec.failureMode}`, (via) => via.updateVolume(volume.name, change))
    model.updatesInFlight.splice(model.updatesInFlight.indexOf(spec), 1)
    if (outcome === "done" && spec.replicas !== record.spec.replicas) count(world, spec.replicas > record.spec.replicas ? "update-replicas-up" : "update-replicas-down", volume.name)
  })

/** Region compared by one Verify frame in the simulator (small: a difference names a small range). */
const verifyRegionBytes = 64 * 1024

/** The regions `report` found differing, as violations; how many there were. */
const reportDifferences = (world: SimWorld, volume: SimVolume, verified: VerifyReport, phase: string) => {
  if (verified.differencesFound === 0) return 0
  const first = verified.differences[0]
  report(world, "verify-difference", `${volume.name}: verify ${phase} (master ${verified.master}, epoch ${verified.epoch}) found ${verified.differencesFound} differing regions${first ? ` (first: ${first.node} at offset ${first.offset}, ${first.length} bytes)` : ""}`)
  return verified.differencesFound
}

/** The node serving the volume's last committed record as its master, if it runs. */
const masterNodeOf = (world: SimWorld, volume: SimVolume): SimNode | undefined => {
  const master = volume.model.record?.master
  const slot = master === undefined ? undefined : world.slots.find((s) => s.host.name === master)
  return slot?.node && !slot.host.isPaused() ? slot.node : undefined
}

/** How long a verify fault watches its verify before it lets it run on alone. */
const verifyWatchMs = 10_000

/**
 * A volume is verified while the faults go on (`volume verify`, started on its master node in
 * the background, watched for a bounded time): no in-sync copy may differ from the master, faults
 * or not — a copy that fails meanwhile is skipped, never reported as a difference.
 */
export const verifyDuringFaults = (world: SimWorld, _index: number) =>
  Effect.gen(function* () {
    const volume = pickVolume(world)
    const via = masterNodeOf(world, volume)
    if (!via) return
    const started = yield* Effect.result(via.startVerify(volume.name, { regionBytes: verifyRegionBytes }))
    if (started._tag === "Failure") return count(world, "verify-refused", volume.name)
    const verifying = started.success
    for (let waitedMs = 0; verifying.state === "running" && waitedMs < verifyWatchMs; waitedMs += 100) yield* Effect.sleep(100)
    reportDifferences(world, volume, verifying, "during the faults")
    count(world, verifying.state === "done" ? "verify" : verifying.state === "failed" ? "verify-failed" : "verify-cut-short", volume.name)
  })

/**
 * The verify checker, after convergence: the volume's master compares every in-sync replica with
 * its own copy; a differing region, a copy skipped, or a replica the record calls in sync that
 * the master did not compare is a violation (nothing fails any more by then).
 */
export const verifyCopies = (world: SimWorld, volume: SimVolume) =>
  Effect.gen(function* () {
    const via = masterNodeOf(world, volume)
    const record = volume.model.record
    if (!via || !record) return report(world, "no-convergence", `${volume.name}: no running master to verify the copies (record: ${record?.master ?? "none"})`)
    // A verify started during the faults may still run (one at a time per master session): wait for it, bounded.
    const isBusy = (error: { readonly _tag: string }) => error._tag === "ReplicationError" && (error as { readonly reason?: string }).reason === "busy"
    const result = yield* Effect.result(via.verifyVolume(volume.name, { regionBytes: verifyRegionBytes }).pipe(
      Effect.retry({ while: isBusy, times: 60, schedule: Schedule.spaced(500) })))
    if (result._tag === "Failure") return report(world, "no-convergence", `${volume.name}: verify after convergence failed: ${result.failure.message}`)
    const verified = result.success
    if (reportDifferences(world, volume, verified, "after convergence") > 0) return
    // A copy the record no longer names (a lowered count trimmed it; the master had not yet read
    // that record when the verify began) closes under the verify: skipped, and rightly (sweep seed 114).
    const recorded = new Set((volume.model.record ?? record).replicas.map((r) => r.node))
    const skipped = verified.copies.filter((c) => c.state === "skipped" && recorded.has(c.node))
    if (skipped.length > 0) return report(world, "no-convergence", `${volume.name}: verify after convergence skipped ${skipped.map((c) => `${c.node} (${c.reason})`).join(", ")}`)
    const compared = new Set(verified.copies.map((c) => c.node))
    const missed = record.replicas.filter((r) => r.state === "in-sync" && !compared.has(r.node)).map((r) => r.node)
    if (missed.length > 0) report(world, "no-convergence", `${volume.name}: the record calls ${missed.join(", ")} in sync, yet master ${verified.master} did not compare ${missed.length === 1 ? "it" : "them"}`)
  })
