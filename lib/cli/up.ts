/**
 * The two server commands. `cluster up`: a local cluster in this process (nodes n1..nN on
 * <host-base>1..N, file stores and the embedded control store persisted under --data, the admin
 * API, a FUSE mount of every volume). `node start`: one node of a multi-machine cluster, with etcd
 * as its control store. Both print cluster events as they happen and run until their scope is
 * closed (main.ts closes it on SIGINT/SIGTERM: unmount, stop nodes, exit 0).
 */
import { Cause, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { startClusterNode, type ClusterEvent, type ClusterNode, type ClusterNodeOptions } from "../cluster/clusterNode.ts"
import { layerFile } from "../control/embeddedFile.ts"
import { makeMetrics, type Metrics } from "../core/metrics.ts"
import { AdminError } from "../admin/errors.ts"
import { makeEventLog } from "../admin/events.ts"
import { ensureSecretFile, readTextFile, serveAdmin } from "../platform/adminHttp.ts"
import { layerEtcd } from "../platform/etcdControlStore.ts"
import { layerFileStores } from "../platform/fileStores.ts"
import { localClusterTransport, transportLayerFor, type TlsOption } from "../platform/nodeTransport.ts"
import { makeClusterBackend } from "../../fuse/clusterBackend.ts"
import { mountVolumes, opTimeoutMsDefault } from "../../fuse/mount.ts"
import type { Flags, Output } from "./commands.ts"
import { CommandError, parseLabelFlags } from "./commands.ts"
import { localMembers, startLocalCluster } from "./localCluster.ts"
import { ensureKeyRing, keyRingWithoutKey, readKeyRing } from "../platform/nodeCrypto.ts"

/** How long IO waits for a (new) master, or for a new volume's replicas, before it fails (every node). */
const pauseMaxMs = 60_000
/** A FUSE op may last the whole pause and then one ordinary op: a pause ends in its own typed error, never in the mount's timeout. */
const mountOpTimeoutMs = pauseMaxMs + opTimeoutMsDefault

const demoVolume = "default/demo"
const demoSizeBytes = 2 ** 30

const text = (flags: Flags, name: string): string => {
  const v = flags[name]
  return typeof v === "string" ? v : ""
}

const absolute = (path: string): string => (path.startsWith("/") ? path : `${process.cwd()}/${path.replace(/^\.\//, "")}`).replace(/\/+$/, "")

const wholeNumber = (flags: Flags, name: string, min: number, max: number): number => {
  const value = Number(text(flags, name))
  if (!Number.isInteger(value) || value < min || value > max) throw new CommandError(`--${name} must be a whole number ${min}..${max}, got "${text(flags, name)}"`)
  return value
}

export const formatEvent = (event: ClusterEvent): string =>
  `${new Date(event.atMs).toISOString().slice(11, 23)}  ${event.node.padEnd(4)} ${event.kind.padEnd(18)} ${event.message}`

/** Mounts every volume through `pick()`'s node, or says why it cannot (no /dev/fuse, Bun/Deno). */
const mountAll = (mountDir: string, pick: () => ClusterNode | undefined, isRunning: (n: string) => boolean, metrics: Metrics, out: Output) =>
  Effect.gen(function* () {
    const backend = yield* makeClusterBackend({ node: pick, isRunning, metrics })
    const mounted = yield* Effect.result(mountVolumes({ mountDir, backend, opTimeoutMs: mountOpTimeoutMs }))
    if (mounted._tag === "Failure") {
      out(`FUSE: not mounted (${mounted.failure.reason}): ${mounted.failure.message}; the cluster runs without the mount`)
      return false
    }
    out(`FUSE: every volume is a file under ${mountDir}/<namespace>/<name> (options ${mounted.success.optionsText})`)
    return true
  })

const demoTips = (mountDir: string | undefined, api: string, data: string) => {
  const file = mountDir ? `${mountDir}/default/demo` : "(no FUSE mount)"
  const flags = api === "127.0.0.1:5705" && data.endsWith("/data") ? "" : ` --api ${api} --data ${data}`
  return [
    "",
    "Try it (in another terminal):",
    `  dd if=/dev/urandom of=${file} bs=1M count=64 oflag=direct   # writes return once master + in-sync replicas have them`,
    `  mkfs.ext4 -F ${file} && mkdir -p /tmp/demo && mount -o loop ${file} /tmp/demo`,
    `  npx replivol volume ls${flags}`,
    `  npx replivol node kill n1${flags}                               # crash drill`,
    `  npx replivol volume inspect default/demo --watch${flags}        # watch the failover and the resync`,
    `  npx replivol node revive n1${flags}`,
    "Ctrl-C stops the cluster (unmounts first); volumes are kept under the data directory.",
  ].join("\n")
}

export const clusterUp = (flags: Flags, out: Output): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const nodes = wholeNumber(flags, "nodes", 1, 16)
    const port = wholeNumber(flags, "port", 1, 65535)
    const data = absolute(text(flags, "data") || "./data")
    const api = text(flags, "api") || "127.0.0.1:5705"
    const mountDir = flags["no-mount"] === true ? undefined : absolute(text(flags, "mount") || "./mnt")
    const secret = yield* ensureSecretFile(`${data}/cluster.secret`)
    const token = yield* ensureSecretFile(`${data}/admin.token`)
    // The unwrapping key of encrypted volumes (storageos.com/encryption=true), made once: the local cluster encrypts with no setup.
    const keyRing = yield* ensureKeyRing(`${data}/encryption.key`)
    const metrics = makeMetrics()
    const hostBase = text(flags, "host-base") || "127.0.0."
    const plaintext = flags["insecure-plaintext"] === true
    const warn = (line: string) => Effect.sync(() => out(line))
    const transport = yield* localClusterTransport(localMembers(nodes, hostBase), `${data}/tls`, plaintext ? "insecure-plaintext" : undefined, warn)
    const layers = Layer.mergeAll(transport.layer, layerFileStores, layerFile(`${data}/control.json`))
    const context = yield* Layer.build(layers)
    const cluster = yield* startLocalCluster({
      nodes, hostBase, port, dataDir: data, secret, metrics, nodeLabels: nodeLabelsOf(flags), keyRing,
      node: { leaseTtlMs: wholeNumber(flags, "lease-ttl-ms", 100, 60_000), graceMs: wholeNumber(flags, "grace-ms", 1_000, 3_600_000), pauseMaxMs },
      ...(flags.quiet === true ? {} : { onEvent: (e: ClusterEvent) => out(formatEvent(e)) }),
    }).pipe(Effect.provide(context))
    const server = yield* serveAdmin(api, { node: () => cluster.node(), events: cluster.events, metrics, token, local: cluster.control })
    out(`replivol: ${nodes} node(s) ${cluster.statuses().map((s) => `${s.name}@${s.address}`).join(" ")}; data ${data}`)
    out(transport.pki ? `port ${port}: TLS 1.3, mutual certificates from a throwaway CA in ${data}/tls (ca.crt; client.crt/client.key for workloads)` : `port ${port}: plain TCP (--insecure-plaintext)`)
    out(`admin API: http://${server.address} (token in ${data}/admin.token; /metrics without token from loopback)`)
    out(`encryption: storageos.com/encryption=true volumes use the key in ${data}/encryption.key (check value ${keyRing.crypto.keyCheck(keyRing.unwrappingKey!)}); keep it, or their data is lost`)
    const last = () => [...cluster.names].reverse().map((n) => cluster.node(n)).find((n) => n !== undefined)
    const mounted = mountDir === undefined ? false : yield* mountAll(mountDir, last, cluster.isRunning, metrics, out)
    if (flags.demo === true) {
      const node = cluster.node()!
      const exists = yield* Effect.result(node.inspectVolume(demoVolume))
      if (exists._tag === "Failure") {
        const created = yield* Effect.result(node.createVolume({ volume: demoVolume, sizeBytes: demoSizeBytes, labels: { "storageos.com/replicas": String(Math.min(2, nodes - 1)) } }))
        out(created._tag === "Success" ? `created ${demoVolume} (1 GiB, replicas=${Math.min(2, nodes - 1)})` : `could not create ${demoVolume}: ${(created.failure as { message: string }).message}`)
      } else out(`${demoVolume} exists (${exists.success.health})`)
      out(demoTips(mounted ? mountDir : undefined, server.address, data))
    }
    out("ready")
    return yield* Effect.never
  })

