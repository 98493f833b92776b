/**
 * Payloads for the replication benchmarks, generated once per process and reused, so that the
 * timed loops measure replication and not data generation.
 *
 * - random: incompressible (lz4 leaves it as is; a frame goes raw after a wasted compression).
 * - half-compressible: in every 4 KiB page the first 2 KiB are random and the last 2 KiB zeros,
 *   so lz4 halves it at best — a rough stand-in for a file system full of partly used blocks.
 */
import { randomFillSync } from "node:crypto"

export type PayloadKind = "random" | "half"

export const pageBytes = 4096

export const randomPayload = (length: number): Uint8Array => randomFillSync(new Uint8Array(length))

export const halfCompressiblePayload = (length: number): Uint8Array => {
  const out = randomPayload(length)
  for (let page = 0; page < length; page += pageBytes) out.fill(0, page + pageBytes / 2, Math.min(length, page + pageBytes))
  return out
}

export const payloadOf = (kind: PayloadKind, length: number): Uint8Array =>
  kind === "random" ? randomPayload(length) : halfCompressiblePayload(length)
