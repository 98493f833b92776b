/** The CLI's pure parts: sizes, argv parsing and help, tables and bars, admin routing and token checks. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { parseSize, formatBytes, SizeError } from "../../lib/cli/size.ts"
import { flagIndex, parseArgs, UsageError, type Parsed } from "../../lib/cli/args.ts"
import { parseLabelFlags } from "../../lib/cli/commands.ts"
import { spec } from "../../lib/cli/spec.ts"
import { progressBar, table } from "../../lib/cli/format.ts"
import { handleRequest, nodeRows, tokenMatches, type AdminRequest, type AdminTarget } from "../../lib/admin/routes.ts"
import { ControlError } from "../../lib/control/ControlStore.ts"
import type { ClusterNode } from "../../lib/cluster/clusterNode.ts"
import { makeEventLog } from "../../lib/admin/events.ts"
import { refreshVolumeGauges } from "../../lib/admin/metrics.ts"
import { makeMetrics } from "../../lib/core/metrics.ts"
import type { NodeInfo, VolumeInfo } from "../../lib/cluster/clusterNode.ts"

const test = suite("cli: pure parts")

test("sizes: binary suffixes, bytes, and clear errors", () => {
  assert.is(parseSize("1GiB"), 2 ** 30)
  assert.is(parseSize("512MiB"), 512 * 2 ** 20)
  assert.is(parseSize("4096"), 4096)
  assert.is(parseSize("1.5KiB"), 1536)
  assert.is(parseSize("2t"), 2 * 2 ** 40)
  for (const bad of ["", "GiB", "1GB", "-1MiB", "1 giga"]) {
    const e = parseSize(bad)
    assert.instance(e, SizeError, bad)
    assert.match((e as SizeError).message, "KiB, MiB, GiB or TiB")
  }
  assert.is((parseSize("0") as SizeError).reason, "not-positive")
  assert.is(formatBytes(2 ** 30), "1 GiB")
  assert.is(formatBytes(1536), "1.5 KiB")
})

test("argv: command, positional, repeated and defaulted flags", () => {
  const parsed = parseArgs(spec, ["volume", "create", "ns/v", "--size", "1GiB", "--label", "a=b", "--label=c=d", "--json"])
  if (parsed instanceof UsageError || parsed.kind !== "run") throw new Error("expected a command")
  assert.equal(parsed.command.path, ["volume", "create"])
  assert.is(parsed.args.volume, "ns/v")
  assert.is(parsed.flags.size, "1GiB")
  assert.equal(parsed.flags.label, ["a=b", "c=d"])
  assert.is(parsed.flags.json, true)
  const up = parseArgs(spec, ["cluster", "up"])
  if (up instanceof UsageError || up.kind !== "run") throw new Error("expected a command")
  assert.is(up.flags.nodes, "3")
  assert.is(up.flags.api, "127.0.0.1:5705")
})

test("argv: usage errors name the problem; --help is help", () => {
  const unknown = parseArgs(spec, ["volume", "ls", "--bogus"])
  assert.instance(unknown, UsageError)
  assert.is((unknown as UsageError).reason, "unknown-flag")
  const missing = parseArgs(spec, ["volume", "inspect"])
  assert.is((missing as UsageError).reason, "missing-argument")
  const noValue = parseArgs(spec, ["volume", "create", "a/b", "--size"])
  assert.is((noValue as UsageError).reason, "missing-value")
  const extra = parseArgs(spec, ["volume", "rm", "a/b", "c/d"])
  assert.is((extra as UsageError).reason, "extra-argument")
  const help = parseArgs(spec, ["rule", "create", "--help"])
  assert.ok(!(help instanceof UsageError) && help.kind === "help" && help.text.includes("--selector EXPR"))
  const group = parseArgs(spec, ["volume"])
  assert.ok(!(group instanceof UsageError) && group.kind === "help" && group.text.includes("volume inspect"))
})

test("labels: KEY=VALUE pairs; a pair without = is refused with its text", () => {
  assert.equal(parseLabelFlags(["a=b", "storageos.com/replicas=2", "empty="]), { a: "b", "storageos.com/replicas": "2", empty: "" })
  assert.throws(() => parseLabelFlags(["novalue"]), /label "novalue" is malformed/)
})

test("tables align columns; the progress bar shows the fraction", () => {
  const text = table(["name", "state"], [["n1", "up"], ["node-10", "down"]])
  assert.is(text, "NAME     STATE\nn1       up\nnode-10  down")
  assert.is(progressBar(512, 1024, 10), "[#####.....]  50% 512 B/1 KiB")
  assert.is(progressBar(0, 0, 4), "[....]   0% 0 B/0 B")
})

const request = (over: Partial<AdminRequest>): AdminRequest => ({ method: "GET", path: "/v1/volumes", query: {}, authorization: undefined, loopback: false, body: undefined, ...over })

test("admin routes: token required (metrics open on loopback only); no node → 503", async () => {
  const target = { node: () => undefined, events: makeEventLog(), metrics: makeMetrics(), token: "t0k3n" }
  assert.is((await Effect.runPromise(handleRequest(target, request({})))).status, 401)
  assert.is((await Effect.runPromise(handleRequest(target, request({ authorization: "Bearer wrong" })))).status, 401)
  assert.is((await Effect.runPromise(handleRequest(target, request({ authorization: "Bearer t0k3n" })))).status, 503)
  assert.is((await Effect.runPromise(handleRequest(target, request({ path: "/metrics", loopback: true })))).status, 200)
  assert.is((await Effect.runPromise(handleRequest(target, request({ path: "/metrics", loopback: false })))).status, 401)
  const body = JSON.parse((await Effect.runPromise(handleRequest(target, request({})))).body)
  assert.is(body.error.tag, "AdminError")
  assert.is(body.error.reason, "unauthorized")
  assert.ok(tokenMatches("Bearer abc", "abc"))
  assert.not.ok(tokenMatches("Bearer abd", "abc"))
  assert.not.ok(tokenMatches(undefined, ""))
})

test("events since N; health and sync gauges follow the volume list and drop deleted volumes", () => {
  const log = makeEventLog(2)
  for (const kind of ["a", "b", "c"]) log.push({ atMs: 0, node: "n1", kind, message: kind })
  assert.equal(log.since(0).events.map((e) => e.kind), ["b", "c"])
  assert.equal(log.since(2).events.map((e) => e.seq), [3])
  const metrics = makeMetrics()
  const volume = (name: string, health: VolumeInfo["health"]): VolumeInfo => ({
    volume: name, sizeBytes: 1024, labels: {}, health, usable: true, reason: "", epoch: 1, master: "n1",
    replicas: [{ node: "n2", state: "syncing", bytesDone: 256, bytesTotal: 1024 }], rulesApplied: [],
  })
  const seen = refreshVolumeGauges(metrics, [volume("a/x", "degraded"), volume("a/y", "unavailable")], new Set())
  assert.is(metrics.get("replivol_volume_health", { volume: "a/x" }), 1)
  assert.is(metrics.get("replivol_volume_health", { volume: "a/y" }), 2)
  assert.is(metrics.get("replivol_volume_sync_done_bytes", { volume: "a/x", replica: "n2" }), 256)
  assert.is(metrics.get("replivol_volume_sync_total_bytes", { volume: "a/x", replica: "n2" }), 1024)
  metrics.add("replivol_backend_ops_total", { volume: "a/y", op: "write", result: "ok" })
  metrics.histogram("replivol_frontend_latency_seconds", { volume: "a/y", op: "write" }).observe(1)
  metrics.add("replivol_backend_ops_total", { volume: "a/x", op: "write", result: "ok" })
  refreshVolumeGauges(metrics, [volume("a/x", "healthy")], seen)
  assert.is(metrics.get("replivol_volume_health", { volume: "a/x" }), 0)
  assert.is(metrics.get("replivol_volume_health", { volume: "a/y" }), undefined)
  assert.is(metrics.get("replivol_volume_sync_done_bytes", { volume: "a/y", replica: "n2" }), undefined)
  assert.is(metrics.get("replivol_backend_ops_total", { volume: "a/y", op: "write", result: "ok" }), undefined, "a deleted volume's counters go too")
  assert.is(metrics.histogramOf("replivol_frontend_latency_seconds", { volume: "a/y", op: "write" }), undefined, "and its histograms")
  assert.is(metrics.get("replivol_backend_ops_total", { volume: "a/x", op: "write", result: "ok" }), 1, "a listed volume keeps its counters")
})

test("node rows: a killed local node is down at once, though its lease has not expired yet", () => {
  const registered = (name: string, controller = false): NodeInfo => ({ name, host: "127.0.0.1", port: 5703, startedAtMs: 0, alive: true, controller })
  const local = [
    { name: "n1", address: "127.0.0.1:5703", running: false },
    { name: "n2", address: "127.0.0.2:5703", running: true },
    { name: "n3", address: "127.0.0.3:5703", running: true },
    { name: "n4", address: "127.0.0.4:5703", running: false },
  ]
  const rows = nodeRows([registered("n2"), registered("n1", true)], local)
  assert.equal(rows.map((r) => [r.name, r.state, r.controller]), [["n1", "down", false], ["n2", "up", false], ["n3", "starting", false], ["n4", "down", false]])
  assert.equal(nodeRows([registered("n1", true)], []).map((r) => [r.name, r.state, r.controller]), [["n1", "up", true]], "without a local cluster the leases decide")
})

const run = (...argv: string[]): Parsed => {
  const parsed = parseArgs(spec, argv)
  if (parsed instanceof UsageError || parsed.kind !== "run") throw new Error(`expected a command from ${argv.join(" ")}: ${parsed instanceof UsageError ? parsed.message : parsed.kind}`)
  return parsed
}
const usage = (...argv: string[]): UsageError => {
  const parsed = parseArgs(spec, argv)
  if (!(parsed instanceof UsageError)) throw new Error(`expected a usage error from ${argv.join(" ")}`)
  return parsed
}

test("argv: global and admin flags anywhere on the line, one-letter aliases, -- ends the flags", () => {
  const before = run("--api", "10.0.0.1:5705", "-j", "volume", "ls")
  const after = run("volume", "ls", "--api", "10.0.0.1:5705", "--json")
  assert.equal(before.flags, after.flags)
  assert.is(before.flags.api, "10.0.0.1:5705")
  assert.is(before.flags.json, true)
  const short = run("-d", "/tmp/d", "volume", "create", "-s", "1GiB", "-l", "a=b", "-l", "c=d", "ns/v")
  assert.equal([short.args.volume, short.flags.size, short.flags.label, short.flags.data], ["ns/v", "1GiB", ["a=b", "c=d"], "/tmp/d"])
  const rule = run("rule", "inspect", "-n", "prod", "fast")
  assert.equal([rule.command.path, rule.args.name, rule.flags.namespace], [["rule", "inspect"], "fast", "prod"])
  assert.is(run("volume", "inspect", "--", "-odd/name").args.volume, "-odd/name")
  assert.is((parseArgs(spec, ["--version"]) as { kind: string }).kind, "version")
  assert.is((parseArgs(spec, ["volume", "ls", "-V"]) as { kind: string }).kind, "version")
  assert.is((parseArgs(spec, ["-h", "volume", "create"]) as { kind: string }).kind, "help")
})

test("argv: every value is checked; the error names the flag, the bad value and what is allowed", () => {
  const cases: Array<[string[], RegExp]> = [
    [["volume", "inspect", "a/b", "--watch", "--timeout", "abc"], /^--timeout "abc" is not valid: expected a number 1\.\.86400 \(seconds\)$/],
    [["rule", "create", "r", "-n", "ns", "--weight", "abc"], /^--weight "abc" is not valid: expected a whole number 0\.\.10$/],
    [["rule", "create", "r", "-n", "ns", "--weight", "11"], /^--weight "11" is not valid/],
    [["rule", "create", "r", "-n", "ns", "--action", "toggle"], /^--action "toggle" is not valid: expected one of add, remove$/],
    [["volume", "create", "a/b", "--size", "12XB"], /^--size "12XB" is not valid: expected a whole number with an optional unit KiB, MiB, GiB or TiB/],
    [["volume", "create", "a/b", "--size", "0"], /^--size "0" is not valid: expected a size greater than zero/],
    [["volume", "create", "a/b", "-s", "1GiB", "--label", "novalue"], /^--label "novalue" is not valid: expected KEY=VALUE/],
    [["cluster", "up", "--nodes", "0"], /^--nodes "0" is not valid: expected a whole number 1\.\.16$/],
    [["cluster", "up", "--port", "70000"], /^--port "70000" is not valid/],
    [["cluster", "up", "--lease-ttl-ms", "1.5"], /^--lease-ttl-ms "1\.5" is not valid/],
    [["cluster", "up", "--grace-ms", "500"], /^--grace-ms "500" is not valid: expected a whole number 1000\.\.3600000 \(milliseconds\)$/],
    [["volume", "ls", "--api", "nohost"], /^--api "nohost" is not valid: expected HOST:PORT/],
    [["volume", "ls", "--json=maybe"], /^--json "maybe" is not valid: expected true or false/],
    [["completion", "fish"], /^SHELL "fish" is not valid: expected one of bash, zsh$/],
  ]
  for (const [argv, message] of cases) {
    const error = usage(...argv)
    assert.is(error.reason, "bad-value", argv.join(" "))
    assert.match(error.message, message, argv.join(" "))
  }
  assert.is(usage("volume", "create", "a/b").reason, "missing-flag")
  assert.match(usage("volume", "create", "a/b").message, /needs --size SIZE/)
  assert.is(usage("rule", "rm", "r").reason, "missing-flag")
  assert.is(usage("node", "start", "--name", "n1").reason, "missing-flag")
  assert.is(usage("volume", "ls", "-x").reason, "unknown-flag")
  assert.is(usage("volume", "ls", "--size", "1GiB").reason, "unknown-flag", "a flag of another command")
  assert.is(usage("volume", "explode").reason, "unknown-command")
})

test("the command table: no flag name or alias means two things; every alias shows in its command's help", () => {
  assert.equal(flagIndex(spec).conflicts, [])
  for (const command of spec.commands) {
    const help = parseArgs(spec, [...command.path, "--help"]) as { kind: string; text: string }
    assert.is(help.kind, "help")
    for (const flag of command.flags) assert.match(help.text, flag.short ? `-${flag.short}, --${flag.name}` : `--${flag.name}`, `${command.path.join(" ")}: --${flag.name}`)
  }
})

const fakeNode = (over: Partial<ClusterNode>): ClusterNode => ({
  name: "n1",
  listNodes: Effect.succeed([{ name: "n1", host: "127.0.0.1", port: 5703, startedAtMs: 0, alive: true, controller: true }]),
  listVolumes: Effect.succeed([]),
  ...over,
}) as unknown as ClusterNode

const probe = async (target: AdminTarget, path: string) => {
  const response = await Effect.runPromise(handleRequest(target, request({ path })))
  return { status: response.status, body: JSON.parse(response.body) }
}

test("/healthz answers while the process serves; /readyz says which check fails (no node, control store, not registered)", async () => {
  const base = { events: makeEventLog(), metrics: makeMetrics(), token: "t0k3n" }
  assert.equal(await probe({ ...base, node: () => undefined }, "/healthz"), { status: 200, body: { status: "ok" } })
  const none = await probe({ ...base, node: () => undefined }, "/readyz")
  assert.is(none.status, 503)
  assert.equal(none.body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]), [["node-running", false]])
  const ready = await probe({ ...base, node: () => fakeNode({}) }, "/readyz")
  assert.is(ready.status, 200, JSON.stringify(ready.body))
  assert.equal(ready.body.checks.map((c: { ok: boolean }) => c.ok), [true, true, true])
  const storeDown = await probe({ ...base, node: () => fakeNode({ listNodes: Effect.fail(new ControlError({ reason: "unreachable", message: "etcd: connection refused" })) }) }, "/readyz")
  assert.is(storeDown.status, 503)
  assert.equal(storeDown.body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]), [["node-running", true], ["control-store", false], ["node-registered", false]])
  assert.match(storeDown.body.checks[1].detail, "connection refused")
  const unregistered = await probe({ ...base, node: () => fakeNode({ listNodes: Effect.succeed([]) }) }, "/readyz")
  assert.is(unregistered.status, 503)
  assert.equal(unregistered.body.checks.map((c: { ok: boolean }) => c.ok), [true, true, false])
})

test.run()
