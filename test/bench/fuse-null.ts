/**
 * What the FUSE front-end costs: fio through a null FUSE file system (a backend that stores
 * nothing), through a memory backend, and against a plain local file, with the mount options of
 * `defaultFuseOptions`. Jobs: sequential 1 MiB writes and random 4 KiB writes, iodepth 1, O_DIRECT,
 * a few seconds each. Runs are interleaved (null, memory, local, null, …) because CPU placement
 * moves FUSE results severalfold on a 2-vCPU VM (PLATFORM-NOTES §6); medians are printed, one JSON
 * line per job, with the ratios memory/null and null/local. Node only; needs /dev/fuse.
 *
 * Usage: node --import tsx test/bench/fuse-null.ts [rounds] [secondsPerRun]
 */
import { memoryBackend, nullBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise } from "../../fuse/mount.ts"
import { cleanupMount, type FioResult, fuseUnavailableReason, makeTempDir, median, removeDir, runFio } from "../fuse/support.ts"

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 3)
const sizeBytes = 256 * 1024 * 1024
const volume = { namespace: "bench", name: "vol", sizeBytes }
const jobs = {
  "seq-write-1m": "--rw=write --bs=1M",
  "rand-write-4k": "--rw=randwrite --bs=4k",
}

const reason = await fuseUnavailableReason()
if (reason !== undefined) {
  console.log(JSON.stringify({ skipped: reason }))
  process.exit(0)
}

const nullDir = await makeTempDir("replivol-bench-null-")
const memoryDir = await makeTempDir("replivol-bench-memory-")
const localDir = await makeTempDir("replivol-bench-local-")
const memory = memoryBackend([volume])
memory.contents(volume.namespace, volume.name).fill(1) // touch the pages first (fresh memory is ~10x slower to touch here)
const nullMount = await mountVolumesPromise({ mountDir: nullDir, backend: nullBackend([volume]) })
const memoryMount = await mountVolumesPromise({ mountDir: memoryDir, backend: memory })
const targets = {
  null: `${nullDir}/bench/vol`,
  memory: `${memoryDir}/bench/vol`,
  local: `${localDir}/vol`,
}
const results = new Map<string, Array<FioResult>>()
try {
  for (let round = 0; round < rounds; round++) {
    for (const [job, args] of Object.entries(jobs)) {
      for (const [target, file] of Object.entries(targets)) {
        const result = await runFio(
          `--name=${job} --filename=${file} ${args} --size=256M --direct=1 --ioengine=psync --iodepth=1 --time_based --runtime=${seconds} --ramp_time=0.5`,
        )
        results.set(`${job}/${target}`, [...(results.get(`${job}/${target}`) ?? []), result])
      }
    }
  }
} finally {
  await nullMount.unmount()
  await memoryMount.unmount()
  for (const dir of [nullDir, memoryDir]) await cleanupMount(dir)
  for (const dir of [nullDir, memoryDir, localDir]) await removeDir(dir)
}
const summary = (job: string, target: string) => {
  const runs = results.get(`${job}/${target}`) ?? []
  return { MBps: Math.round(median(runs.map((run) => run.MBps))), iops: Math.round(median(runs.map((run) => run.iops))), runsMBps: runs.map((run) => Math.round(run.MBps)) }
}
for (const job of Object.keys(jobs)) {
  const [nullFs, memoryFs, local] = [summary(job, "null"), summary(job, "memory"), summary(job, "local")]
  console.log(JSON.stringify({
    job, options: nullMount.optionsText, rounds, seconds,
    null: nullFs, memory: memoryFs, local,
    ratioMemoryToNull: Number((memoryFs.MBps / nullFs.MBps).toFixed(2)),
    ratioNullToLocal: Number((nullFs.MBps / local.MBps).toFixed(2)),
  }))
}
