/** The CLI's pure parts: sizes, argv parsing and help, tables and bars, admin routing and token checks. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { parseSize, formatBytes, SizeError } from "../../lib/cli/size.ts"
import { parseArgs, UsageError } from "../../lib/cli/args.ts"
import { parseLabelFlags } from "../../lib/cli/commands.ts"
import { spec } from "../../lib/cli/spec.ts"
import { progressBar, table } from "../../lib/cli/format.ts"
import { handleRequest, nodeRows, tokenMatches, type AdminRequest } from "../../lib/admin/routes.ts"
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
  assert.is(metrics.get("replivol_volume_sync_bytes", { volume: "a/x", replica: "n2", kind: "done" }), 256)
  refreshVolumeGauges(metrics, [volume("a/x", "healthy")], seen)
  assert.is(metrics.get("replivol_volume_health", { volume: "a/x" }), 0)
  assert.is(metrics.get("replivol_volume_health", { volume: "a/y" }), undefined)
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

test.run()
