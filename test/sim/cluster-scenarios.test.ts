/**
 * Named scenarios: bugs the cluster simulator found, each a fixed seed with the faults that found
 * it (the other kinds of fault switched off), which failed before its fix and passes after it.
 * Each states the bug in one line and asserts what the simulator's checkers assert for any seed.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { noFaults, operationsMix, type FaultWeights } from "../../lib/testing/clusterFaults.ts"
import { runClusterSim } from "../../lib/testing/clusterSim.ts"

const test = suite("cluster simulation: named scenarios")
const none = noFaults

interface Scenario {
  readonly name: string
  readonly seed: number
  /** The faults that found it, over no faults; "seed" runs the seed's own mix (a bug the seeded sweep found). */
  readonly faults: Partial<FaultWeights> | "seed"
  /** A longer fault phase than the default, when the bug needs one. */
  readonly faultMs?: number
}

const scenarios: ReadonlyArray<Scenario> = [
  // The old master of a volume deleted and created again within one agent tick (same node, same
  // epoch 1) kept serving the new volume from the old copy: its acknowledged writes went to a copy
  // about to be discarded, and the replicas (another volume id) never synced. Fixed: a new volume
  // starts above every epoch of the name; clients and masters check the epoch; a copy of another
  // volume id is closed before the new one opens.
  { name: "delete and re-create within one tick", seed: 1, faults: { recreate: 3, crash: 0.2 } },
  // A read error of the master's own store while syncing a replica was a defect: it killed the
  // sync fiber (of an opening master: the whole open), so the volume never got a serving master.
  // Fixed: the replica's link fails (its regions stay owed) and a revive retries.
  { name: "a read error while syncing a replica", seed: 2, faults: { "store-fault": 2, crash: 1 } },
  // A master opened while a recorded replica's node was away built its link to the placeholder
  // address 0.0.0.0:0 and revived it there for good once the node returned (degraded forever).
  // Fixed: a failed link whose address is not the node's registered one is dropped and re-added.
  { name: "a replica away while its master opened", seed: 12, faults: { wipe: 1, crash: 1 } },
  // A replica of a hard volume was wiped and restarted; no write was acknowledged without it, so
  // it stayed recorded in sync. Its master lost its lease under control-store latency and the
  // controller promoted the empty copy (acknowledged blocks read back wrong). Fixed: a replica
  // vouches for its copy only while its node runs the process it was recorded in sync under; while
  // the lost master may return, only a replica that vouches is promoted.
  { name: "a wiped replica still recorded in sync, its master's lease lost", seed: 8, faults: { wipe: 1, latency: 1 } },
  // A volume update lowered the replica count just after its master lost power (its node lease
  // not yet expired, so it still looked alive): the API dropped the in-sync replica, the only copy
  // left with every acknowledged write; the master restarted with what its disk kept and served
  // it. Fixed: the surplus in-sync replicas are dropped by the serving master (records.ts
  // `trimReplicas`), which is sure to hold every acknowledged write. (Seed 8 of this mix too.)
  { name: "replicas lowered while the master had just lost power", seed: 67, faults: operationsMix, faultMs: 6000 },
  // Two drains at once each placed an extra copy of one volume: the second replaced the first
  // one's new copy, the first then failed, and the volume kept a replica more than it asked for.
  // Fixed: no extra copy is placed while the volume has one beyond its count already.
  { name: "two drains at once", seed: 10, faults: { move: 3, cordon: 0.5, drain: 1, crash: 1, "power-loss": 0.5, isolate: 0.4, reset: 0.4, pause: 0.3, "store-fault": 0.3 } },
  // The master's process crashed twice (its page cache kept every write it acknowledged); its
  // in-sync replica then lost power while its node lease had not expired, so it still looked alive
  // and vouching. The restarted master could not tell its crash from a power loss and stepped down
  // for it; the replica was promoted and served what its disk kept. Fixed: a copy proves it holds
  // what its node's earlier process wrote while the machine's boot and its record are the ones its
  // marker names (lib/store/continuity.ts), and a master that served at this epoch before its
  // crash serves again. (Seeds 8, 47 and 67 of this mix failed the same way; seed 377 of the sweep.)
  { name: "a crashed master stepped down for a replica that had just lost power", seed: 70, faults: { crash: 1, "power-loss": 1 } },
  // The master lost power while its in-sync replica was away (its node lease lost). The restarted
  // master could not prove its recent writes, and with no in-sync replica up it served alone at
  // once; the replica returned and was synced from the copy that had lost writes it held. Fixed: a
  // copy that cannot prove its recent writes (no continuity marker of this boot) waits up to the
  // grace period for a listed in-sync replica that is away (agentPlan.ts `stepDownDecision`).
  { name: "a master that lost power served alone while its in-sync replica was away", seed: 276, faults: "seed" },
  // An in-sync replica lost power moments before its master lost its lease; its node lease not
  // expired yet, it still looked alive and vouching, and was promoted. The lost master's copy, the
  // only one with every acknowledged write, was dropped from the record, and the replica came back
  // with a new process and served what its disk kept. Fixed: the lost master stays listed
  // (`formerMaster`) until the new master serves; a promoted copy that cannot prove its recent
  // writes waits for it and steps down for it once it proves it served at that epoch.
  { name: "a replica that had just lost power was promoted and the old master's copy dropped", seed: 783, faults: "seed" },
  // The volume never converged: its restarted master could not prove its recent writes, and the
  // in-sync replica it needed had been failed by the controller meanwhile, as soon as the
  // replica's node was lost, while a master that died with it could still hold its lease. Fixed
  // (1915a45): the controller fails an in-sync replica on a lost node only after two lease TTLs,
  // when such a master has lost its lease too. Seed 321 of the normal run; 1489, 1705, 1854 and
  // 1969 of a sweep failed the same way.
  { name: "an in-sync replica on a lost node was failed while its master still held its lease", seed: 321, faults: "seed" },
  { name: "an in-sync replica on a lost node was failed while its master still held its lease, a sweep seed", seed: 1969, faults: "seed" },
  // A replica crashed (its machine stayed up) while recorded in sync. Its agent did not re-stamp
  // its entry: it also asked the copy's own record to say complete, and a replica's record says
  // incomplete while a session runs. The copy that held every acknowledged write no longer
  // vouched, and one that had lost power served. Fixed: the in-sync entry and the continuity marker are the
  // proof (agent.ts `continueInSync`); the record need only name this volume.
  { name: "a crashed in-sync replica was not re-stamped because its record said incomplete", seed: 8, faults: { crash: 1, "power-loss": 1 } },
  // The master lost power; its in-sync replica crashed after the master's process restarted and
  // proved its continuity (re-stamped in sync under its new process). The master stepped down only
  // for a replica whose process had run since before its own, so it served what its disk kept and
  // synced it over the replica. Fixed: a replica recorded in sync under its node's current process
  // is stepped down for whenever it started (agentPlan.ts `holdsEveryAcknowledgedWrite`). Seed 92
  // of this mix failed the same way.
  { name: "a master that lost power served over a replica that had crashed and proved its continuity", seed: 31, faults: { crash: 1, "power-loss": 1 } },
  // A replica's fdatasync failed (the page cache dropped writes it had acknowledged) while its
  // master, cut off from the control store, could not record it failed. The master was lost, and
  // the replica, still recorded in sync and vouching, was promoted (after a promoted copy that
  // never served) and served what its disk kept. Fixed: a replica whose own write or fdatasync
  // failed records itself failed (agentPlan.ts `record-own-failure`) and never counts itself in
  // sync until a master's sync completes it again. Found by the 10 000-seed sweep.
  { name: "a replica whose fdatasync failed was promoted while recorded in sync", seed: 2297, faults: "seed" },
  // The master and one replica lost power; the other replica, in sync and vouching, was promoted.
  // Its own record said incomplete (a replica's does mid-session), so it stepped down for the
  // replica that had lost power, which was promoted in turn and served what its disk kept. Fixed:
  // a copy promoted from a vouching in-sync replica counts as complete in the step-down rule too
  // (agentPlan.ts `vouchedFor`). Found by the 10 000-seed sweep.
  { name: "a promoted replica stepped down for one that had lost power", seed: 3271, faults: "seed" },
  // A sole master's fdatasync failed and it fenced itself; with no copy recorded in sync anywhere
  // it waited for good. Fixed: such a master serves again once past the grace period (it holds
  // every write up to its last good flush, all a failed flush promised). The run has changed course
  // since it was found (sweep of f834626); the unit test in agentPlan.test.ts holds the case.
  { name: "a master fenced by its own failed fdatasync, no copy in sync anywhere", seed: 1295, faults: "seed" },
  // A copy that had served as master in this process, then hosted as a replica, looked never
  // written: its activity log started known and empty, and the next master's delta missed the
  // writes its fenced session made locally (verify found 2 differing regions). Fixed: createdEmpty
  // ends at a copy's first write (BlockStore.ts `emptyUntilWritten`; unit test). The run has
  // changed course since it was found (sweep of f834626).
  { name: "a copy that served, then hosted a replica, looked never written", seed: 3013, faults: "seed" },
  // A volume was deleted and created again while the node placed as its new master was away with
  // a wiped disk. The node came back, its copy was made while it waited (the old volume's record
  // still stood), closed, and opened again with no record: a copy of unknown content, so the new
  // volume, never served, waited for good. Fixed: a copy created with no record is recorded
  // `empty` for the volume's id at once (copies.ts `recordedEmpty`). Found by the 10 000-seed sweep.
  { name: "a re-created volume's master, back with a wiped disk, waited for good", seed: 6597, faults: "seed" },
  // A replica was promoted, and its node crashed (6415: and came back wiped) or lost power (5578)
  // while it opened its session. It still held its master lease, so the controller took it for
  // serving and dropped the former master's copy, the only one with every acknowledged write; the
  // promoted copy then served what its disk kept. Fixed: the former master goes only once the
  // lease is marked serving (placement.ts `masterServing`); a copy of a volume whose epoch moved
  // past its creation never serves as empty (records.ts `createdEpoch`). Found by the 10 000-seed sweep.
  { name: "a former master's copy was dropped while the promoted master was still opening", seed: 5578, faults: "seed" },
  { name: "a promoted master back with a wiped disk served zeros", seed: 6415, faults: "seed" },
  // The checker, not the cluster: a sole master acknowledged a write, then its fdatasync failed and
  // dropped the page cache; the acknowledgement reached the application after the loss, so the
  // checker demanded the write, which the loss had legitimately taken (it was never flushed).
  // Fixed in the model: a write its master acknowledged before a legitimate loss may be lost with
  // it (clusterModel.ts `masterAcknowledged`). Found by the 10 000-seed sweep.
  { name: "a write acknowledged just before a failed fdatasync dropped the page cache", seed: 1171, faults: "seed" },
  // The master's node lost power; its in-sync replica's process crashed (the machine stayed up) and
  // came back. The master, with no proof of its own recent writes, read the record just before the
  // replica's re-stamp (agent.ts `continueInSync`) committed, saw no replica that vouched, served,
  // and synced its copy over the replica's, the only one holding every acknowledged write. Fixed:
  // such a copy waits, up to the grace period, for an in-sync replica that restarted and has not
  // proven its copy yet (agentPlan.ts `stepDownDecision`). Found by the 10 000-seed sweep (6318 too).
  { name: "a master that lost power served before its restarted replica re-stamped its copy", seed: 2578, faults: "seed" },
  { name: "a master that lost power served before its restarted replica re-stamped its copy (again)", seed: 6318, faults: "seed" },
  // The promoted master synced the former master's copy, then lost power while its lease was still
  // marked serving; the controller dropped the former master's entry (the new master "serves"),
  // the only other copy with every acknowledged write. Fixed: a former master the new master has
  // synced at its epoch is kept as an ordinary in-sync replica (placement.ts `settleFormerMasters`).
  { name: "a re-synced former master was dropped while the new master had just lost power", seed: 3439, faults: "seed" },
  // The checker, not the cluster: a write failed but landed, a flush made it durable, a later write
  // was acknowledged and lost, unflushed, with the last holder's power; the block read the failed
  // write, which the model did not count as durable (clusterModel.ts `failedBefore`).
  { name: "a power loss rolled a block back to a failed write a flush had made durable", seed: 6594, faults: "seed" },
  // The checker, not the cluster: healthy was seen while a re-synced former master's entry waited
  // for the controller's next tick; the count is now checked once it settles (clusterSim.ts `countSettles`).
  { name: "the replica count was judged before a former master's entry was settled", seed: 2468, faults: "seed" },
  // The checker, not the cluster: a node paused past its lease re-registered when the faults were
  // healed; the count had settled once, then the controller failed its replica (node lost) and the
  // master revived it, in sync 3 ms after the count was judged. The count is now awaited again when
  // it is judged (clusterSim.ts `checkReplicaCount`). Found by the 10 000-seed sweep.
  { name: "the replica count was judged while a re-registered node's replica was revived", seed: 8611, faults: "seed" },
  // The simulator, not the cluster: two re-creations of one volume ran at once and the second's
  // create found the first's volume (clusterFaults.ts `recreate` skips a suspended volume).
  { name: "two re-creations of one volume at once", seed: 5920, faults: "seed" },
  // The checker, not the cluster: a lowered count trimmed a replica the master had not yet let go
  // when the verify after convergence began; that copy closed under it (clusterOperations.ts `verifyCopies`).
  { name: "a verify after convergence met a replica the lowered count had just trimmed", seed: 114, faults: "seed" },
  // The checker, not the cluster: a master stepped down, the only reachable in-sync replica had
  // lost power (it did not vouch) and was promoted; it waited, stepped down for the better copy and
  // served nothing. Such a promotion is now checked when that master serves (clusterSim.ts `onServing`).
  { name: "a promoted copy that did not vouch waited and stepped down", seed: 3513, faults: "seed" },
  // The promoted replica's process had crashed (its node lease not expired yet). Back as the
  // recorded master, it could not prove its copy and stepped down; the controller then promoted the
  // former master, which had lost power, and dropped the copy that held every acknowledged write.
  // A promotion now names the process it chose (records.ts `promotedFrom`), and one continuing it
  // proves the copy (agentPlan.ts `provenByPromotion`). Found by the 10 000-seed sweep.
  { name: "a promoted copy whose process had crashed stepped down for one that had lost power", seed: 9346, faults: "seed" },
  // The checker, not the cluster: a master's failed write to its only copy ended inside a sector
  // (a short write stops at any byte); the checker took only whole sectors of a torn write
  // (clusterModel.ts `tornOf`). Found by the 10 000-seed sweep.
  { name: "a torn write that ended inside a sector", seed: 7452, faults: "seed" },
  // The master's fdatasync failed and dropped its page cache; its replica crashed a moment later
  // and the fenced master recorded it failed, so no copy was in sync and the damaged master served
  // after the grace period, over the replica that held every write. A master whose own copy is
  // damaged records no replica failed (masterVolume.ts `persistFailure`). Found by the 10 000-seed sweep.
  { name: "a master fenced by a failed fdatasync recorded its better replica failed", seed: 7309, faults: "seed" },
  // A promoted master was paused before it served and replaced; the copy promoted next lost power
  // while opening, waited only the grace period for it and served without the writes it held. A
  // copy that may hold more is now waited for until it is back (agentPlan.ts `waitForAway`; an
  // operator may end the wait: `volume accept-loss`), and the paused one proves its copy by the
  // process it was promoted under (records.ts `promotedIncarnation`). Found by the 10 000-seed sweep.
  { name: "a copy that lost power served after the grace period while the better copy was paused", seed: 8470, faults: "seed" },
  // The first version of the rule that a master never marks a replica in sync over a failure
  // someone else recorded during the link's session (agentPlan.ts `overruled`) acted on the tick's
  // record: read before the master's own in-sync write, it still showed the failure the session
  // began from, so the master failed a link it had just marked in sync, and the replica ended
  // failed. Fixed: the link is failed by the compare-and-swap that refuses the mark, which reads
  // the entry fresh (masterRole.ts `markInSession`), never from the tick's record. Found by the sweep of that version (seeds 873 and 952).
  { name: "a tick's stale record overruled the master's own in-sync mark", seed: 873, faults: "seed" },
  { name: "a tick's stale record overruled the master's own in-sync mark, another mix", seed: 952, faults: "seed" },
  // The second version decided in the compare-and-swap, from the entry as it read it, but a read
  // that left before the master's own in-sync write committed (control-store latency) still
  // showed the old failure, and its refusal failed the link all the same; the replica ended
  // failed. Fixed: the master keeps the record revision it last saw the entry not failed at, and a
  // failure counts only in a newer record (agentPlan.ts `overruled`). Found by the sweep (seed 2467).
  { name: "a read from before the master's own in-sync write overruled it", seed: 2467, faults: "seed" },
]

