/**
 * The `replivol` commands: their table (for parsing and `--help`) and the client-side ones, which
 * call the admin API and print a table (or JSON with `--json`). `cluster up` and `node start`
 * run servers and live in up.ts.
 */
import { Clock, Effect } from "effect"
import type { CommandSpec, FlagSpec, FlagValue } from "./args.ts"
import { call, resolveTarget, type ApiTarget } from "./client.ts"
import { table, volumeDetail, volumeTable, type VolumeView } from "./format.ts"
import { parseSize } from "./size.ts"

export const program = "replivol"
export const about = "replivol — synchronously replicated block volumes (StorageOS v1 model): a local cluster, volumes, rules, nodes."

const api: FlagSpec = { name: "api", kind: "string", placeholder: "HOST:PORT", help: "admin API address (default $REPLIVOL_API or 127.0.0.1:5705)" }
const data: FlagSpec = { name: "data", kind: "string", placeholder: "DIR", help: "data directory holding admin.token (default $REPLIVOL_DATA or ./data)" }
const token: FlagSpec = { name: "token", kind: "string", placeholder: "TOKEN", help: "admin token (default $REPLIVOL_TOKEN or <data>/admin.token)" }
const json: FlagSpec = { name: "json", kind: "boolean", help: "print JSON for scripts" }
const clientFlags = [api, data, token, json]
const label: FlagSpec = { name: "label", kind: "repeat", placeholder: "KEY=VALUE", help: "a label, e.g. storageos.com/replicas=2" }

export const commands: ReadonlyArray<CommandSpec> = [
  {
    path: ["cluster", "up"], summary: "run a local cluster in this process: nodes, admin API, FUSE mount; Ctrl-C stops it", args: [],
    flags: [
      { name: "nodes", kind: "string", default: "3", placeholder: "N", help: "number of nodes n1..nN" },
      { name: "data", kind: "string", default: "./data", placeholder: "DIR", help: "node copies (DIR/nN), control store and admin token" },
      { name: "mount", kind: "string", default: "./mnt", placeholder: "DIR", help: "FUSE mount: every volume a file DIR/<namespace>/<name>" },
      { name: "no-mount", kind: "boolean", help: "do not mount" },
      { name: "api", kind: "string", default: "127.0.0.1:5705", placeholder: "HOST:PORT", help: "admin API address" },
      { name: "host-base", kind: "string", default: "127.0.0.", placeholder: "PREFIX", help: "node i listens on PREFIX<i>" },
      { name: "port", kind: "string", default: "5703", placeholder: "PORT", help: "replication port of every node" },
      { name: "lease-ttl-ms", kind: "string", default: "3000", placeholder: "MS", help: "node lease TTL: a killed node's volumes fail over after about this long" },
      { name: "demo", kind: "boolean", help: "create default/demo (replicas=2, 1 GiB) if missing and print what to try" },
      { name: "quiet", kind: "boolean", help: "do not print cluster events" },
    ],
  },
  {
    path: ["node", "start"], summary: "run one node of a multi-machine cluster (etcd as control store)", args: [],
    flags: [
      { name: "name", kind: "string", placeholder: "NAME", help: "node name (a DNS label), unique in the cluster" },
      { name: "address", kind: "string", placeholder: "HOST[:PORT]", help: "replication address (port 5703 by default)" },
      { name: "data", kind: "string", placeholder: "DIR", help: "where this node keeps its copies and admin token" },
      { name: "etcd", kind: "string", placeholder: "URL[,URL]", help: "etcd endpoints" },
      { name: "secret-file", kind: "string", placeholder: "FILE", help: "file holding the cluster secret (same on every node, ≥ 16 bytes)" },
      { name: "mount", kind: "string", placeholder: "DIR", help: "also mount every volume here (FUSE)" },
      { name: "api", kind: "string", placeholder: "HOST:PORT", help: "also serve the admin API here" },
      { name: "quiet", kind: "boolean", help: "do not print cluster events" },
    ],
  },
  { path: ["node", "ls"], summary: "list the cluster's nodes", args: [], flags: clientFlags },
  { path: ["node", "kill"], summary: "crash drill (local cluster): stop a node abruptly; its lease must expire", args: [{ name: "name", help: "node name, e.g. n1" }], flags: clientFlags },
  { path: ["node", "revive"], summary: "start a killed node again with its data (local cluster)", args: [{ name: "name", help: "node name" }], flags: clientFlags },
  {
    path: ["volume", "create"], summary: "create a volume (labels validated, namespace rules applied)", args: [{ name: "volume", help: "NAMESPACE/NAME" }],
    flags: [{ name: "size", kind: "string", placeholder: "SIZE", help: "size with KiB/MiB/GiB/TiB, e.g. 1GiB" }, label, ...clientFlags],
  },
  { path: ["volume", "ls"], summary: "list volumes with health, master and replicas", args: [], flags: clientFlags },
  {
    path: ["volume", "inspect"], summary: "show a volume: health, epoch, master, replicas, sync progress", args: [{ name: "volume", help: "NAMESPACE/NAME" }],
    flags: [{ name: "watch", kind: "boolean", help: "redraw until healthy, with sync progress bars" }, { name: "timeout", kind: "string", default: "600", placeholder: "SECONDS", help: "give up watching after this long" }, ...clientFlags],
  },
  { path: ["volume", "rm"], summary: "delete a volume", args: [{ name: "volume", help: "NAMESPACE/NAME" }], flags: clientFlags },
  {
    path: ["rule", "create"], summary: "create or replace a namespace rule applied when volumes are created", args: [{ name: "name", help: "rule name" }],
    flags: [
      { name: "namespace", kind: "string", placeholder: "NS", help: "namespace the rule applies to" },
      { name: "selector", kind: "string", default: "", placeholder: "EXPR", help: "label selector, e.g. \"env==prod\" (empty: every volume)" },
      { name: "action", kind: "string", default: "add", placeholder: "add|remove", help: "add or remove the labels" },
      label,
      { name: "weight", kind: "string", default: "5", placeholder: "0..10", help: "lower weights apply first" },
      ...clientFlags,
    ],
  },
  { path: ["rule", "ls"], summary: "list rules", args: [], flags: [{ name: "namespace", kind: "string", placeholder: "NS", help: "only this namespace" }, ...clientFlags] },
  { path: ["rule", "rm"], summary: "delete a rule", args: [{ name: "name", help: "rule name" }], flags: [{ name: "namespace", kind: "string", placeholder: "NS", help: "the rule's namespace" }, ...clientFlags] },
]

