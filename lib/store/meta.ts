/**
 * Validation and the on-disk text form of `StoreMeta`, shared by every store.
 *
 * Why here and pure: the meta record decides who is master and which epoch a copy has seen, so a
 * damaged or foreign record must be refused (`corrupt-meta`, `size-mismatch`) rather than
 * trusted — the same way by the file store and the memory store.
 */
import { isCount } from "../core/guards.ts"
import { StoreError, type StoreMeta } from "./BlockStore.ts"
import { volumeNameBytesMax } from "../core/limits.ts"

/** Largest meta record accepted when reading (a record is ~200 bytes; anything bigger is not ours). */
export const metaBytesMax = 4096

const roles: ReadonlyArray<StoreMeta["role"]> = ["master", "replica"]
const stateBytesMax = 64
/** Longest volume uid or session generation accepted in a record. */
const idBytesMax = 64

/** Why `candidate` is not a valid StoreMeta, or undefined when it is. */
function metaProblem(candidate: unknown): string | undefined {
  if (typeof candidate !== "object" || candidate === null) return "it is not an object"
  const m = candidate as Record<string, unknown>
  if (typeof m.volume !== "string" || m.volume.length === 0 || m.volume.length > volumeNameBytesMax)
    return `volume must be a non-empty string of at most ${volumeNameBytesMax} characters`
  if (!isCount(m.sizeBytes)) return "sizeBytes must be a non-negative integer"
  if (!isCount(m.epoch)) return "epoch must be a non-negative integer"
  if (!roles.includes(m.role as StoreMeta["role"])) return `role must be one of ${roles.join(", ")}`
  if (typeof m.state !== "string" || m.state.length > stateBytesMax) return `state must be a string of at most ${stateBytesMax} characters`
  if (!isCount(m.updatedAtMs)) return "updatedAtMs must be a non-negative integer"
  for (const field of ["uid", "generation"] as const) {
    const value = m[field]
    if (value !== undefined && (typeof value !== "string" || value.length === 0 || value.length > idBytesMax))
      return `${field} must be absent or a non-empty string of at most ${idBytesMax} characters`
  }
  return undefined
}


/** Checks a record before it is written: well-formed and for a store of `sizeBytes`. */
export function checkMetaForWrite(meta: StoreMeta, path: string | undefined, sizeBytes: number): StoreError | undefined {
  const problem = metaProblem(meta)
  if (problem !== undefined)
    return new StoreError({ reason: "corrupt-meta", path, message: `refusing to write store meta: ${problem}` })
  if (meta.sizeBytes !== sizeBytes)
    return new StoreError({
      reason: "size-mismatch",
      path,
      message: `store meta says sizeBytes ${meta.sizeBytes} but the store holds ${sizeBytes} bytes; they must be equal`,
    })
  return undefined
}

/** The canonical text of a record (only the known fields, in a fixed order). */
export function encodeMeta(meta: StoreMeta): string {
  const { volume, sizeBytes, epoch, role, state, updatedAtMs, uid, generation } = meta
  return JSON.stringify({ volume, sizeBytes, epoch, role, state, updatedAtMs, uid, generation }) + "\n"
}

/**
 * Parses and validates a stored record; a damaged one is `corrupt-meta`, a record bigger than the
 * store `size-mismatch`. A smaller one is accepted: a crash after `grow` and before the record was
 * rewritten (the copy holds the record's bytes, and zeros past them).
 */
export function decodeMeta(text: string, path: string | undefined, sizeBytes: number): StoreMeta | StoreError {
  if (text.length > metaBytesMax)
    return new StoreError({ reason: "corrupt-meta", path, message: `store meta is ${text.length} bytes; at most ${metaBytesMax} are allowed` })
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (cause) {
    return new StoreError({ reason: "corrupt-meta", path, message: "store meta is not valid JSON", cause })
  }
  const problem = metaProblem(parsed)
  if (problem !== undefined) return new StoreError({ reason: "corrupt-meta", path, message: `store meta is invalid: ${problem}` })
  const m = parsed as StoreMeta
  const meta: StoreMeta = {
    volume: m.volume, sizeBytes: m.sizeBytes, epoch: m.epoch, role: m.role, state: m.state, updatedAtMs: m.updatedAtMs,
    ...(m.uid === undefined ? {} : { uid: m.uid }),
    ...(m.generation === undefined ? {} : { generation: m.generation }),
  }
  return checkMetaForWrite(meta, path, Math.min(meta.sizeBytes, sizeBytes)) ?? meta
}
