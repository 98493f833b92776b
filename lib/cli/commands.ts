/**
 * The client-side `replivol` commands: each calls the admin API and prints a table (or JSON with
 * `--json`). The command table itself is lib/cli/spec.ts; `cluster up` and `node start` run
 * servers and live in up.ts. Loaded only when a client command runs (main.ts imports it lazily).
 */
import { Clock, Effect } from "effect"
import { UsageError, type FlagValue } from "./args.ts"
import { call, resolveTarget, type ApiTarget } from "./client.ts"
import { clusterHealthText, drainProgressLine, moveProgressLine, ruleDetail, table, verifyProgressLine, verifyText, volumeDetail, volumeTable, type ClusterHealthView, type DrainView, type MoveView, type RuleView, type VerifyView, type VolumeView } from "./format.ts"
import { formatBytes, parseSize } from "./size.ts"

/** The operation cannot be done as asked (printed as one line; exit code 1). Bad input the parser can see is a UsageError (exit 2). */
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

interface NodeRow { readonly name: string; readonly address: string; readonly state: string; readonly controller: boolean; readonly api: string | null; readonly labels: Readonly<Record<string, string>>; readonly cordoned: boolean }
interface NodeConfig { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly cordoned: boolean }

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

/** Polls a started verify until it ends, drawing its progress (redrawn on a terminal, a line per 10% otherwise). */
const followVerify = async (target: ApiTarget, name: string, started: VerifyView, flags: Flags, out: Output, tty: boolean): Promise<VerifyView> => {
  const deadlineMs = nowMs() + Number(str(flags, "timeout") ?? "86400") * 1000
  let report = started
  let shownTenths = -1
  for (;;) {
    const tenths = report.bytesTotal > 0 ? Math.floor((report.bytesDone / report.bytesTotal) * 10) : 10
    if (flags.json !== true && (tty || tenths > shownTenths)) {
      out(`${tty && shownTenths >= 0 ? "\x1b[1A\x1b[2K" : ""}${verifyProgressLine(report)}`)
      shownTenths = tenths
    }
    if (report.state !== "running") return report
    if (nowMs() > deadlineMs) throw new CommandError(`verify of ${name} still runs after ${str(flags, "timeout")} s (${report.bytesDone} of ${report.bytesTotal} bytes); follow it with GET /v1/volumes/${name}/verify`)
    await sleep(tty ? 250 : 500)
    report = await call<VerifyView>(target, "GET", `/v1/volumes/${name}/verify`)
    if (report.startedAtMs !== started.startedAtMs || report.epoch !== started.epoch) throw new CommandError(`verify of ${name} was replaced (its master changed or another verify started); run it again`)
  }
}

/** Polls a recorded resize until the volume has the new size (the admin API answers as soon as it is recorded, or done). */
const followResize = async (target: ApiTarget, name: string, sizeBytes: number, first: VolumeView, flags: Flags): Promise<VolumeView> => {
  const deadlineMs = nowMs() + Number(str(flags, "timeout") ?? "120") * 1000
  let v = first
  while (v.sizeBytes < sizeBytes) {
    if (nowMs() > deadlineMs) {
      throw new CommandError(`volume ${name} is still ${formatBytes(v.sizeBytes)} after ${str(flags, "timeout") ?? "120"} s: the resize to ${formatBytes(sizeBytes)} is recorded and completes once its master can grow every in-sync copy (${v.health}: ${v.reason}); watch it with replivol volume inspect ${name}`)
    }
    await sleep(200)
    v = await call<VolumeView>(target, "GET", `/v1/volumes/${name}`)
  }
  return v
}

/**
 * Polls a started move or drain at `path` until it ends, printing a progress line when it changes
 * (redrawn on a terminal); returns the final status.
 */
