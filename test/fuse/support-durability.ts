/**
 * Helpers of the durability drills (test/fuse/cluster-durability.test.ts): a seeded pattern file,
 * dd through the FUSE mount with direct IO and an fsync at the end, the sha256 of a mounted range,
 * the node-local copies compared byte for byte (`cmp` names the first differing byte), a node's
 * data directory emptied, the CLI's crash drills, and a small loop-mounted ext4 under a node's data
 * directory (the disk-full drill). Everything that touches the mount or the copies runs in a child
 * process (`sh`), never in this one.
 */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { writeFile } from "node:fs/promises"
import { mulberry32 } from "../../lib/core/seeded.ts"
import { pollFor, sha256Of, type FuseCluster, type VolumeView } from "./support-cluster.ts"
import { sh } from "./support.ts"

export const mibBytes = 1024 * 1024

/** The bytes of a seeded pattern (the same seed gives the same bytes). */
export const patternBytes = (sizeBytes: number, seed: number): Uint8Array => {
  const random = mulberry32(seed)
  const words = new Uint32Array(sizeBytes / 4)
  for (let index = 0; index < words.length; index++) words[index] = random.nextUint32()
  return new Uint8Array(words.buffer)
}

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** Writes the seeded pattern to `path` (outside the mount); its bytes. */
export const writePatternFile = async (path: string, sizeBytes: number, seed: number): Promise<Uint8Array> => {
  const bytes = patternBytes(sizeBytes, seed)
  await writeFile(path, bytes)
  return bytes
}

/** `dd` of `countMiB` MiB from `source` into `file` at `seekMiB`: O_DIRECT, no truncation, fsync before dd exits. */
export const ddWrite = async (source: string, file: string, seekMiB: number, countMiB: number): Promise<void> => {
  const result = await sh(`dd if='${source}' of='${file}' bs=1M count=${countMiB} seek=${seekMiB} oflag=direct conv=notrunc,fsync status=none`, 180_000)
  if (result.code !== 0) throw new Error(`dd of ${countMiB} MiB into ${file} at ${seekMiB} MiB failed (${result.code}): ${result.stderr}`)
}

/** sha256 of `countMiB` MiB of `file` from `skipMiB`, read with O_DIRECT by dd. */
export const mountedSha = async (file: string, skipMiB: number, countMiB: number): Promise<string> => {
  // dd's exit code is lost in the pipe: any dd complaint on stderr counts as a failed read.
  const result = await sh(`dd if='${file}' bs=1M skip=${skipMiB} count=${countMiB} iflag=direct status=none | sha256sum`, 180_000)
  const sum = result.stdout.trim().split(/\s+/)[0] ?? ""
  if (result.code !== 0 || sum.length !== 64 || result.stderr.trim() !== "") throw new Error(`reading ${countMiB} MiB of ${file} at ${skipMiB} MiB failed (${result.code}): ${result.stderr}`)
  return sum
}

/** The nodes a volume's record places a copy on: the master first, then the replicas. */
export const copyNodes = (view: VolumeView): Array<string> => [view.master, ...view.replicas.map((r) => r.node)]

export interface CopiesCompared {
  readonly identical: boolean
  /** sha256 of each node's copy ("" when it could not be read). */
  readonly sums: Readonly<Record<string, string>>
  /** One line per copy that differs from the first: cmp's first differing byte (1-based) and differing byte count. */
  readonly differences: ReadonlyArray<string>
}

/** Compares the on-disk copies of `volume` on `nodes`, byte for byte. */
export const compareCopies = async (cluster: FuseCluster, volume: string, nodes: ReadonlyArray<string>): Promise<CopiesCompared> => {
  const paths = nodes.map((node) => cluster.copyPath(node, volume))
  const sums = await sha256Of(paths)
  const identical = sums.every((sum) => sum.length === 64 && sum === sums[0])
  const differences: Array<string> = []
  if (!identical) {
    for (const [index, path] of paths.entries()) {
      if (index === 0 || sums[index] === sums[0]) continue
      const first = await sh(`cmp '${paths[0]}' '${path}'`)
      const count = await sh(`cmp -l '${paths[0]}' '${path}' | wc -l`, 300_000)
      differences.push(`${nodes[index]} vs ${nodes[0]}: ${(first.stdout + first.stderr).trim()} (${count.stdout.trim()} bytes differ)`)
    }
  }
  return { identical, sums: Object.fromEntries(nodes.map((node, index) => [node, sums[index] ?? ""])), differences }
}

/**
 * Waits up to `timeoutMs` for the copies to be identical (a replica may still be applying the
 * last acknowledged writes when the record says in-sync); the last comparison either way.
 */
export const settleCopies = async (cluster: FuseCluster, volume: string, nodes: ReadonlyArray<string>, timeoutMs: number): Promise<CopiesCompared> => {
  let last: CopiesCompared | undefined
  await pollFor(timeoutMs, async () => {
    last = await compareCopies(cluster, volume, nodes)
    return last.identical ? true : undefined
  }, () => "").catch(() => undefined)
  return last!
}

/**
 * A failure message for copies that differ: each copy's sum (named when it is a known content,
 * e.g. "all zeros" or "the pattern"), cmp's findings and the volume's recent cluster events.
 */
export const describeCopies = (cluster: FuseCluster, volume: string, compared: CopiesCompared, known: Readonly<Record<string, string>> = {}): string => {
  const sums = Object.entries(compared.sums).map(([node, sum]) => `${node} ${sum.slice(0, 16)}…${known[sum] === undefined ? "" : ` (${known[sum]})`}`)
  return `copies of ${volume} differ: ${sums.join(", ")}\n  ${compared.differences.join("\n  ")}\nrecent events:\n${volumeEvents(cluster, volume)}`
}

