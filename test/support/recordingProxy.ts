/**
 * A recording TCP proxy for wire-capture tests: listens on `listen`, forwards every connection to
 * `target` byte for byte, and keeps every byte it forwarded (both directions), so a test can
 * search what actually crossed the network. Bounded: it stops recording past `recordBytesMax`.
 */
import * as net from "node:net"

export interface RecordingProxy {
  /** Everything forwarded so far, both directions, in arrival order per chunk. */
  readonly recorded: () => Buffer
  readonly bytes: () => number
  readonly connections: () => number
  readonly close: () => Promise<void>
}

export const startRecordingProxy = (listen: { host: string; port: number }, target: { host: string; port: number }, recordBytesMax = 256 << 20): Promise<RecordingProxy> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0, connections = 0
    const sockets = new Set<net.Socket>()
    const keep = (chunk: Buffer) => {
      if (total + chunk.length <= recordBytesMax) chunks.push(Buffer.from(chunk))
      total += chunk.length
    }
    const server = net.createServer((inbound) => {
      connections++
      const outbound = net.connect({ host: target.host, port: target.port, localAddress: listen.host })
      for (const s of [inbound, outbound]) {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
        s.on("error", () => undefined)
      }
      inbound.on("data", (chunk: Buffer) => (keep(chunk), outbound.write(chunk)))
      outbound.on("data", (chunk: Buffer) => (keep(chunk), inbound.write(chunk)))
      inbound.on("close", () => outbound.destroy())
      outbound.on("close", () => inbound.destroy())
    })
    server.once("error", reject)
    server.listen(listen.port, listen.host, () =>
      resolve({
        recorded: () => Buffer.concat(chunks),
        bytes: () => total,
        connections: () => connections,
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy()
          server.close(() => done())
        }),
      }))
  })
