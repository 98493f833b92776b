/**
 * Node labels, cordons and failure domains end to end against a 4-node `cluster up` started with
 * `--node-label`: copies spread across zones, a cordoned node gets no new copy, a placement the
 * uncordoned nodes cannot satisfy is refused naming the cordon, labels change at run time, and
 * bad requests are refused with a reason (exit 2 for usage, 1 for a refused operation).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { startUp, type UpCluster } from "./support.ts"

const test = suite("replivol node label / cordon / failure domains")
let up: UpCluster
const zoneKey = "topology.kubernetes.io/zone"
const zones: Record<string, string> = { n1: "a", n2: "a", n3: "b", n4: "c" }

test.before(async () => {
  up = await startUp({
    hostBase: "127.0.44.", port: 26703, apiPort: 26705,
    extra: ["--no-mount", "--nodes", "4", ...Object.entries(zones).flatMap(([node, zone]) => ["--node-label", `${node}:${zoneKey}=${zone}`])],
  })
})

test.after(async () => {
  assert.is(await up?.stop(), 0, "cluster up exits 0 on SIGTERM")
})

const json = async (...args: string[]) => {
  const result = await up.cli(...args, "--json")
  assert.is(result.code, 0, `${args.join(" ")}: ${result.stderr}`)
  return JSON.parse(result.stdout)
}
const copiesOf = (view: { master: string; replicas: Array<{ node: string }> }) => [view.master, ...view.replicas.map((r) => r.node)]

test("node ls shows the labels given at start; a replicas=2 volume gets one copy per zone", async () => {
  const nodes = await json("node", "ls")
  for (const [node, zone] of Object.entries(zones)) assert.is(nodes.find((n: { name: string }) => n.name === node)?.labels[zoneKey], zone, `${node}'s zone`)
  await json("volume", "create", "ops/spread", "--size", "8MiB", "--label", "storageos.com/replicas=2")
  const copies = copiesOf(await json("volume", "inspect", "ops/spread"))
  assert.is(new Set(copies.map((node) => zones[node])).size, 3, `copies ${copies} are in three zones`)
})

test("a cordoned node gets no new copy; too few uncordoned nodes is refused naming the cordon; uncordon restores it", async () => {
  const cordoned = await up.cli("node", "cordon", "n4")
  assert.is(cordoned.code, 0, cordoned.stderr)
  assert.match(cordoned.stdout, /cordoned n4/)
  assert.is((await json("node", "ls")).find((n: { name: string }) => n.name === "n4").cordoned, true)
  for (let i = 0; i < 3; i++) {
    await json("volume", "create", `ops/c${i}`, "--size", "8MiB", "--label", "storageos.com/replicas=2")
    const copies = copiesOf(await json("volume", "inspect", `ops/c${i}`))
    assert.not.ok(copies.includes("n4"), `ops/c${i} has a copy on the cordoned n4: ${copies}`)
  }
  const refused = await up.cli("volume", "create", "ops/too-many", "--size", "8MiB", "--label", "storageos.com/replicas=3")
  assert.is(refused.code, 1, refused.stdout)
  assert.match(refused.stderr, /1 more is cordoned/)
  assert.is((await up.cli("volume", "inspect", "ops/too-many")).code, 1, "nothing was created")
  assert.is((await up.cli("node", "uncordon", "n4")).code, 0)
  await json("volume", "create", "ops/all4", "--size", "8MiB", "--label", "storageos.com/replicas=3")
  assert.is(new Set(copiesOf(await json("volume", "inspect", "ops/all4"))).size, 4)
})

test("labels change at run time; bad requests are refused with a reason and change nothing", async () => {
  const set = await json("node", "label", "n1", "--label", "rack=r7", "--label", `${zoneKey}=d`)
  assert.equal(set.labels, { [zoneKey]: "d", rack: "r7" })
  const removed = await json("node", "label", "n1", "--remove", "rack")
  assert.equal(removed.labels, { [zoneKey]: "d" })
  const nothing = await up.cli("node", "label", "n1")
  assert.is(nothing.code, 2, "no label given is a usage error")
  assert.match(nothing.stderr, /needs --label KEY=VALUE or --remove KEY/)
  const badKey = await up.cli("node", "label", "n1", "--label", "bad key!=x")
  assert.is(badKey.code, 1)
  assert.match(badKey.stderr, /malformed/)
  const unknown = await up.cli("node", "cordon", "nosuch")
  assert.is(unknown.code, 1)
  assert.match(unknown.stderr, /node nosuch is not known/)
  assert.equal((await json("node", "ls")).find((n: { name: string }) => n.name === "n1").labels, { [zoneKey]: "d" }, "the refused requests changed nothing")
})

test.run()
