/**
 * The raw-TCP baseline of the resync benchmark: the same number of bytes a full resync moves,
 * streamed between two processes on the same loopback addresses as the cluster's master and
 * replica, with no protocol, compression, checksums or storage.
 *
 *   --role sink --host H --port P              listens; per connection reads an 8-byte length,
 *                                              then that many bytes, then answers one byte.
 *   --role source --bind H                     per {"cmd":"send","host","port","bytes"} connects
 *                                              (from H), writes the length and `bytes` in 1 MiB
 *                                              random writes, waits for the answer
 *                                              → {"event":"sent","bytes","ms"} (ms from connect to answer).
 * Both print {"event":"ready"} first and end when stdin closes.
 */
import { randomFillSync } from "node:crypto"
import { connect, createServer, type Socket } from "node:net"
import { createInterface } from "node:readline"

const args = process.argv.slice(2)
const flag = (name: string): string => {
  const at = args.indexOf(`--${name}`)
  const value = at >= 0 ? args[at + 1] : undefined
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
const MiB = 1 << 20

const serve = (socket: Socket) => {
  let expected = -1
  let received = 0
  let header = Buffer.alloc(0)
  socket.on("data", (chunk: Buffer) => {
    if (expected < 0) {
      header = Buffer.concat([header, chunk])
      if (header.length < 8) return
      expected = Number(header.readBigUInt64BE(0))
      received = header.length - 8
    } else received += chunk.length
    if (received >= expected) socket.end(Buffer.from([1]))
  })
  socket.on("error", () => socket.destroy())
}

const send = (host: string, port: number, bind: string, bytes: number) =>
  new Promise<number>((resolve, reject) => {
    const data = randomFillSync(Buffer.alloc(MiB))
    const started = performance.now()
    const socket = connect({ host, port, localAddress: bind, noDelay: true })
    socket.on("error", reject)
    socket.on("data", () => {
      resolve(performance.now() - started)
      socket.destroy()
    })
    socket.on("connect", () => {
      const header = Buffer.alloc(8)
      header.writeBigUInt64BE(BigInt(bytes))
      socket.write(header)
      let sent = 0
      const pump = () => {
        while (sent < bytes) {
          const piece = Math.min(MiB, bytes - sent)
          sent += piece
          if (!socket.write(piece === MiB ? data : data.subarray(0, piece))) return void socket.once("drain", pump)
        }
      }
      pump()
    })
  })

const lines = createInterface({ input: process.stdin })
if (flag("role") === "sink") {
  const server = createServer(serve)
  server.on("error", (error) => say({ event: "error", message: error.message }))
  server.listen(Number(flag("port")), flag("host"), () => say({ event: "ready" }))
  lines.on("close", () => server.close(() => process.exit(0)))
} else {
  const bind = flag("bind")
  say({ event: "ready" })
  lines.on("line", (line) => {
    const command = JSON.parse(line) as { host: string; port: number; bytes: number }
    send(command.host, command.port, bind, command.bytes).then(
      (ms) => say({ event: "sent", bytes: command.bytes, ms }),
      (error: Error) => say({ event: "error", message: error.message }),
    )
  })
  lines.on("close", () => process.exit(0))
}
