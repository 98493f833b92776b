/** `replivol` end to end against a `cluster up` child: help, token, volumes with labels and rules, bad labels, cluster health, node kill. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { readFile } from "node:fs/promises"
import { checkExposition } from "../support/prometheus.ts"
import { eventually, runCli, startUp, type UpCluster } from "./support.ts"

const test = suite("replivol CLI against cluster up")
let up: UpCluster

// The lease TTL outlives one CLI call (~2 s), so `node ls` right after `node kill` runs while the
// killed node's lease is still held: the check below then tests the product, not the timing.
test.before(async () => {
  up = await startUp({ hostBase: "127.0.5.", port: 25703, apiPort: 25705, extra: ["--no-mount", "--lease-ttl-ms", "4000"] })
})

test.after(async () => {
  const code = await up?.stop()
  assert.is(code, 0, "cluster up exits 0 on SIGTERM")
})

test("--help lists the commands; a command's --help shows its flags; unknown commands fail with a reason", async () => {
  const root = await runCli(["--help"])
  assert.is(root.code, 0)
  for (const command of ["cluster up", "volume create", "volume inspect", "rule create", "node kill"]) assert.match(root.stdout, command)
  const create = await runCli(["volume", "create", "--help"])
  assert.is(create.code, 0)
  assert.match(create.stdout, "--size SIZE")
  assert.match(create.stdout, "--label KEY=VALUE")
  const bad = await runCli(["volume", "explode"])
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /^replivol: unknown command "volume explode"/)
  const version = await runCli(["--version"])
  assert.is(version.code, 0)
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  assert.is(version.stdout.trim(), `replivol ${pkg.version}`)
})

test("global flags work before the command as after it; -j is --json", async () => {
  const before = await runCli(["--api", up.api, "-d", up.data, "-j", "volume", "ls"])
  assert.is(before.code, 0, before.stderr)
  const after = await runCli(["volume", "ls", "--json", "--api", up.api, "--data", up.data])
  assert.is(after.code, 0, after.stderr)
  assert.equal(JSON.parse(before.stdout), JSON.parse(after.stdout))
})

test("the admin API wants the token: 401 without or with a wrong one", async () => {
  const none = await fetch(`http://${up.api}/v1/volumes`)
  assert.is(none.status, 401)
  const wrong = await fetch(`http://${up.api}/v1/volumes`, { headers: { authorization: "Bearer nope" } })
  assert.is(wrong.status, 401)
  const cli = await runCli(["volume", "ls", "--api", up.api, "--token", "nope"])
  assert.is.not(cli.code, 0)
  assert.match(cli.stderr, /admin token is required/)
})

test("create with labels under a namespace rule: inspect --json shows the rule's effect", async () => {
  const rule = await up.cli("rule", "create", "prod-soft", "--namespace", "prod", "--selector", "tier==db", "--label", "storageos.com/failure.mode=alwayson")
  assert.is(rule.code, 0, rule.stderr)
  const created = await up.cli("volume", "create", "prod/db", "--size", "16MiB", "--label", "tier=db", "--label", "storageos.com/replicas=1")
  assert.is(created.code, 0, created.stderr)
  const inspect = await up.cli("volume", "inspect", "prod/db", "--json")
  assert.is(inspect.code, 0, inspect.stderr)
  const v = JSON.parse(inspect.stdout)
  assert.is(v.labels["storageos.com/failure.mode"], "alwayson", "the rule added its label")
  assert.is(v.labels.tier, "db")
  assert.equal(v.rulesApplied, ["prod-soft"])
  assert.is(v.sizeBytes, 16 * 1024 * 1024)
  assert.type(v.epoch, "number")
  assert.type(v.master, "string")
  assert.is(v.replicas.length, 1)
  assert.ok(["provisioned", "syncing", "in-sync"].includes(v.replicas[0].state))
  assert.ok(["healthy", "degraded", "unavailable"].includes(v.health))
  const other = await up.cli("volume", "create", "dev/x", "--size", "16MiB", "--label", "tier=db")
  assert.is(other.code, 0, other.stderr)
  const otherView = JSON.parse((await up.cli("volume", "inspect", "dev/x", "--json")).stdout)
  assert.is(otherView.labels["storageos.com/failure.mode"], undefined, "the rule applies to its namespace only")
})

test("a bad label or size exits non-zero with the reason, and nothing is created", async () => {
  const badValue = await up.cli("volume", "create", "team/bad", "--size", "16MiB", "--label", "storageos.com/failure.mode=sometimes")
  assert.is.not(badValue.code, 0)
  assert.match(badValue.stderr, /^replivol: .*storageos\.com\/failure\.mode.*sometimes/)
  assert.is(badValue.stderr.trim().split("\n").length, 1, "one line")
  const badCount = await up.cli("volume", "create", "team/bad", "--size", "16MiB", "--label", "storageos.com/replicas=nine")
  assert.is.not(badCount.code, 0)
  assert.match(badCount.stderr, /storageos\.com\/replicas/)
  assert.is(badCount.code, 1, "refused by the cluster: an operation failure")
  const malformed = await up.cli("volume", "create", "team/bad", "--size", "16MiB", "--label", "novalue")
  assert.is(malformed.code, 2, "refused by the parser: a usage error")
  assert.match(malformed.stderr, /--label "novalue" is not valid: expected KEY=VALUE/)
  const badSize = await up.cli("volume", "create", "team/bad", "--size", "12XB")
  assert.is(badSize.code, 2)
  assert.match(badSize.stderr, /--size "12XB" is not valid: expected a whole number with an optional unit/)
  const list = JSON.parse((await up.cli("volume", "ls", "--json")).stdout) as Array<{ volume: string }>
  assert.not.ok(list.some((v) => v.volume === "team/bad"), "nothing was created")
  const human = await up.cli("volume", "ls")
  assert.match(human.stdout, /^VOLUME\s+SIZE\s+HEALTH/m)
  assert.not.match(human.stdout, "team/bad")
})

test("rule inspect shows one rule; an unknown one fails with exit 1", async () => {
  const shown = await up.cli("rule", "inspect", "prod-soft", "-n", "prod", "--json")
  assert.is(shown.code, 0, shown.stderr)
  const rule = JSON.parse(shown.stdout)
  assert.equal([rule.namespace, rule.name, rule.selector, rule.labels], ["prod", "prod-soft", "tier==db", { "storageos.com/failure.mode": "alwayson" }])
  const human = await up.cli("rule", "inspect", "prod-soft", "--namespace", "prod")
  assert.match(human.stdout, /^rule:\s+prod\/prod-soft$/m)
  const missing = await up.cli("rule", "inspect", "nope", "-n", "prod")
  assert.is(missing.code, 1)
  assert.match(missing.stderr, /^replivol: no rule nope in namespace prod/)
})

test("cluster health: the control store, every node and every volume's health", async () => {
  const health = await eventually("prod/db healthy in cluster health", 30_000, async () => {
    const result = await up.cli("cluster", "health", "--json")
    assert.is(result.code, 0, result.stderr)
    const h = JSON.parse(result.stdout)
    return h.volumes.find((v: { volume: string; health: string }) => v.volume === "prod/db")?.health === "healthy" ? h : undefined
  })
  assert.is(health.controlStore.reachable, true)
  assert.equal(health.nodes.map((n: { name: string; state: string }) => [n.name, n.state]), [["n1", "up"], ["n2", "up"], ["n3", "up"]])
  const db = health.volumes.find((v: { volume: string }) => v.volume === "prod/db")
  assert.equal([db.replicasInSync, db.replicasRequested], [1, 1])
  const human = await up.cli("cluster", "health")
  assert.is(human.code, 0, human.stderr)
  assert.match(human.stdout, /^control store:\s+reachable \(\d+ ms\)$/m)
  assert.match(human.stdout, /^NODE\s+ADDRESS\s+STATE\s+CONTROLLER$/m)
  assert.match(human.stdout, /^prod\/db\s+healthy\s+n\d\s+1\/1/m)
})

test("node kill: the master's node stops, the volume gets a new master at a higher epoch; revive brings it back", async () => {
  const healthy = await eventually("prod/db healthy", 30_000, async () => {
    const v = JSON.parse((await up.cli("volume", "inspect", "prod/db", "--json")).stdout)
    return v.health === "healthy" ? v : undefined
  })
  const killed = await up.cli("node", "kill", healthy.master)
  assert.is(killed.code, 0, killed.stderr)
  const nodes = JSON.parse((await up.cli("node", "ls", "--json")).stdout) as Array<{ name: string; state: string }>
  assert.is(nodes.find((n) => n.name === healthy.master)?.state === "up", false, "the killed node is not up")
  const moved = await eventually("a new master", 30_000, async () => {
    const v = JSON.parse((await up.cli("volume", "inspect", "prod/db", "--json")).stdout)
    return v.master !== healthy.master && v.master ? v : undefined
  })
  assert.ok(moved.epoch > healthy.epoch, "promotion raised the epoch")
  const revived = await up.cli("node", "revive", healthy.master)
  assert.is(revived.code, 0, revived.stderr)
  await eventually("the revived node is up", 15_000, async () => {
    const list = JSON.parse((await up.cli("node", "ls", "--json")).stdout) as Array<{ name: string; state: string }>
    return list.find((n) => n.name === healthy.master)?.state === "up" ? true : undefined
  })
})

test("volume rm and rule rm", async () => {
  assert.is((await up.cli("volume", "rm", "dev/x")).code, 0)
  const gone = await up.cli("volume", "inspect", "dev/x")
  assert.is.not(gone.code, 0)
  assert.match(gone.stderr, /does not exist/)
  assert.is((await up.cli("rule", "rm", "prod-soft", "--namespace", "prod")).code, 0)
  assert.is((await up.cli("rule", "ls", "--json")).stdout.trim(), "[]")
})

test("/metrics: Prometheus text without a token from loopback, with per-volume health", async () => {
  const text = await eventually("health gauge", 5_000, async () => {
    const body = await (await fetch(`http://${up.api}/metrics`)).text()
    return body.includes('replivol_volume_health{volume="prod/db"}') ? body : undefined
  })
  assert.match(text, /# TYPE replivol_volume_health gauge/)
  assert.match(text, /# HELP replivol_volume_health /)
  assert.equal(checkExposition(text), [])
})

test.run()