/** A failure the user caused (bad input), printed as one line; exit code 1. */
export class CommandError extends Error {
  readonly _tag = "CommandError"
}

export type Flags = Readonly<Record<string, FlagValue>>
export type Output = (line: string) => void

const str = (flags: Flags, name: string): string | undefined => {
  const v = flags[name]
  return typeof v === "string" && v !== "" ? v : undefined
}
const need = (flags: Flags, name: string, command: string): string => {
  const v = str(flags, name)
  if (v === undefined) throw new CommandError(`${command} needs --${name}`)
  return v
}

/** `k=v` pairs → a record; a pair without "=" is an error naming it. */
export const parseLabelFlags = (values: ReadonlyArray<string>): Record<string, string> => {
  const labels: Record<string, string> = {}
  for (const pair of values) {
    const at = pair.indexOf("=")
    if (at <= 0) throw new CommandError(`label "${pair}" is malformed: expected KEY=VALUE, e.g. storageos.com/replicas=2`)
    labels[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return labels
}

const sleep = (ms: number): Promise<void> => Effect.runPromise(Effect.sleep(ms))
const nowMs = (): number => Effect.runSync(Clock.currentTimeMillis)

interface NodeRow { readonly name: string; readonly address: string; readonly state: string; readonly controller: boolean; readonly api: string | null }
interface RuleRow { readonly name: string; readonly namespace: string; readonly selector: string; readonly action: string; readonly labels: Record<string, string>; readonly weight: number; readonly active: boolean }

const emit = (out: Output, flags: Flags, value: unknown, human: () => string) => out(flags.json === true ? JSON.stringify(value, null, 2) : human())

const watchVolume = async (target: ApiTarget, name: string, flags: Flags, out: Output, tty: boolean) => {
  const deadlineMs = nowMs() + Number(str(flags, "timeout") ?? "600") * 1000
  for (;;) {
    const v = await call<VolumeView>(target, "GET", `/v1/volumes/${name}`)
    const stamp = new Date(nowMs()).toISOString().slice(11, 19)
    if (flags.json === true) out(JSON.stringify(v))
    else out(`${tty ? "\x1b[H\x1b[2J" : "\n"}${stamp}  (watching; Ctrl-C to stop)\n${volumeDetail(v)}`)
    if (v.health === "healthy") return
    if (nowMs() > deadlineMs) throw new CommandError(`volume ${name} is still ${v.health} after ${str(flags, "timeout")} s: ${v.reason}`)
    await sleep(500)
  }
}

/** Runs one client command. Throws CommandError / ApiCallError on failure. */
export const runClientCommand = async (path: string, args: Readonly<Record<string, string>>, flags: Flags, out: Output, env: Readonly<Record<string, string | undefined>>, tty = false): Promise<void> => {
  const target = await resolveTarget({ api: str(flags, "api"), data: str(flags, "data"), token: str(flags, "token") }, env)
  switch (path) {
    case "volume create": {
      const size = parseSize(need(flags, "size", "volume create"))
      if (typeof size !== "number") throw new CommandError(size.message)
      const labels = parseLabelFlags(flags.label as ReadonlyArray<string>)
      const v = await call<VolumeView>(target, "POST", "/v1/volumes", { volume: args.volume, sizeBytes: size, labels })
      return emit(out, flags, v, () => `created ${v.volume}\n${volumeDetail(v)}`)
    }
    case "volume ls": {
      const vs = await call<VolumeView[]>(target, "GET", "/v1/volumes")
      return emit(out, flags, vs, () => volumeTable(vs))
    }
    case "volume inspect": {
      if (flags.watch === true) return watchVolume(target, args.volume!, flags, out, tty)
      const v = await call<VolumeView>(target, "GET", `/v1/volumes/${args.volume}`)
      return emit(out, flags, v, () => volumeDetail(v))
    }
    case "volume rm": {
      await call(target, "DELETE", `/v1/volumes/${args.volume}`)
      return emit(out, flags, { deleted: args.volume }, () => `deleted ${args.volume}`)
    }
    case "rule create": {
      const weight = Number(str(flags, "weight") ?? "5")
      const rule = { name: args.name, namespace: need(flags, "namespace", "rule create"), selector: str(flags, "selector") ?? "", action: str(flags, "action") ?? "add", labels: parseLabelFlags(flags.label as ReadonlyArray<string>), weight }
      const saved = await call<RuleRow>(target, "POST", "/v1/rules", rule)
      return emit(out, flags, saved, () => `rule ${saved.namespace}/${saved.name} saved: ${saved.action} ${Object.entries(saved.labels).map(([k, v]) => `${k}=${v}`).join(" ")} when "${saved.selector}" (weight ${saved.weight})`)
    }
    case "rule ls": {
      const ns = str(flags, "namespace")
      const rules = await call<RuleRow[]>(target, "GET", `/v1/rules${ns ? `?namespace=${encodeURIComponent(ns)}` : ""}`)
      return emit(out, flags, rules, () => rules.length === 0 ? "no rules" : table(["namespace", "name", "selector", "action", "labels", "weight", "active"],
        rules.map((r) => [r.namespace, r.name, r.selector || "(all)", r.action, Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(","), String(r.weight), String(r.active)])))
    }
    case "rule rm": {
      const ns = need(flags, "namespace", "rule rm")
      await call(target, "DELETE", `/v1/rules/${ns}/${args.name}`)
      return emit(out, flags, { deleted: `${ns}/${args.name}` }, () => `deleted rule ${ns}/${args.name}`)
    }
    case "node ls": {
      const nodes = await call<NodeRow[]>(target, "GET", "/v1/nodes")
      return emit(out, flags, nodes, () => table(["name", "address", "state", "controller"], nodes.map((n) => [n.name, n.address, n.state, n.controller ? "yes" : ""])))
    }
    case "node kill":
    case "node revive": {
      const action = path.split(" ")[1]!
      await call(target, "POST", `/v1/nodes/${args.name}/${action}`)
      return emit(out, flags, { node: args.name, action }, () => action === "kill" ? `killed ${args.name} (its lease expires; watch the failover: replivol volume inspect NS/NAME --watch)` : `revived ${args.name}`)
    }
  }
  throw new CommandError(`command "${path}" has no handler`)
}

