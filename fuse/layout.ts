/**
 * The shape of the mount, as pure functions: which path is what, what `stat` and `ls` show, and
 * how many bytes of a read or write fall inside a volume.
 *
 * Layout: `/` holds one directory per namespace, and each namespace directory holds one regular
 * file per volume whose size is the volume size. A volume file behaves like a block device file:
 * a read past the end is short (0 bytes at EOF), a write that starts at or past the end fails
 * with ENOSPC, and one that straddles the end is short (the caller retries the rest and then gets
 * ENOSPC) — exactly what `/dev/loopN` does (checked with dd and os.write on a 1 MiB loop device).
 */
import type { FuseVolume } from "./backend.ts"

export type FusePath =
  | { readonly kind: "root" }
  | { readonly kind: "namespace"; readonly namespace: string }
  | { readonly kind: "volume"; readonly namespace: string; readonly name: string }
  | { readonly kind: "none" }

/** Parses an absolute FUSE path ("/", "/ns", "/ns/vol"); anything deeper is "none". */
export const parsePath = (path: string): FusePath => {
  const parts = path.split("/").filter((part) => part.length > 0)
  const [namespace, name] = parts
  if (parts.length === 0) return { kind: "root" }
  if (parts.length === 1 && namespace !== undefined) return { kind: "namespace", namespace }
  if (parts.length === 2 && namespace !== undefined && name !== undefined) return { kind: "volume", namespace, name }
  return { kind: "none" }
}

/** The namespaces that have at least one volume, sorted. */
export const namespacesOf = (volumes: ReadonlyArray<FuseVolume>): Array<string> =>
  [...new Set(volumes.map((volume) => volume.namespace))].sort()

/** The volumes of one namespace, sorted by name. */
export const volumesIn = (volumes: ReadonlyArray<FuseVolume>, namespace: string): Array<FuseVolume> =>
  volumes.filter((volume) => volume.namespace === namespace).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

export const findVolume = (volumes: ReadonlyArray<FuseVolume>, namespace: string, name: string): FuseVolume | undefined =>
  volumes.find((volume) => volume.namespace === namespace && volume.name === name)

/** What a path resolves to against the current volume list: a directory, a volume file, or nothing. */
export type FuseNode =
  | { readonly kind: "directory" }
  | { readonly kind: "file"; readonly volume: FuseVolume }
  | { readonly kind: "missing" }

export const resolveNode = (volumes: ReadonlyArray<FuseVolume>, path: FusePath): FuseNode => {
  switch (path.kind) {
    case "root":
      return { kind: "directory" }
    case "namespace":
      return volumes.some((volume) => volume.namespace === path.namespace) ? { kind: "directory" } : { kind: "missing" }
    case "volume": {
      const volume = findVolume(volumes, path.namespace, path.name)
      return volume === undefined ? { kind: "missing" } : { kind: "file", volume }
    }
    case "none":
      return { kind: "missing" }
  }
}

/** The names `ls` shows for a directory path, or undefined when it is not a directory. */
export const directoryEntries = (volumes: ReadonlyArray<FuseVolume>, path: FusePath): Array<string> | undefined => {
  if (path.kind === "root") return namespacesOf(volumes)
  if (path.kind === "namespace" && resolveNode(volumes, path).kind === "directory") {
    return volumesIn(volumes, path.namespace).map((volume) => volume.name)
  }
  return undefined
}

export const directoryMode = 0o40755
export const volumeFileMode = 0o100644
/** Block size reported by stat and statfs. */
export const statBlockBytes = 4096

export interface FileStat {
  readonly mode: number
  readonly size: number
  readonly nlink: number
  readonly uid: number
  readonly gid: number
  readonly blksize: number
  readonly blocks: number
  readonly atime: Date
  readonly mtime: Date
  readonly ctime: Date
}

/** What `stat` shows for a directory or a volume file (times are the mount's start time). */
export const statOf = (node: Exclude<FuseNode, { kind: "missing" }>, owner: { uid: number; gid: number; timeMs: number }): FileStat => {
  const time = new Date(owner.timeMs)
  const sizeBytes = node.kind === "file" ? node.volume.sizeBytes : statBlockBytes
  return {
    mode: node.kind === "file" ? volumeFileMode : directoryMode,
    size: sizeBytes,
    nlink: node.kind === "file" ? 1 : 2,
    uid: owner.uid,
    gid: owner.gid,
    blksize: statBlockBytes,
    blocks: Math.ceil(sizeBytes / 512),
    atime: time,
    mtime: time,
    ctime: time,
  }
}

/**
 * Bytes of an IO of `length` at `offset` that lie inside a volume of `sizeBytes`. For a read, 0
 * is EOF; for a write, 0 is ENOSPC and fewer than `length` is a short write.
 */
export const bytesInside = (offset: number, length: number, sizeBytes: number): number =>
  offset >= sizeBytes || offset < 0 ? 0 : Math.min(length, sizeBytes - offset)
