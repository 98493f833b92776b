/**
 * The admin API as a pure function: a parsed request in, a response out (the node:http server in
 * lib/platform/adminHttp.ts only moves bytes). JSON endpoints, all under a bearer token:
 *
 *   GET    /v1/volumes                      list (VolumeInfo[])
 *   POST   /v1/volumes                      create { volume, sizeBytes, labels? } → 201 VolumeInfo
 *   GET    /v1/volumes/<ns>/<name>          inspect
 *   DELETE /v1/volumes/<ns>/<name>          delete → 204
 *   POST   /v1/volumes/<ns>/<name>/verify   start a verify { repair?, regionBytes? } → 202 VerifyReport (its progress)
 *   GET    /v1/volumes/<ns>/<name>/verify   the running or last verify (VerifyReport)
 *   POST   /v1/volumes/<ns>/<name>/move     move its master { to } → 202 MoveStatus (its progress)
 *   GET    /v1/volumes/<ns>/<name>/move     the running or last move started through this node (MoveStatus)
 *   POST   /v1/volumes/<ns>/<name>/accept-loss  serve without the copies away (records.ts acceptLoss) → VolumeInfo
 *   PATCH  /v1/volumes/<ns>/<name>          change labels { set?: { key: value }, remove?: [key] } → VolumeInfo
 *   GET    /v1/rules[?namespace=NS]         list
 *   GET    /v1/rules/<ns>/<name>            one rule
 *   POST   /v1/rules                        create or replace { name, namespace, selector, action?, labels, weight? } → 201
 *   DELETE /v1/rules/<ns>/<name>            delete → 204
 *   GET    /v1/nodes                        nodes (a local cluster also lists stopped ones)
 *   POST   /v1/nodes/<name>/kill|revive     crash drill, local clusters only
 *   POST   /v1/nodes/<name>/cordon|uncordon no new copies / promotions there (or again) → the node's config
 *   POST   /v1/nodes/<name>/drain           cordon and move everything off it → 202 DrainStatus (its progress)
 *   GET    /v1/nodes/<name>/drain           the running or last drain started through this node (DrainStatus)
 *   PUT    /v1/nodes/<name>/labels          { set?: { key: value }, remove?: [key] } → the node's config
 *   GET    /v1/events?since=N               { events, next }
 *   GET    /v1/health                       the cluster's health: control store, nodes, every volume
 *   GET    /metrics                         Prometheus text
 *   GET    /healthz                         200 while the process serves (liveness)
 *   GET    /readyz                          200 when a node runs, the control store answers and the node is registered; else 503
 *
 * Authorization: `Authorization: Bearer <token>` on every endpoint but the probes; `/metrics` is
 * also served without the token to requests from a loopback address (a local Prometheus or curl),
 * since it names volumes but no data. `/healthz` and `/readyz` need no token (orchestrators'
 * probes carry none; they say only whether the node is ready). A wrong or missing token is 401.
 */
import { isRecord } from "../core/guards.ts"
import { Clock, Effect } from "effect"
import type { ClusterNode, NodeInfo } from "../cluster/clusterNode.ts"
import type { Metrics } from "../core/metrics.ts"
import { AdminError, errorBody, statusOf } from "./errors.ts"
import type { EventLog } from "./events.ts"

export interface LocalNodeStatus {
  readonly name: string
  readonly address: string
  readonly running: boolean
}

/** Crash drills, offered by a local cluster (all nodes in one process). */
export interface LocalControl {
  readonly kill: (name: string) => Effect.Effect<void, AdminError>
  readonly revive: (name: string) => Effect.Effect<void, AdminError>
  readonly nodes: () => ReadonlyArray<LocalNodeStatus>
}

export interface AdminTarget {
  /** A running node to serve the call (any: they share the control store). */
  readonly node: () => ClusterNode | undefined
  readonly events: EventLog
  readonly metrics: Metrics
  readonly token: string
  readonly local?: LocalControl
}

export interface AdminRequest {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly authorization: string | undefined
  readonly loopback: boolean
  readonly body: unknown
}