for (const { name, seed, faults, faultMs } of scenarios) {
  test(`${name} (seed ${seed})`, async () => {
    const result = await runClusterSim({ seed, ...(faults === "seed" ? {} : { faultWeights: { ...none, ...faults } }), ...(faultMs === undefined ? {} : { faultMs }) })
    assert.equal(result.violations, [], `replay: the "${name}" scenario in test/sim/cluster-scenarios.test.ts`)
  })
}

// Online resizes among each seed's own faults (crashes, power losses, partitions, store errors,
// re-creates…): every checker holds, and every resize is done once the cluster converged (a
// resize the master's crash interrupted is completed by the next master, never lost or undone).
const resizeSeeds = Number(process.env.CLUSTER_SIM_RESIZE_SEEDS ?? 16)
test(`online resizes among the seed's faults: seeds 1..${resizeSeeds}`, async () => {
  const failures: string[] = []
  let resizes = 0
  for (let seed = 1; seed <= resizeSeeds; seed++) {
    const result = await runClusterSim({ seed, faultWeights: { resize: 3 } })
    resizes += result.faults.resize ?? 0
    if (result.violations.length > 0) failures.push(`seed ${seed}: ${result.violations.slice(0, 2).join("; ")}`)
  }
  console.log(`    ${resizeSeeds} seeds, ${resizes} resizes among their faults`)
  assert.ok(resizes >= resizeSeeds, `resizes happened (${resizes})`)
  assert.equal(failures, [], failures.join("\n"))
})

test.run()
