/**
 * Client requests on a connection to a volume this node masters (a client elsewhere, or a mount
 * on another node): each is served by the master volume and answered when it completes, many at
 * once (at most `clientRequestsInflightMax` per connection).
 */
import { Effect } from "effect"
import type { Connection } from "../../net/connection.ts"
import { ErrorCode, makeFrame, MessageType, type Frame } from "../../wire/index.ts"
import type { VolumeError } from "../errors.ts"
import type { MasterVolume } from "../masterVolume.ts"
import { reply, replyError } from "./session.ts"

const clientErrorCode = (error: VolumeError): ErrorCode =>
  error._tag === "OutOfRange" ? ErrorCode.OutOfRange : error._tag === "VolumeIoError" ? ErrorCode.StoreFailed : ErrorCode.Busy

/** One client request on a volume this node masters; replies when it completes (many run at once). */
export const serveClientFrame = (connection: Connection, volume: MasterVolume, frame: Frame): Effect.Effect<void> => {
  const operation: Effect.Effect<Uint8Array | undefined, VolumeError> =
    frame.type === MessageType.Write ? Effect.as(volume.write(frame.offset, frame.body), undefined)
    : frame.type === MessageType.Flush ? Effect.as(volume.flush, undefined)
    : volume.read(frame.offset, frame.length)
  return Effect.result(operation).pipe(Effect.map((result) => {
    if (result._tag === "Failure") {
      const error = result.failure
      const reason = "reason" in error ? error.reason : "out-of-range"
      replyError(connection, frame, volume.epoch, clientErrorCode(error), JSON.stringify({ tag: error._tag, reason, message: error.message }))
    } else if (frame.type === MessageType.Read) {
      connection.send(makeFrame(MessageType.ReadReply, { volumeId: frame.volumeId, epoch: volume.epoch, sequence: frame.sequence, offset: frame.offset, body: result.success! }))
    } else reply(connection, frame, frame.type === MessageType.Write ? MessageType.WriteAck : MessageType.FlushAck, volume.epoch)
  }))
}