export interface AdminResponse {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

const json = (status: number, value: unknown): AdminResponse => ({ status, contentType: "application/json", body: status === 204 ? "" : JSON.stringify(value) })

/** Same length and same bytes, compared without an early exit. */
export const tokenMatches = (authorization: string | undefined, token: string): boolean => {
  const given = authorization?.startsWith("Bearer ") ? authorization.slice(7).trim() : ""
  if (given.length !== token.length || token.length === 0) return false
  let diff = 0
  for (let i = 0; i < token.length; i++) diff |= given.charCodeAt(i) ^ token.charCodeAt(i)
  return diff === 0
}

const badRequest = (message: string) => new AdminError({ reason: "bad-request", message })

const createBody = (body: unknown) => {
  if (!isRecord(body) || typeof body.volume !== "string" || typeof body.sizeBytes !== "number") {
    return Effect.fail(badRequest("create needs a JSON body { volume: \"ns/name\", sizeBytes: number, labels?: { key: value } }"))
  }
  const labels = body.labels ?? {}
  if (!isRecord(labels) || Object.values(labels).some((v) => typeof v !== "string")) return Effect.fail(badRequest("labels must be an object of text values"))
  return Effect.succeed({ volume: body.volume, sizeBytes: body.sizeBytes, labels: labels as Record<string, string> })
}

const verifyBody = (body: unknown) => {
  const value = body ?? {}
  if (!isRecord(value)) return Effect.fail(badRequest("verify takes a JSON body { repair?: boolean, regionBytes?: number } or none"))
  if (value.repair !== undefined && typeof value.repair !== "boolean") return Effect.fail(badRequest(`repair must be true or false, got ${JSON.stringify(value.repair)}`))
  if (value.regionBytes !== undefined && typeof value.regionBytes !== "number") return Effect.fail(badRequest(`regionBytes must be a number, got ${JSON.stringify(value.regionBytes)}`))
  return Effect.succeed({ repair: value.repair === true, ...(value.regionBytes === undefined ? {} : { regionBytes: value.regionBytes }) })
}

/** A move runs longer than one call: POST { to } checks and starts it (202), GET follows it. */
const move = (node: ClusterNode, request: AdminRequest, name: string) => {
  if (request.method === "POST") {
    const to = isRecord(request.body) ? request.body.to : undefined
    if (typeof to !== "string" || to === "") return Effect.fail(badRequest("move takes a JSON body { to: NODE } naming the node to serve as master"))
    return Effect.map(node.startMove(name, to), (status) => json(202, status))
  }
  if (request.method === "GET") return Effect.map(node.moveStatus(name), (status) => json(200, status))
  return Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on ${request.path}: use POST or GET` }))
}

/** A verify runs longer than one call: POST starts it (202), GET follows its progress and result. */
const verify = (node: ClusterNode, request: AdminRequest, name: string) => {
  if (request.method === "POST") return Effect.map(Effect.flatMap(verifyBody(request.body), (options) => node.startVerify(name, options)), (report) => json(202, report))
  if (request.method === "GET") return Effect.map(node.verifyStatus(name), (report) => json(200, report))
  return Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on ${request.path}: use POST (start) or GET (progress)` }))
}

/** POST /v1/volumes/NS/NAME/resize { sizeBytes }: 200 with the grown volume, or 202 while the resize is still under way (the CLI follows it). */
const resize = (node: ClusterNode, request: AdminRequest, name: string) => {
  if (request.method !== "POST") return Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on ${request.path}: use POST with { "sizeBytes": N }` }))
  const sizeBytes = isRecord(request.body) ? request.body.sizeBytes : undefined
  if (typeof sizeBytes !== "number") return Effect.fail(badRequest(`a resize needs a JSON body { "sizeBytes": N } with the new size in bytes, got ${JSON.stringify(request.body)}`))
  return Effect.map(node.resizeVolume(name, sizeBytes), (v) => json(v.sizeBytes >= sizeBytes ? 200 : 202, v))
}

/** POST /v1/volumes/NS/NAME/accept-loss: the volume as recorded, its acceptance for the current epoch set. */
const acceptLoss = (node: ClusterNode, request: AdminRequest, name: string) =>
  request.method === "POST"
    ? Effect.map(node.acceptLoss(name), (v) => json(200, v))
    : Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on ${request.path}: use POST` }))