/**
 * The cluster log's last lines about `volume`: the lines naming it, the crash drills, and the
 * replication events (their lines name the replica, not the volume: each drill's cluster holds
 * one volume at a time). sync-started says how much a resync copied.
 */
export const volumeEvents = (cluster: FuseCluster, volume: string, lines = 30): string =>
  cluster.log().split("\n")
    .filter((line) => line.includes(volume) || /\s(node-killed|node-revived|sync-started|sync-done|replica-\w+)\s/.test(line))
    .slice(-lines).join("\n")

/** `replivol node kill|revive NAME`, as a user runs it; throws on a non-zero exit. */
export const nodeDrill = async (cluster: FuseCluster, action: "kill" | "revive", node: string): Promise<void> => {
  const result = await cluster.cli("node", action, node)
  if (result.code !== 0) throw new Error(`replivol node ${action} ${node} failed (${result.code}): ${result.stderr}`)
}

/** Deletes everything under a (killed) node's data directory, `<data>/<node>`; throws unless it is empty after. */
export const wipeNodeData = async (cluster: FuseCluster, node: string): Promise<void> => {
  const dir = `${cluster.data}/${node}`
  const result = await sh(`find '${dir}' -mindepth 1 -delete && test -z "$(ls -A '${dir}')"`)
  if (result.code !== 0) throw new Error(`could not empty ${dir} (${result.code}): ${result.stderr}`)
}

/** Prints each step of a drill with the seconds since the drill began (a slow step shows where). */
export const stepLog = (drill: string) => {
  const startedMs = performance.now()
  return (what: string) => console.log(`  ${drill} +${((performance.now() - startedMs) / 1000).toFixed(1)} s: ${what}`)
}

/** Whether a file (or directory) exists, checked by a child process. */
export const exists = async (path: string): Promise<boolean> => (await sh(`test -e '${path}'`)).code === 0

// ---- A small file system under a node's data directory (the disk-full drill)

/**
 * A loop-mounted ext4 image whose free space is held down by a ballast file; everything it set
 * up is released by `release` (and on process exit). Space returns by deleting the ballast, as an
 * operator freeing a disk would: growing the mounted ext4 (online resize2fs) needs
 * CAP_SYS_RESOURCE, which a container often lacks.
 */
export interface SmallDisk {
  readonly image: string
  /** The loop device this disk attached (`losetup -f --show`); only this one is detached. */
  readonly device: string
  readonly dir: string
  /** Deletes the ballast: the file system's whole size becomes free again. */
  readonly returnSpace: () => Promise<void>
  /** `df`'s available bytes of the mounted file system. */
  readonly freeBytes: () => Promise<number>
  /** Unmounts `dir` and detaches `device`; safe to call twice. */
  readonly release: () => Promise<void>
}

const releasers = new Map<string, () => void>()
process.on("exit", () => {
  for (const releaseNow of releasers.values()) releaseNow()
})

const shOrThrow = async (what: string, command: string, timeoutMs = 60_000): Promise<string> => {
  const result = await sh(command, timeoutMs)
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${command}\n${result.stderr}${result.stdout}`)
  return result.stdout
}

/** The ballast's name at the top of the mounted file system (a node only looks under `copies/`). */
const ballastName = ".ballast"

/**
 * Makes an ext4 image of `sizeMiB` (no reserved blocks: the nodes run as root), attaches it to a
 * free loop device, mounts it at `dir` (which must hold no files yet: a node's data directory
 * before its first copy) and fills it with a ballast file until `freeMiB` are left. Throws, with
 * everything undone, when a step fails.
 */
export const mountSmallDisk = async (image: string, sizeMiB: number, freeMiB: number, dir: string): Promise<SmallDisk> => {
  await shOrThrow("preparing the mount point", `mkdir -p '${dir}' && test -z "$(find '${dir}' -type f)"`)
  await shOrThrow("making the ext4 image", `rm -f '${image}' && truncate -s ${sizeMiB}M '${image}' && mkfs.ext4 -q -F -m 0 '${image}'`)
  const device = (await shOrThrow("attaching the image", `losetup -f --show '${image}'`)).trim()
  if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`losetup printed no loop device: "${device}"`)
  let mounted = false
  releasers.set(device, () => {
    try {
      if (mounted) execFileSync("umount", ["-l", dir], { stdio: "ignore" })
    } catch { /* unmounted already */ }
    try {
      execFileSync("losetup", ["-d", device], { stdio: "ignore" })
    } catch { /* detached already */ }
  })
  const release = async () => {
    if (!releasers.has(device)) return
    if (mounted && (await sh(`umount '${dir}'`)).code !== 0) await sh(`umount -l '${dir}'`)
    mounted = false
    await sh(`losetup -d '${device}'`)
    releasers.delete(device)
  }
  const freeBytes = async () => Number((await shOrThrow("df", `df -B1 --output=avail '${dir}' | tail -1`)).trim())
  try {
    await shOrThrow("mounting the image", `mount -t ext4 '${device}' '${dir}'`)
    mounted = true
    const ballastBytes = (await freeBytes()) - freeMiB * 1024 * 1024
    if (ballastBytes <= 0) throw new Error(`a ${sizeMiB} MiB ext4 has less than ${freeMiB} MiB free`)
    await shOrThrow("writing the ballast", `fallocate -l ${ballastBytes} '${dir}/${ballastName}' && sync -f '${dir}'`)
  } catch (error) {
    await release()
    throw error
  }
  return {
    image, device, dir, release, freeBytes,
    returnSpace: async () => void (await shOrThrow("deleting the ballast", `rm '${dir}/${ballastName}' && sync -f '${dir}'`)),
  }
}
