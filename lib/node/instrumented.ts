/**
 * The frontend and network layers of `/metrics`, hooked where a node hands a master volume to
 * its clients and where it dials a replica — so the replication code itself records nothing new.
 *
 * - `instrumentMaster`: `replivol_frontend_latency_seconds{volume,op}` — each read, write and
 *   flush as the master serves it (in-process callers and the port-5703 client protocol alike).
 * - `instrumentConnection`: `replivol_network_latency_seconds{volume,op}` — a replica round trip,
 *   from a Write, Flush or SyncChunk frame handed to the connection until its ack arrives. Send
 *   times live in a fixed ring indexed by sequence number (no allocation per frame); an ack whose
 *   slot was reused by a later frame (more than `roundTripSlots` in flight) is not timed.
 */
import { Effect } from "effect"
import { noMetrics, timeInto, type Histogram, type Metrics } from "../core/metrics.ts"
import { metricNames } from "../core/metricFamilies.ts"
import type { Connection } from "../net/connection.ts"
import { MessageType, type Frame } from "../wire/index.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"

/** Frames timed at once per connection (above the frames a replica link may have in flight). */
export const roundTripSlots = 4096

export const instrumentMaster = (volume: MasterVolume, metrics: Metrics): MasterVolume => {
  if (metrics === noMetrics) return volume
  const latency = (op: string) => metrics.histogram(metricNames.frontendLatency, { volume: volume.name, op })
  const read = latency("read")
  const write = latency("write")
  const flush = latency("flush")
  const instrumented: Omit<MasterVolume, "sizeBytes"> = {
    ...volume,
    read: (offset, length) => timeInto(metrics, read, volume.read(offset, length)),
    write: (offset, data) => timeInto(metrics, write, volume.write(offset, data)),
    flush: timeInto(metrics, flush, volume.flush),
  }
  // Read through: a resize changes the size (a spread would copy it once).
  return Object.defineProperty(instrumented, "sizeBytes", { get: () => volume.sizeBytes, enumerable: true }) as MasterVolume
}

/** 0: not timed; else the index into the histograms below. */
const sentKind = (type: MessageType): number => (type === MessageType.Write ? 1 : type === MessageType.Flush ? 2 : type === MessageType.SyncChunk ? 3 : 0)
const isAck = (type: MessageType) => type === MessageType.WriteAck || type === MessageType.FlushAck || type === MessageType.SyncAck

export const instrumentConnection = (connection: Connection, volume: string, metrics: Metrics): Connection => {
  if (metrics === noMetrics) return connection
  const latency = (op: string) => metrics.histogram(metricNames.networkLatency, { volume, op })
  const histograms: ReadonlyArray<Histogram | undefined> = [undefined, latency("write"), latency("flush"), latency("sync")]
  const sequences = new Float64Array(roundTripSlots).fill(-1)
  const sentMs = new Float64Array(roundTripSlots)
  const kinds = new Uint8Array(roundTripSlots)
  const send = (frame: Frame, compress?: boolean, body?: Parameters<Connection["send"]>[2]) => {
    const kind = sentKind(frame.type)
    if (kind !== 0) {
      const slot = frame.sequence % roundTripSlots
      sequences[slot] = frame.sequence
      sentMs[slot] = metrics.nowMs()
      kinds[slot] = kind
    }
    return connection.send(frame, compress, body)
  }
  const acked = (frame: Frame) => {
    const slot = frame.sequence % roundTripSlots
    if (sequences[slot] !== frame.sequence || kinds[slot] === 0) return
    histograms[kinds[slot]!]!.observe(metrics.nowMs() - sentMs[slot]!)
    kinds[slot] = 0
  }
  return {
    ...connection,
    send,
    onFrame: (receive) => connection.onFrame((frame) => {
      if (isAck(frame.type)) acked(frame)
      receive(frame)
    }),
  }
}

/** A dialler whose connections time their round trips for `volume`. */
export const instrumentDial = <E>(dial: Effect.Effect<Connection, E>, volume: string, metrics: Metrics): Effect.Effect<Connection, E> =>
  metrics === noMetrics ? dial : Effect.map(dial, (connection) => instrumentConnection(connection, volume, metrics))