const labelsBody = (body: unknown) => {
  const set = isRecord(body) ? body.set ?? {} : undefined
  const remove = isRecord(body) ? body.remove ?? [] : undefined
  if (!isRecord(set) || Object.values(set).some((v) => typeof v !== "string") || !Array.isArray(remove) || remove.some((k) => typeof k !== "string")) {
    return Effect.fail(badRequest("node labels need a JSON body { set?: { key: value }, remove?: [key] } with text keys and values"))
  }
  return Effect.succeed({ setLabels: set as Record<string, string>, removeLabels: remove as string[] })
}

type Route = (target: AdminTarget, node: ClusterNode, request: AdminRequest, rest: ReadonlyArray<string>) => Effect.Effect<AdminResponse, unknown>

const volumes: Route = (_target, node, request, rest) => {
  if (rest.length === 0 && request.method === "GET") return Effect.map(node.listVolumes, (v) => json(200, v))
  if (rest.length === 0 && request.method === "POST") return Effect.map(Effect.flatMap(createBody(request.body), node.createVolume), (v) => json(201, v))
  if (rest.length === 3 && rest[2] === "verify") return verify(node, request, `${rest[0]}/${rest[1]}`)
  if (rest.length === 3 && rest[2] === "resize") return resize(node, request, `${rest[0]}/${rest[1]}`)
  if (rest.length === 3 && rest[2] === "move") return move(node, request, `${rest[0]}/${rest[1]}`)
  if (rest.length === 3 && rest[2] === "accept-loss") return acceptLoss(node, request, `${rest[0]}/${rest[1]}`)
  if (rest.length !== 2) return Effect.fail(new AdminError({ reason: "not-found", message: "volume paths are /v1/volumes/<namespace>/<name> and /v1/volumes/<namespace>/<name>/verify|resize|move|accept-loss" }))
  const name = rest.join("/")
  if (request.method === "GET") return Effect.map(node.inspectVolume(name), (v) => json(200, v))
  if (request.method === "DELETE") return Effect.as(node.deleteVolume(name), json(204, null))
  if (request.method === "PATCH") return Effect.map(Effect.flatMap(labelsBody(request.body), (change) => node.updateVolume(name, change)), (v) => json(200, v))
  return Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on ${request.path}: use GET, PATCH or DELETE` }))
}

const oneRule = (node: ClusterNode, namespace: string, name: string) =>
  Effect.flatMap(node.listRules(namespace), (all) => {
    const rule = all.find((r) => r.name === name)
    return rule ? Effect.succeed(json(200, rule)) : Effect.fail(new AdminError({ reason: "not-found", message: `no rule ${name} in namespace ${namespace} (replivol rule ls --namespace ${namespace} lists them)` }))
  })

const rules: Route = (_target, node, request, rest) => {
  if (rest.length === 0 && request.method === "GET") return Effect.map(node.listRules(request.query.namespace || undefined), (r) => json(200, r))
  if (rest.length === 2 && request.method === "GET") return oneRule(node, rest[0]!, rest[1]!)
  if (rest.length === 0 && request.method === "POST") return Effect.map(node.putRule(request.body), (r) => json(201, r))
  if (rest.length === 2 && request.method === "DELETE") return Effect.as(node.deleteRule(rest[0]!, rest[1]!), json(204, null))
  return Effect.fail(new AdminError({ reason: "not-found", message: `no rule endpoint ${request.method} ${request.path}` }))
}

/** One row of `GET /v1/nodes`. */
export interface NodeRow {
  readonly name: string
  readonly address: string
  readonly api: string | null
  /** "up": registered and running; "down": stopped (a killed node's lease may not have expired yet); "starting": running, not yet registered. */
  readonly state: "up" | "down" | "starting"
  readonly controller: boolean
  readonly labels: Readonly<Record<string, string>>
  readonly cordoned: boolean
}

/**
 * The node table: the registered nodes (their leases), corrected by what a local cluster knows.
 * A killed local node is "down" at once, although its lease outlives it until the TTL runs out.
 */
export const nodeRows = (registered: ReadonlyArray<NodeInfo>, local: ReadonlyArray<LocalNodeStatus>): ReadonlyArray<NodeRow> => {
  const running = new Map(local.map((l) => [l.name, l.running]))
  const rows: NodeRow[] = registered.map((n) => ({
    name: n.name, address: `${n.host}:${n.port}`, api: n.api ?? null,
    state: n.alive && running.get(n.name) !== false ? "up" : "down", controller: n.controller && running.get(n.name) !== false,
    labels: n.labels ?? {}, cordoned: n.cordoned ?? false,
  }))
  for (const l of local) {
    if (!rows.some((r) => r.name === l.name)) rows.push({ name: l.name, address: l.address, api: null, state: l.running ? "starting" : "down", controller: false, labels: {}, cordoned: false })
  }
  return rows.sort((a, b) => (a.name < b.name ? -1 : 1))
}

const nodes: Route = (target, node, request, rest) => {
  if (rest.length === 0 && request.method === "GET") return Effect.map(node.listNodes, (registered) => json(200, nodeRows(registered, target.local?.nodes() ?? [])))
  const action = rest[1]
  if (rest.length === 2 && request.method === "POST" && (action === "kill" || action === "revive")) {
    if (!target.local) return Effect.fail(new AdminError({ reason: "not-local", message: `node ${action} works only on a local cluster ("replivol cluster up"); stop or start a real node's process instead` }))
    return Effect.as(target.local[action](rest[0]!), json(200, { node: rest[0], action }))
  }
  if (rest.length === 2 && request.method === "POST" && (action === "cordon" || action === "uncordon")) {
    return Effect.map(node.configureNode(rest[0]!, { cordoned: action === "cordon" }), (config) => json(200, config))
  }
  if (rest.length === 2 && action === "drain" && request.method === "POST") return Effect.map(node.startDrain(rest[0]!), (status) => json(202, status))
  if (rest.length === 2 && action === "drain" && request.method === "GET") return Effect.map(node.drainStatus(rest[0]!), (status) => json(200, status))
  if (rest.length === 2 && request.method === "PUT" && action === "labels") return Effect.map(Effect.flatMap(labelsBody(request.body), (change) => node.configureNode(rest[0]!, change)), (config) => json(200, config))
  return Effect.fail(new AdminError({ reason: "not-found", message: `no node endpoint ${request.method} ${request.path}` }))
}

