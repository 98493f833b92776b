/**
 * One authenticated connection served by a replica host: what its frame handlers share, and how
 * they answer. Frames are applied in arrival order by one fiber (serve.ts).
 */
import type { Effect, Semaphore } from "effect"
import type { Connection } from "../../net/connection.ts"
import { ErrorCode, makeFrame, MessageType, type Frame } from "../../wire/index.ts"
import type { ReplicaHostOptions } from "./options.ts"
import type { Hosted } from "./hosted.ts"

export interface ReplicaSession {
  readonly connection: Connection
  /** Every copy this node hosts, by volume id. */
  readonly hosted: Map<bigint, Hosted>
  readonly options: ReplicaHostOptions
  /** Counts a rejection by its typed reason (ReplicaHost.rejections). */
  readonly count: (reason: string) => void
  /** The hosted copies this connection opened as their master. */
  readonly opened: Set<bigint>
  /** The volumes this connection opened as a client of their master here (id → name). */
  readonly clientOpened: Map<bigint, string>
  /** Client requests in flight (clientRequestsInflightMax). */
  readonly clientSlots: Semaphore.Semaphore
  /** Writes being applied (replicaApplyWritesMax). */
  readonly applySlots: Semaphore.Semaphore
  /** Waits until every write started before it is applied (takes every apply slot). */
  readonly allApplied: Effect.Effect<void>
}

const encoder = new TextEncoder()

export const reply = (connection: Connection, request: Frame, type: MessageType, epoch: number, body?: Uint8Array) =>
  connection.send(makeFrame(type, { volumeId: request.volumeId, epoch, sequence: request.sequence, ...(body ? { body } : {}) }))

export const replyError = (connection: Connection, request: Frame, epoch: number, code: ErrorCode, text: string) =>
  connection.send(makeFrame(MessageType.Error, { volumeId: request.volumeId, epoch, sequence: request.sequence, aux: code, body: encoder.encode(text) }))

/** A store failure as the frame's answer: out of range, or failed. */
export const storeErrorCode = (reason: string): ErrorCode => (reason === "out-of-range" ? ErrorCode.OutOfRange : ErrorCode.StoreFailed)