/** `--node-label NODE:KEY=VALUE` (repeated) as labels by node. */
const nodeLabelsOf = (flags: Flags): Record<string, Record<string, string>> => {
  const out: Record<string, Record<string, string>> = {}
  for (const entry of (flags["node-label"] as ReadonlyArray<string> | undefined) ?? []) {
    const colon = entry.indexOf(":")
    const equals = entry.indexOf("=", colon)
    const node = entry.slice(0, colon)
    ;(out[node] ??= {})[entry.slice(colon + 1, equals)] = entry.slice(equals + 1)
  }
  return out
}

/** `node start`'s TLS: all three --tls-* files, or --insecure-plaintext; anything else is refused. */
const nodeTls = (flags: Flags): TlsOption => {
  const [certFile, keyFile, caFile] = [text(flags, "tls-cert"), text(flags, "tls-key"), text(flags, "tls-ca")]
  const given = [certFile, keyFile, caFile].filter((f) => f !== "").length
  if (flags["insecure-plaintext"] === true) {
    if (given > 0) throw new CommandError("node start: give either --tls-cert, --tls-key and --tls-ca, or --insecure-plaintext, not both")
    return "insecure-plaintext"
  }
  if (given < 3) throw new CommandError("node start needs --tls-cert, --tls-key and --tls-ca (PEM files from your cluster CA; see docs/cli.md) or, on a trusted network only, --insecure-plaintext")
  return { certFile: absolute(certFile), keyFile: absolute(keyFile), caFile: absolute(caFile) }
}

