/**
 * The admin API's HTTP server (node:http) and the small files beside it: the bearer token
 * (`<data>/admin.token`) and the cluster secret, both created at first start with mode 0600.
 *
 * The server only moves bytes: it bounds and parses the body, asks lib/admin/routes.ts for the
 * answer, and writes it. It also refreshes the health and sync gauges from `listVolumes` every
 * `gaugeRefreshMs`, and keeps the process gauges (event loop, heap, RSS) current. Closing the scope stops listening and ends open connections.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import { chmod, readFile, writeFile } from "node:fs/promises"
import { makeDirs } from "./makeDirs.ts"
import { dirname } from "node:path"
import { Effect, Schedule } from "effect"
import { AdminError, errorBody } from "../admin/errors.ts"
import { refreshVolumeGauges } from "../admin/metrics.ts"
import { handleRequest, type AdminTarget } from "../admin/routes.ts"
import { startProcessMetrics } from "./processMetrics.ts"

/** Largest request body accepted (a volume or rule definition is a few hundred bytes). */
export const adminBodyBytesMax = 1024 * 1024
/** How often the health and sync gauges are refreshed from the volume records. */
export const gaugeRefreshMs = 1000
export const adminPortDefault = 5705
export const adminAddressDefault = `127.0.0.1:${adminPortDefault}`

export interface AdminServer {
  /** `host:port` actually bound (port 0 picks a free one). */
  readonly address: string
}

/** `host:port` (or `:port`, or a bare port) → parts; undefined when malformed. */
export const parseHostPort = (text: string): { host: string; port: number } | undefined => {
  const match = /^(?:\[?([^\]]*)\]?:)?(\d{1,5})$/.exec(text.trim())
  const port = Number(match?.[2])
  if (!match || port > 65535) return undefined
  return { host: match[1] || "127.0.0.1", port }
}

const isLoopback = (address: string | undefined) => address !== undefined && (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."))

const readBody = (request: IncomingMessage): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > adminBodyBytesMax) {
        reject(new AdminError({ reason: "bad-request", message: `request body is larger than ${adminBodyBytesMax} bytes` }))
        request.destroy()
      } else chunks.push(chunk)
    })
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      if (text.trim() === "") return resolve(undefined)
      try {
        resolve(JSON.parse(text))
      } catch {
        reject(new AdminError({ reason: "bad-request", message: "request body is not valid JSON" }))
      }
    })
    request.on("error", reject)
  })

const serve = (server: Server, target: AdminTarget) =>
  server.on("request", (request, response) => {
    const url = new URL(request.url ?? "/", "http://admin")
    const answer = (status: number, contentType: string, body: string) => {
      response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) })
      response.end(body)
    }
    readBody(request)
      .then((body) =>
        Effect.runPromise(handleRequest(target, {
          method: request.method ?? "GET", path: url.pathname, query: Object.fromEntries(url.searchParams),
          authorization: request.headers.authorization, loopback: isLoopback(request.socket.remoteAddress), body,
        })))
      .then(
        (r) => answer(r.status, r.contentType, r.body),
        (error: unknown) => answer(error instanceof AdminError ? 400 : 500, "application/json", JSON.stringify({ error: errorBody(error) })),
      )
  })

/** Serves the admin API at `address` until the scope closes. */
export const serveAdmin = (address: string, target: AdminTarget) =>
  Effect.gen(function* () {
    const where = parseHostPort(address)
    if (!where) return yield* new AdminError({ reason: "bad-request", message: `admin address "${address}" is malformed: expected host:port, e.g. ${adminAddressDefault}` })
    const server = yield* Effect.acquireRelease(
      Effect.callback<Server, AdminError>((resume) => {
        const server = createServer()
        server.once("error", (error: NodeJS.ErrnoException) =>
          resume(Effect.fail(new AdminError({ reason: "unreachable", message: `cannot serve the admin API on ${address}: ${error.code ?? ""} ${error.message}` }))))
        server.listen(where.port, where.host, () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      }),
    )
    serve(server, target)
    let seen = new Set<string>()
    const refresh = Effect.gen(function* () {
      const node = target.node()
      if (!node) return
      const volumes = yield* Effect.orElseSucceed(node.listVolumes, () => undefined)
      if (volumes) seen = refreshVolumeGauges(target.metrics, volumes, seen)
    })
    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(gaugeRefreshMs)))
    yield* startProcessMetrics(target.metrics)
    const bound = server.address()
    const port = typeof bound === "object" && bound !== null ? bound.port : where.port
    return { address: `${where.host}:${port}` } satisfies AdminServer
  })

/** Random hex from the platform's CSPRNG (globalThis.crypto: Node, Bun and Deno). */
export const randomHex = (bytes: number): string =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("")

/** The file's trimmed text, creating it with `make()` and mode 0600 when it does not exist. */
export const ensureSecretFile = (path: string, make: () => string = () => randomHex(32)) =>
  Effect.tryPromise({
    try: async () => {
      try {
        return (await readFile(path, "utf8")).trim()
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
      }
      await makeDirs(dirname(path))
      const value = make()
      await writeFile(path, `${value}\n`, { mode: 0o600, flag: "wx" })
      await chmod(path, 0o600)
      return value
    },
    catch: (cause) => new AdminError({ reason: "internal", message: `cannot read or create ${path}: ${String(cause)}` }),
  })

/** A text file's trimmed content, or undefined when it cannot be read. */
export const readTextFile = (path: string): Promise<string | undefined> => readFile(path, "utf8").then((t) => t.trim(), () => undefined)