const events: Route = (target, _node, request) => {
  const since = Number(request.query.since ?? "0")
  if (!Number.isSafeInteger(since) || since < 0) return Effect.fail(badRequest(`since must be a whole number ≥ 0, got "${request.query.since}"`))
  return Effect.succeed(json(200, target.events.since(since)))
}

/** Bound on the control-store probe of `/readyz` and `/v1/health`. */
export const controlStoreProbeTimeoutMs = 2000

export interface ControlStoreProbe {
  readonly reachable: boolean
  readonly latencyMs: number
  readonly message: string
}

/** Asks the control store for the node list (a read every node needs), timed and bounded. */
const probeControlStore = (node: ClusterNode) =>
  Effect.gen(function* () {
    const startedMs = yield* Clock.currentTimeMillis
    const result = yield* Effect.result(node.listNodes.pipe(Effect.timeoutOrElse({
      duration: controlStoreProbeTimeoutMs,
      orElse: () => Effect.fail(new AdminError({ reason: "unreachable", message: `the control store did not answer within ${controlStoreProbeTimeoutMs} ms` })),
    })))
    const latencyMs = (yield* Clock.currentTimeMillis) - startedMs
    const probe: ControlStoreProbe = result._tag === "Success"
      ? { reachable: true, latencyMs, message: "ok" }
      : { reachable: false, latencyMs, message: (result.failure as { message?: string }).message ?? String(result.failure) }
    return { probe, registered: result._tag === "Success" ? result.success : undefined }
  })

/** One volume in `GET /v1/health`. */
export interface VolumeHealthRow {
  readonly volume: string
  readonly health: string
  readonly usable: boolean
  readonly reason: string
  readonly master: string | null
  readonly replicasInSync: number
  readonly replicasRequested: number
}

export interface ClusterHealth {
  /** Control store reachable, every node up, every volume healthy. */
  readonly healthy: boolean
  readonly controlStore: ControlStoreProbe
  readonly nodes: ReadonlyArray<NodeRow>
  readonly volumes: ReadonlyArray<VolumeHealthRow>
}

const requestedReplicas = (labels: Readonly<Record<string, string>>) => {
  const n = Number(labels["storageos.com/replicas"] ?? "0")
  return Number.isInteger(n) ? n : 0
}

