/**
 * What a real replicated volume costs behind FUSE: the same fio jobs through the mounted file of a
 * replicas=1 volume (`replivol cluster up`, 2 nodes, every write on master and replica), through a
 * null FUSE file system (a backend that stores nothing) mounted with the same options as the
 * cluster's mount (`defaultFuseOptions`), and against a plain local file. Jobs: sequential 1 MiB
 * writes and random 4 KiB writes, O_DIRECT, psync at iodepth 1 and libaio at iodepth 16, a few
 * seconds each (libfuse 2.9 does not offer the kernel async direct IO, so the kernel sends one
 * request at a time whatever the iodepth, and a 1 MiB write as 8 requests of 128 KiB). Runs are
 * interleaved (cluster, null, local, cluster, …) because CPU placement moves FUSE results
 * severalfold on a 2-vCPU VM; medians are printed as one JSON line with MB/s and IOPS per target
 * and the ratio cluster/null per job (target ≥ 0.5), with the load average before and after
 * (other work on the machine moves these figures). Node only; needs /dev/fuse. BENCH_CPU_PROF=DIR
 * writes a CPU profile of the `cluster up` process there (`--cpu-prof`), summarized by
 * test/bench/support/profile-top.ts.
 *
 * Usage: node --import tsx test/bench/fuse-cluster.ts [rounds] [secondsPerRun]
 */
import { loadavg } from "node:os"
import { nullBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise } from "../../fuse/mount.ts"
import { startFuseCluster } from "../fuse/support-cluster.ts"
import { cleanupMount, type FioResult, fuseUnavailableReason, makeTempDir, median, removeDir, runFio } from "../fuse/support.ts"

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 3)
const sizeBytes = 256 * 1024 * 1024
const jobs = {
  "seq-write-1m": "--rw=write --bs=1M --ioengine=psync --iodepth=1",
  "rand-write-4k": "--rw=randwrite --bs=4k --ioengine=psync --iodepth=1",
  "seq-write-1m-qd16": "--rw=write --bs=1M --ioengine=libaio --iodepth=16",
  "rand-write-4k-qd16": "--rw=randwrite --bs=4k --ioengine=libaio --iodepth=16",
}
const loadBefore = Number(loadavg()[0]!.toFixed(2))
const profileDir = process.env.BENCH_CPU_PROF

const reason = await fuseUnavailableReason()
if (reason !== undefined) {
  console.log(JSON.stringify({ skipped: reason }))
  process.exit(0)
}

const cluster = await startFuseCluster({
  nodes: 2, hostBase: "127.0.9.", port: 28743, apiPort: 28745, events: false,
  ...(profileDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
})
const nullDir = await makeTempDir("replivol-bench-cluster-null-")
const localDir = await makeTempDir("replivol-bench-cluster-local-")
const results = new Map<string, Array<FioResult>>()
let optionsText = ""
try {
  const view = await cluster.createVolume("bench/vol", "256MiB", { "storageos.com/replicas": "1" })
  const nullMount = await mountVolumesPromise({ mountDir: nullDir, backend: nullBackend([{ namespace: "bench", name: "vol", sizeBytes }]) })
  optionsText = nullMount.optionsText
  const targets = {
    cluster: `${cluster.mount}/bench/vol`,
    null: `${nullDir}/bench/vol`,
    local: `${localDir}/vol`,
  }
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [job, args] of Object.entries(jobs)) {
        for (const [target, file] of Object.entries(targets)) {
          const result = await runFio(
            `--name=${job} --filename=${file} ${args} --size=256M --direct=1 --time_based --runtime=${seconds} --ramp_time=0.5`,
          )
          results.set(`${job}/${target}`, [...(results.get(`${job}/${target}`) ?? []), result])
        }
      }
    }
  } finally {
    await nullMount.unmount()
  }
  const after = await cluster.inspect("bench/vol")
  if (after.health !== "healthy" || after.master !== view.master) throw new Error(`the volume changed during the benchmark: ${JSON.stringify(after)}`)
} finally {
  await cluster.stop()
  await cluster.remove()
  await cleanupMount(nullDir)
  await removeDir(nullDir)
  await removeDir(localDir)
}

const summary = (job: string, target: string) => {
  const runs = results.get(`${job}/${target}`) ?? []
  return { MBps: Number(median(runs.map((run) => run.MBps)).toFixed(1)), iops: Math.round(median(runs.map((run) => run.iops))), runsMBps: runs.map((run) => Number(run.MBps.toFixed(1))) }
}
const line: Record<string, unknown> = { bench: "fuse-cluster", replicas: 1, options: optionsText, rounds, seconds, loadAverage: { before: loadBefore, after: Number(loadavg()[0]!.toFixed(2)) } }
for (const job of Object.keys(jobs)) {
  const [clusterFs, nullFs, local] = [summary(job, "cluster"), summary(job, "null"), summary(job, "local")]
  line[job] = { cluster: clusterFs, null: nullFs, local, ratioClusterToNull: Number((clusterFs.MBps / nullFs.MBps).toFixed(2)), targetRatio: 0.5 }
}
console.log(JSON.stringify(line))
