/**
 * The replication protocol's message table: what each frame type means between a master and a
 * replica, and the small JSON bodies of the control messages.
 *
 * | frame      | direction        | meaning                                                        |
 * |------------|------------------|----------------------------------------------------------------|
 * | Open       | master → replica | bind this connection to a hosted volume at an epoch            |
 * | OpenAck    | replica → master | accepted; body tells the replica's epoch and whether it is new |
 * | Write      | master → replica | apply `body` at `offset` (in arrival order); ack by sequence   |
 * | WriteAck   | replica → master | the write with this sequence is applied                        |
 * | SyncChunk  | master → replica | resync data (same as Write, counted separately)                |
 * | SyncAck    | replica → master | the chunk with this sequence is applied                        |
 * | Flush      | master → replica | fdatasync everything received so far                           |
 * | FlushAck   | replica → master | durable                                                        |
 * | Complete   | master → replica | you hold every byte of this session: fdatasync, record complete |
 * | CompleteAck| replica → master | the copy's record says complete (durably)                      |
 * | Read       | either           | read `length` bytes at `offset` (verification, clients)        |
 * | ReadReply  | reply            | the bytes                                                      |
 * | Error      | reply            | `aux` = ErrorCode, body = text; the sequence names the request |
 * | Ping/Pong  | either           | liveness                                                       |
 */
import { isCount, isRecord } from "../core/guards.ts"
import { isCopyState, type CopyIdentity } from "./copyIdentity.ts"

export interface OpenRequest {
  /** "replica" (default): a master attaching a replica copy; "client": an application doing IO on a volume this node masters. */
  readonly role: "replica" | "client"
  readonly volume: string
  readonly sizeBytes: number
  readonly epoch: number
  /** The master's node name, for the replica's records and logs. */
  readonly master: string
  /** The volume's unique id (fresh at every create), when the master knows it. */
  readonly uid: string | undefined
  /** The master session opening the copy (fresh at every master open). */
  readonly generation: string | undefined
}

export interface OpenReply {
  readonly epoch: number
  /** The replica's copy is known to be all zeros (created and never written). */
  readonly fresh: boolean
  /** Ranges of the replica's most recent writes (its activity log), or "all" when unknown. */
  readonly activity: ReadonlyArray<readonly [number, number]> | "all"
  /** What the copy's durable record said before this open (copyIdentity.ts). */
  readonly identity: CopyIdentity
  /** The replica's process incarnation (cluster nodes), when it tells it. */
  readonly incarnation?: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

const parseJson = (body: Uint8Array): unknown => {
  try {
    return JSON.parse(decoder.decode(body))
  } catch {
    return undefined
  }
}


export const decodeOpenRequest = (body: Uint8Array): OpenRequest | string => {
  const value = parseJson(body)
  if (!isRecord(value)) return "open request is not a JSON object"
  const { volume, sizeBytes, epoch, master } = value
  if (typeof volume !== "string" || volume.length === 0 || volume.length > 253) return "open request has no valid volume name"
  if (!isCount(sizeBytes)) return "open request has no valid sizeBytes"
  if (!isCount(epoch) || epoch > 0xffffffff) return "open request has no valid epoch"
  if (typeof master !== "string" || master.length > 63) return "open request has no valid master name"
  const role = value.role === undefined ? "replica" : value.role
  if (role !== "replica" && role !== "client") return "open request has an unknown role"
  const uid = optionalId(value.uid)
  const generation = optionalId(value.generation)
  if (uid === null || generation === null) return `open request has a malformed uid or generation (allowed: absent, or 1..${idCharsMax} characters)`
  return { role, volume, sizeBytes, epoch, master, uid, generation }
}

/** Longest uid or generation on the wire. */
const idCharsMax = 64
/** undefined when absent, null when malformed. */
const optionalId = (value: unknown): string | undefined | null =>
  value === undefined ? undefined : typeof value === "string" && value.length > 0 && value.length <= idCharsMax ? value : null

const decodeIdentity = (value: unknown): CopyIdentity | undefined => {
  if (!isRecord(value) || !isCount(value.epoch)) return undefined
  const uid = optionalId(value.uid)
  const generation = optionalId(value.generation)
  const state = isCopyState(value.state) ? value.state : value.state === "unknown" ? "unknown" : undefined
  if (uid === null || generation === null || state === undefined) return undefined
  return { uid, epoch: value.epoch, generation, state }
}

export const decodeOpenReply = (body: Uint8Array): OpenReply | string => {
  const value = parseJson(body)
  if (!isRecord(value) || !isCount(value.epoch)) return "open reply is malformed"
  const activity = value.activity
  const ranges = activity === "all" ? "all"
    : Array.isArray(activity) && activity.every((r) => Array.isArray(r) && r.length === 2 && isCount(r[0]) && isCount(r[1]))
      ? (activity as Array<[number, number]>)
      : undefined
  if (ranges === undefined) return "open reply has a malformed activity log"
  // A reply without an identity (a client open) proves nothing about a copy.
  const identity = value.identity === undefined ? unknownIdentity : decodeIdentity(value.identity)
  if (identity === undefined) return "open reply has a malformed copy identity"
  if (value.incarnation !== undefined && !isCount(value.incarnation)) return "open reply has a malformed incarnation"
  return { epoch: value.epoch, fresh: value.fresh === true, activity: ranges, identity, ...(value.incarnation === undefined ? {} : { incarnation: value.incarnation }) }
}

const unknownIdentity: CopyIdentity = { uid: undefined, epoch: 0, generation: undefined, state: "unknown" }

/** The body of an Error frame answering a client: the typed error, so the client can rebuild it. */
export interface ClientErrorBody {
  readonly tag: string
  readonly reason: string
  readonly message: string
}

export const decodeClientError = (body: Uint8Array): ClientErrorBody => {
  const value = parseJson(body)
  if (isRecord(value) && typeof value.tag === "string" && typeof value.reason === "string" && typeof value.message === "string") {
    return { tag: value.tag, reason: value.reason, message: value.message }
  }
  return { tag: "Unknown", reason: "unknown", message: decodeText(body) }
}

export const decodeText = (body: Uint8Array): string => {
  try {
    return decoder.decode(body)
  } catch {
    return "(undecodable text)"
  }
}

/** A 64-bit volume id derived from its name (FNV-1a); hosts refuse a second name with the same id. */
export const volumeIdOf = (name: string): bigint => {
  let hash = 0xcbf29ce484222325n
  for (const byte of encoder.encode(name)) {
    hash ^= BigInt(byte)
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return hash === 0n ? 1n : hash
}