const health: Route = (target, node, request) => {
  if (request.method !== "GET") return Effect.fail(new AdminError({ reason: "method-not-allowed", message: `${request.method} is not allowed on /v1/health: use GET` }))
  return Effect.gen(function* () {
    const { probe, registered } = yield* probeControlStore(node)
    const listed = registered === undefined ? [] : yield* Effect.orElseSucceed(node.listVolumes, () => [])
    const volumes = listed.map((v): VolumeHealthRow => ({
      volume: v.volume, health: v.health, usable: v.usable, reason: v.reason, master: v.master ?? null,
      replicasInSync: v.replicas.filter((r) => r.state === "in-sync").length, replicasRequested: requestedReplicas(v.labels),
    }))
    const rows = nodeRows(registered ?? [], target.local?.nodes() ?? [])
    const healthy = probe.reachable && rows.every((n) => n.state === "up") && volumes.every((v) => v.health === "healthy")
    return json(200, { healthy, controlStore: probe, nodes: rows, volumes } satisfies ClusterHealth)
  })
}

const routes: Readonly<Record<string, Route>> = { volumes, rules, nodes, events, health }

export interface ReadyCheck {
  readonly name: "node-running" | "control-store" | "node-registered"
  readonly ok: boolean
  readonly detail: string
}

/** `/readyz`: a node of this process runs, the control store answers, and the node is registered (its lease is live). */
export const readiness = (target: AdminTarget): Effect.Effect<AdminResponse> =>
  Effect.gen(function* () {
    const node = target.node()
    if (node === undefined) {
      return json(503, { ready: false, checks: [{ name: "node-running", ok: false, detail: "no node of this process is running" }] })
    }
    const { probe, registered } = yield* probeControlStore(node)
    const me = registered?.find((n) => n.name === node.name)
    const checks: ReadonlyArray<ReadyCheck> = [
      { name: "node-running", ok: true, detail: `node ${node.name} runs` },
      { name: "control-store", ok: probe.reachable, detail: probe.reachable ? `answered in ${probe.latencyMs} ms` : probe.message },
      { name: "node-registered", ok: me?.alive === true, detail: me?.alive ? `node ${node.name} is registered with a live lease` : registered === undefined ? "unknown: the control store did not answer" : `node ${node.name} is not registered (yet)` },
    ]
    const ready = checks.every((c) => c.ok)
    return json(ready ? 200 : 503, { ready, node: node.name, checks })
  })

/** Answers one request; every failure becomes a status and an error body, never a rejection. */
export const handleRequest = (target: AdminTarget, request: AdminRequest): Effect.Effect<AdminResponse> => {
  if (request.method === "GET" && request.path === "/healthz") return Effect.succeed(json(200, { status: "ok" }))
  if (request.method === "GET" && request.path === "/readyz") return readiness(target)
  const isMetrics = request.path === "/metrics"
  if (!tokenMatches(request.authorization, target.token) && !(isMetrics && request.loopback)) {
    return Effect.succeed(json(401, { error: errorBody(new AdminError({ reason: "unauthorized", message: "a valid admin token is required: send \"Authorization: Bearer <token>\" (the token is in <data>/admin.token)" })) }))
  }
  if (isMetrics && request.method === "GET") return Effect.succeed({ status: 200, contentType: "text/plain; version=0.0.4", body: target.metrics.render() })
  const [version, resource, ...rest] = request.path.split("/").filter((p) => p !== "")
  const route = version === "v1" && resource !== undefined ? routes[resource] : undefined
  const node = target.node()
  const run: Effect.Effect<AdminResponse, unknown> =
    route === undefined ? Effect.fail(new AdminError({ reason: "not-found", message: `no endpoint ${request.method} ${request.path}: see /v1/volumes, /v1/rules, /v1/nodes, /v1/events, /v1/health, /metrics, /healthz, /readyz` }))
    : node === undefined ? Effect.fail(new AdminError({ reason: "no-node", message: "no node of this cluster is running; revive one (replivol node revive NAME)" }))
    : route(target, node, request, rest.map(decodeURIComponent))
  return run.pipe(Effect.catch((error) => Effect.succeed(json(statusOf(error as { _tag?: string; reason?: string }), { error: errorBody(error) }))))
}
