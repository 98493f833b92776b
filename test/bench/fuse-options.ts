/**
 * Which libfuse mount options to use: measures none / big_writes / direct_io / both / direct_io +
 * max_read against a null backend and a memory backend, with dd (1 MiB and 4 KiB writes, 1 MiB
 * reads) and fio (4 KiB random writes, buffered), interleaved A B C… per round, median of rounds.
 * The result picked `defaultFuseOptions` in fuse/mount.ts. Node only; needs /dev/fuse.
 *
 * Usage: node --import tsx test/bench/fuse-options.ts [rounds]
 */
import { type FuseBackend, memoryBackend, nullBackend } from "../../fuse/backend.ts"
import { mountVolumesPromise } from "../../fuse/mount.ts"
import { cleanupMount, ddMBps, fuseUnavailableReason, makeTempDir, median, removeDir, runFio, sh } from "../fuse/support.ts"

const rounds = Number(process.argv[2] ?? 3)
const sizeBytes = 256 * 1024 * 1024
const volume = { namespace: "bench", name: "vol", sizeBytes }
const configs: Record<string, ReadonlyArray<string>> = {
  none: [],
  big_writes: ["big_writes"],
  direct_io: ["direct_io"],
  "big_writes+direct_io": ["big_writes", "direct_io"],
  "direct_io+max_read": ["direct_io", "max_read=131072"],
}
const workloads: Record<string, (file: string) => Promise<number>> = {
  "dd write 1M": async (file) => ddMBps((await sh(`dd if=/dev/zero of=${file} bs=1M count=256 conv=notrunc,fsync 2>&1`)).stdout),
  "dd write 4k": async (file) => ddMBps((await sh(`dd if=/dev/zero of=${file} bs=4k count=8192 conv=notrunc,fsync 2>&1`)).stdout),
  "dd read 1M": async (file) => ddMBps((await sh(`dd if=${file} of=/dev/null bs=1M count=256 2>&1`)).stdout),
  "fio randwrite 4k": async (file) =>
    (await runFio(`--name=rw --filename=${file} --rw=randwrite --bs=4k --size=64M --runtime=2 --time_based --ioengine=psync --iodepth=1`)).MBps,
}

const reason = await fuseUnavailableReason()
if (reason !== undefined) {
  console.log(`skipped: ${reason}`)
  process.exit(0)
}
// One backend of each kind for the whole run, its memory touched up front: fresh pages cost ~10x
// on this VM (PLATFORM-NOTES §6 trap 2) and would otherwise be measured instead of FUSE.
const memory = memoryBackend([volume])
memory.contents(volume.namespace, volume.name).fill(1)
const backends: Record<string, FuseBackend> = { null: nullBackend([volume]), memory }
const results = new Map<string, Array<number>>()
const dir = await makeTempDir("replivol-fuse-options-")
try {
  for (let round = 0; round < rounds; round++) {
    for (const [backendName, backend] of Object.entries(backends)) {
      for (const [configName, fuseOptions] of Object.entries(configs)) {
        const handle = await mountVolumesPromise({ mountDir: dir, backend, fuseOptions })
        try {
          for (const [workloadName, workload] of Object.entries(workloads)) {
            const key = `${backendName}\t${configName}\t${workloadName}`
            results.set(key, [...(results.get(key) ?? []), await workload(`${dir}/bench/vol`)])
          }
        } finally {
          await handle.unmount()
        }
      }
    }
  }
} finally {
  await cleanupMount(dir)
  await removeDir(dir)
}
for (const [key, values] of results) {
  const [backend, options, workload] = key.split("\t")
  console.log(JSON.stringify({ backend, options, workload, MBps: Math.round(median(values)), rangeMBps: [Math.round(Math.min(...values)), Math.round(Math.max(...values))] }))
}