const follow = async <A extends { readonly state: string; readonly startedAtMs: number }>(target: ApiTarget, path: string, started: A, line: (a: A) => string, flags: Flags, out: Output, tty: boolean): Promise<A> => {
  const deadlineMs = nowMs() + Number(str(flags, "timeout") ?? "86400") * 1000
  let status = started
  let shown = ""
  for (;;) {
    const text = line(status)
    if (flags.json !== true && text !== shown) {
      out(`${tty && shown !== "" ? "\x1b[1A\x1b[2K" : ""}${text}`)
      shown = text
    }
    if (status.state === "done" || status.state === "failed") return status
    if (nowMs() > deadlineMs) throw new CommandError(`still running after ${str(flags, "timeout")} s: ${text}; follow it with GET ${path}`)
    await sleep(tty ? 250 : 500)
    status = await call<A>(target, "GET", path)
    if (status.startedAtMs !== started.startedAtMs) throw new CommandError(`another run replaced this one (${line(status)})`)
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
    case "volume verify": {
      const started = await call<VerifyView>(target, "POST", `/v1/volumes/${args.volume}/verify`, { repair: flags.repair === true })
      const report = await followVerify(target, args.volume!, started, flags, out, tty)
      emit(out, flags, report, () => verifyText(report))
      if (report.state === "failed") throw new CommandError(`verify of ${args.volume} failed: ${report.error ?? "unknown reason"}`)
      if (report.differingRegions > 0) {
        throw new CommandError(`${report.differingRegions} regions of ${args.volume} differ from its master${report.repair ? " after the repair" : `; repair them with: replivol volume verify ${args.volume} --repair`}`)
      }
      const skipped = report.copies.filter((c) => c.state !== "compared")
      if (skipped.length > 0) throw new CommandError(`verify of ${args.volume} is incomplete: ${skipped.map((c) => `${c.node} (${c.reason ?? "skipped"})`).join(", ")} could not be compared to the end; run it again once the volume is healthy`)
      return
    }
    case "volume resize": {
      const size = parseSize(need(flags, "size", "volume resize"))
      if (typeof size !== "number") throw new CommandError(size.message)
      const v = await followResize(target, args.volume!, size, await call<VolumeView>(target, "POST", `/v1/volumes/${args.volume}/resize`, { sizeBytes: size }), flags)
      return emit(out, flags, v, () => `resized ${v.volume} to ${formatBytes(v.sizeBytes)} (${v.sizeBytes} bytes) on every in-sync copy\n` +
        `the mounted file shows it within about 2 s; then grow what is on it, e.g. losetup -c /dev/loopN && resize2fs /dev/loopN\n${volumeDetail(v)}`)
    }
    case "volume move": {
      const path = `/v1/volumes/${args.volume}/move`
      const started = await call<MoveView>(target, "POST", path, { to: need(flags, "to", "volume move") })
      const done = await follow(target, path, started, moveProgressLine, flags, out, tty)
      if (flags.json === true) out(JSON.stringify(done, null, 2))
      if (done.state === "failed") throw new CommandError(`move of ${args.volume} to ${done.to} failed: ${done.error ?? "unknown reason"}`)
      return
    }
    case "node drain": {
      const path = `/v1/nodes/${args.name}/drain`
      const started = await call<DrainView>(target, "POST", path)
      const done = await follow(target, path, started, drainProgressLine, flags, out, tty)
      if (flags.json === true) out(JSON.stringify(done, null, 2))
      if (done.state === "failed") throw new CommandError(`drain of ${args.name} failed: ${done.error ?? "unknown reason"}`)
      return
    }
    case "volume accept-loss": {
      if (flags.yes !== true) {
        throw new CommandError(`volume accept-loss gives up on the copies of ${args.volume} that are away: writes only they hold are lost for good. ` +
          `Check replivol volume inspect ${args.volume} first (bring those nodes back if you can), then run it again with --yes`)
      }
      const result = await call<{ accepted: boolean; message: string; volume: VolumeView }>(target, "POST", `/v1/volumes/${args.volume}/accept-loss`)
      const follow = result.accepted ? `\nfollow it with: replivol volume inspect ${result.volume.volume} --watch` : ""
      return emit(out, flags, result, () => `${result.message}${follow}\n${volumeDetail(result.volume)}`)
    }
    case "volume rm": {
      await call(target, "DELETE", `/v1/volumes/${args.volume}`)
      return emit(out, flags, { deleted: args.volume }, () => `deleted ${args.volume}`)
    }
    case "rule create": {
      const weight = Number(str(flags, "weight") ?? "5")
      const rule = { name: args.name, namespace: need(flags, "namespace", "rule create"), selector: str(flags, "selector") ?? "", action: str(flags, "action") ?? "add", labels: parseLabelFlags(flags.label as ReadonlyArray<string>), weight }
      const saved = await call<RuleView>(target, "POST", "/v1/rules", rule)
      return emit(out, flags, saved, () => `rule ${saved.namespace}/${saved.name} saved: ${saved.action} ${Object.entries(saved.labels).map(([k, v]) => `${k}=${v}`).join(" ")} when "${saved.selector}" (weight ${saved.weight})`)
    }
    case "rule ls": {
      const ns = str(flags, "namespace")
      const rules = await call<RuleView[]>(target, "GET", `/v1/rules${ns ? `?namespace=${encodeURIComponent(ns)}` : ""}`)
      return emit(out, flags, rules, () => rules.length === 0 ? "no rules" : table(["namespace", "name", "selector", "action", "labels", "weight", "active"],
        rules.map((r) => [r.namespace, r.name, r.selector || "(all)", r.action, Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(","), String(r.weight), String(r.active)])))
    }
    case "rule inspect": {
      const ns = need(flags, "namespace", "rule inspect")
      const rule = await call<RuleView>(target, "GET", `/v1/rules/${encodeURIComponent(ns)}/${encodeURIComponent(args.name!)}`)
      return emit(out, flags, rule, () => ruleDetail(rule))
    }
    case "cluster health": {
      const health = await call<ClusterHealthView>(target, "GET", "/v1/health")
      return emit(out, flags, health, () => clusterHealthText(health))
    }
    case "rule rm": {
      const ns = need(flags, "namespace", "rule rm")
      await call(target, "DELETE", `/v1/rules/${ns}/${args.name}`)
      return emit(out, flags, { deleted: `${ns}/${args.name}` }, () => `deleted rule ${ns}/${args.name}`)
    }
    case "node ls": {
      const nodes = await call<NodeRow[]>(target, "GET", "/v1/nodes")
      return emit(out, flags, nodes, () => table(["name", "address", "state", "controller", "cordoned", "labels"], nodes.map((n) => [
        n.name, n.address, n.state, n.controller ? "yes" : "", n.cordoned ? "yes" : "", Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(","),
      ])))
    }
    case "volume update": {
      const set = parseLabelFlags((flags.label as ReadonlyArray<string>) ?? [])
      const remove = (flags["label-rm"] as ReadonlyArray<string>) ?? []
      if (Object.keys(set).length === 0 && remove.length === 0) throw new UsageError("missing-value", `"replivol volume update ${args.volume}" needs --label KEY=VALUE or --label-rm KEY`)
      const view = await call<VolumeView>(target, "PATCH", `/v1/volumes/${args.volume}`, { set, remove })
      return emit(out, flags, view, () => `updated ${args.volume}\n${volumeDetail(view)}`)
    }
    case "node cordon":
    case "node uncordon": {
      const action = path.split(" ")[1]!
      const config = await call<NodeConfig>(target, "POST", `/v1/nodes/${args.name}/${action}`)
      return emit(out, flags, config, () => config.cordoned ? `cordoned ${args.name}: no new copy is placed on it and no replica on it is promoted` : `uncordoned ${args.name}`)
    }
    case "node label": {
      const set = parseLabelFlags((flags.label as ReadonlyArray<string>) ?? [])
      const remove = (flags.remove as ReadonlyArray<string>) ?? []
      if (Object.keys(set).length === 0 && remove.length === 0) throw new UsageError("missing-value", `"replivol node label ${args.name}" needs --label KEY=VALUE or --remove KEY`)
      const config = await call<NodeConfig>(target, "PUT", `/v1/nodes/${args.name}/labels`, { set, remove })
      return emit(out, flags, config, () => `${args.name}: ${Object.entries(config.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "no labels"}`)
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

