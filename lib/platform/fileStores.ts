/**
 * The `Stores` service over sparse files: one file per volume copy, plus its meta record and its
 * continuity marker (`<copy>.boot`, lib/store/continuity.ts: the Linux boot id, then the marker).
 */
import { readFileSync } from "node:fs"
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { makeDirs } from "./makeDirs.ts"
import { dirname, join, relative, sep } from "node:path"
import { Effect, Layer } from "effect"
import { StoreError } from "../store/BlockStore.ts"
import { Stores } from "../store/Stores.ts"
import { markerBytesMax, type CopyMarkers } from "../store/continuity.ts"
import { metaPathOf, openFileStore } from "./fileStore.ts"

/** This boot of the machine (Linux); undefined elsewhere: then no marker is ever trusted. */
const bootId = ((): string | undefined => {
  try {
    const id = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
    return /^[0-9a-f-]{16,64}$/.test(id) ? id : undefined
  } catch {
    return undefined
  }
})()

const markerPathOf = (path: string) => `${path}.boot`

/** Markers are a hint that only ever adds trust when intact: every failure reads as "no marker". */
const fileMarkers: CopyMarkers = {
  read: (path) =>
    Effect.promise(async () => {
      if (bootId === undefined) return undefined
      const text = await readFile(markerPathOf(path), "utf8").catch(() => undefined)
      if (text === undefined || text.length > markerBytesMax) return undefined
      const newline = text.indexOf("\n")
      return newline > 0 && text.slice(0, newline) === bootId ? text.slice(newline + 1) : undefined
    }),
  write: (path, text) =>
    Effect.promise(async () => {
      if (bootId === undefined) return
      const temporary = `${markerPathOf(path)}.tmp`
      await writeFile(temporary, `${bootId}\n${text}`).then(() => rename(temporary, markerPathOf(path))).catch(() => rm(markerPathOf(path), { force: true }).catch(() => undefined))
    }),
  remove: (path) => Effect.promise(() => rm(markerPathOf(path), { force: true }).catch(() => undefined)),
}

export const fileStores = Stores.of({
  open: (path, sizeBytes) =>
    Effect.tryPromise({
      try: () => makeDirs(dirname(path)),
      catch: (cause) => new StoreError({ reason: (cause as { code?: string }).code === "ENOSPC" ? "no-space" : "io", path, message: `cannot create the directory of ${path}: ${String(cause)}`, cause }),
    }).pipe(Effect.andThen(openFileStore({ path, sizeBytes, create: true, atLeast: true }))),
  remove: (path) =>
    Effect.tryPromise({
      try: async () => {
        // The marker and the record first: a crash in between leaves a data file without a record (unknown), never a record without its data.
        await rm(markerPathOf(path), { force: true })
        await rm(metaPathOf(path), { force: true })
        await rm(path, { force: true })
      },
      catch: (cause) => new StoreError({ reason: "io", path, message: `cannot remove ${path}: ${String(cause)}`, cause }),
    }),
  list: (dir) =>
    Effect.tryPromise({
      try: async () => {
        const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: { code?: string }) => (error.code === "ENOENT" ? [] : Promise.reject(error)))
        // Paths in the form the node builds them (`${dir}/ns/name.img`), so they compare equal to its store paths.
        return entries.filter((entry) => entry.isFile() && entry.name.endsWith(".img"))
          .map((entry) => `${dir}/${relative(dir, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join("/")}`)
      },
      catch: (cause) => new StoreError({ reason: "io", path: dir, message: `cannot list the copies in ${dir}: ${String(cause)}`, cause }),
    }),
  markers: fileMarkers,
})

export const layerFileStores = Layer.succeed(Stores, fileStores)