export const nodeStart = (flags: Flags, out: Output): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const need = (name: string) => {
      const v = text(flags, name)
      if (v === "") throw new CommandError(`node start needs --${name}`)
      return v
    }
    const name = need("name")
    const [host, portText] = need("address").split(":") as [string, string | undefined]
    const data = absolute(need("data"))
    const hosts = need("etcd").split(",").map((h) => h.trim()).filter((h) => h !== "")
    const secretFile = need("secret-file")
    const secret = yield* Effect.promise(() => readTextFile(secretFile))
    if (secret === undefined || secret.length < 16) return yield* new AdminError({ reason: "bad-request", message: `--secret-file ${secretFile} cannot be read or holds fewer than 16 bytes: put the same secret on every node` })
    const keyFile = text(flags, "encryption-key-file")
    const keyRing = keyFile ? yield* readKeyRing(absolute(keyFile)) : keyRingWithoutKey()
    if (keyRing instanceof Error) return yield* keyRing
    const metrics = makeMetrics()
    const events = makeEventLog()
    const api = text(flags, "api")
    const options = {
      name, address: { host, port: portText ? Number(portText) : 5703 }, dataDir: data, secret, metrics, pauseMaxMs, keyRing,
      ...(api ? { api } : {}), labels: parseLabelFlags((flags.label as ReadonlyArray<string> | undefined) ?? []),
      onClusterEvent: (e: ClusterEvent) => {
        events.push(e)
        if (flags.quiet !== true) out(formatEvent(e))
      },
    } as ClusterNodeOptions
    const tls = nodeTls(flags)
    const transport = yield* transportLayerFor(tls, { name, host }, (line) => Effect.sync(() => out(line)))
    const context = yield* Layer.build(Layer.mergeAll(transport, layerFileStores, layerEtcd({ hosts })))
    const node = yield* startClusterNode(options).pipe(Effect.provide(context))
    out(`replivol: node ${name} at ${host}:${options.address.port ?? 5703} (${tls === "insecure-plaintext" ? "plain TCP" : "TLS 1.3"}), etcd ${hosts.join(",")}, data ${data}`)
    out(keyRing.unwrappingKey ? `encryption: key from ${keyRing.source} (check value ${keyRing.crypto.keyCheck(keyRing.unwrappingKey)})` : `encryption: no key (${keyRing.source}): this node hosts replicas of encrypted volumes but creates and serves none`)
    if (api) {
      const token = yield* ensureSecretFile(`${data}/admin.token`)
      const server = yield* serveAdmin(api, { node: () => node, events, metrics, token })
      out(`admin API: http://${server.address} (token in ${data}/admin.token)`)
    }
    const mount = text(flags, "mount")
    if (mount) yield* mountAll(absolute(mount), () => node, () => true, metrics, out)
    out("ready")
    return yield* Effect.never
  })

const messageOf = (error: unknown): string =>
  typeof (error as { message?: unknown })?.message === "string" && (error as { message: string }).message !== "" ? (error as { message: string }).message : String(error)

/**
 * Runs `cluster up` or `node start` until SIGINT/SIGTERM; resolves with the exit code (0 when
 * stopped by a signal or finished, 1 when it failed: the reason goes to `fail`).
 */
export const runServer = (path: string, flags: Flags, out: Output, fail: (message: string, code: number) => void): Promise<number> =>
  new Promise<number>((resolve) => {
    const run = path === "cluster up" ? clusterUp : nodeStart
    const fiber = Effect.runFork(Effect.scoped(Effect.suspend(() => run(flags, out))))
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      out(`${signal}: stopping (unmount, stop nodes)…`)
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", () => stop("SIGINT"))
    process.on("SIGTERM", () => stop("SIGTERM"))
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit) || (stopping && Cause.hasInterruptsOnly(exit.cause))) {
        out("stopped")
        return resolve(0)
      }
      const failure = exit.cause.reasons.find((r) => r._tag === "Fail") as { error?: unknown } | undefined
      const die = exit.cause.reasons.find((r) => r._tag === "Die") as { defect?: unknown } | undefined
      fail(messageOf(failure?.error ?? die?.defect ?? Cause.pretty(exit.cause)), 1)
      resolve(1)
    })
  })
