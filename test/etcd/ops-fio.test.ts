/**
 * The cluster operations end to end on real processes: three `replivol node start` processes (TLS
 * between them, a real etcd as control store, one admin API each), a volume mounted through FUSE
 * on n1, fio randwrite with crc32c verify through the mounted file in rounds back to back, and
 * meanwhile, one after the other, through the command line as a user runs it (each command against
 * another node's admin API): `volume update` replicas 1 → 2 and 2 → 1, `volume resize` (grow),
 * `volume move --to` the node without a copy, `node cordon` / `uncordon`, `node drain` of the
 * master's node. A move's and a drain's status are read through another node's admin API than the
 * one that started them. At the end: every fio round passed its verify, no IO error reached fio,
 * `volume verify` finds no differing region, the volume is healthy with one in-sync replica, the
 * drained node's copy file is gone, the sha256 of both copies' backing files
 * (`<data>/copies/ns/name.img`) are identical and equal to what the mount reads, and a last
 * `fio --verify_only` finds every region still holding what its latest round wrote: the rounds
 * write disjoint 2 MiB regions in turn (rate-capped so that those during the operations fit), so
 * nothing acknowledged at any point during the operations was lost by the end.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { ensureLocalPki } from "../../lib/platform/certificates.ts"
import { launcher, runCli } from "../cli/support.ts"
import { fio, pollFor, sha256Of, sleep, type VolumeView } from "../fuse/support-cluster.ts"
import { underFioLoad } from "../fuse/support-fio-load.ts"
import { mountedSha } from "../fuse/support-durability.ts"
import { cleanupMount, fuseUnavailableReason, isMounted, sh } from "../fuse/support.ts"
import { startEtcd, type TestEtcd } from "../support/etcd.ts"
import { repoRoot } from "../support/processes.ts"

const skipReason = await fuseUnavailableReason()
if (skipReason !== undefined) console.log(`etcd cluster operations under fio skipped: ${skipReason}`)

const hostBase = "127.0.71."
const port = 29153
const nodes = ["n1", "n2", "n3"] as const
const apiOf = (node: string) => `127.0.0.1:${29153 + Number(node.slice(1))}`
const volume = "ops/vol"
const sizeMiB = 32
const grownMiB = 48
/** Each fio round writes every 4 KiB block of one region once; rounds take the regions of the first `sizeMiB` in turn. */
const regionMiB = 2
const regions = sizeMiB / regionMiB
/** A round's write rate cap: the rounds during the operations then fit in the regions (a fast machine wraps around: the latest round of each region counts). */
const rateIops = 300
const roundTimeoutMs = 120_000
/** Bound of all operations under load (each syncs at most one 24 MiB copy). */
const operationsMaxMs = 180_000
const secret = "etcd-ops-fio-secret-0123456789abcdef"

interface NodeProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly data: string
  readonly log: () => string
  readonly exited: Promise<number | null>
}

const state = { etcd: undefined as TestEtcd | undefined, root: "", mount: "", nodes: [] as NodeProcess[] }
const logs = () => state.nodes.map((n) => `--- ${n.name}\n${n.log().split("\n").slice(-25).join("\n")}`).join("\n")

const startNode = (name: string): NodeProcess => {
  const data = join(state.root, name)
  const tls = join(state.root, "tls")
  const args = [
    launcher, "node", "start", "--name", name, "--address", `${hostBase}${name.slice(1)}:${port}`, "--data", data, "--etcd", state.etcd!.endpoints,
    "--secret-file", join(state.root, "secret"), "--tls-cert", join(tls, `${name}.crt`), "--tls-key", join(tls, `${name}.key`), "--tls-ca", join(tls, "ca.crt"),
    "--api", apiOf(name), ...(name === "n1" ? ["--mount", state.mount] : []),
  ]
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] })
  let log = ""
  child.stdout!.on("data", (chunk: Buffer) => void (log = (log + String(chunk)).slice(-200_000)))
  child.stderr!.on("data", (chunk: Buffer) => void (log = (log + String(chunk)).slice(-200_000)))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { name, child, data, log: () => log, exited }
}

const stopNode = async (node: NodeProcess) => {
  if (node.child.exitCode === null && node.child.pid) process.kill(node.child.pid, "SIGTERM")
  const timer = setTimeout(() => node.child.pid && node.child.exitCode === null && process.kill(node.child.pid, "SIGKILL"), 20_000)
  await node.exited
  clearTimeout(timer)
}

process.on("exit", () => {
  for (const node of state.nodes) if (node.child.exitCode === null && node.child.pid) process.kill(node.child.pid, "SIGKILL")
})

/** `replivol ARGS` against `node`'s admin API, as a user runs it; its stdout, or a throw with the exit code, stderr and the nodes' logs. */
const cli = async (node: string, ...args: string[]): Promise<string> => {
  const result = await runCli([...args, "--api", apiOf(node), "--data", join(state.root, node)], {}, 180_000)
  if (result.code !== 0) throw new Error(`replivol ${args.join(" ")} (via ${node}) failed (${result.code}): ${result.stderr}\n${logs()}`)
  return result.stdout
}

/** One admin API call to `node` with its token (what the CLI sends, without a process start): the status and the parsed body. */
const admin = async (node: string, method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const token = (await readFile(join(state.root, node, "admin.token"), "utf8")).trim()
  const response = await fetch(`http://${apiOf(node)}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(30_000),
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

const inspect = async (): Promise<VolumeView> => {
  const { status, body } = await admin("n2", "GET", `/v1/volumes/${volume}`)
  if (status !== 200) throw new Error(`GET /v1/volumes/${volume}: ${status} ${JSON.stringify(body)}`)
  return body as VolumeView
}

const waitVolume = async (what: string, timeoutMs: number, check: (v: VolumeView) => boolean): Promise<VolumeView> => {
  let last: VolumeView | undefined
  return pollFor(timeoutMs, async () => {
    last = await inspect().catch(() => last)
    return last !== undefined && check(last) ? last : undefined
  }, () => `${volume} did not become ${what} within ${timeoutMs} ms; last: ${JSON.stringify(last)}\n${logs()}`)
}

/**
 * Polls `path` on `via` (another node than the one running the operation) until `stop()`, then
 * once more; the statuses it answered (a 404 before the operation started is skipped).
 */
const watchStatus = (via: string, path: string) => {
  const seen: any[] = []
  let stopped = false
  const poll = async () => {
    const answer = await admin(via, "GET", path).catch(() => undefined)
    if (answer?.status === 200) seen.push(answer.body)
    else if (answer !== undefined && answer.status !== 404) throw new Error(`GET ${path} on ${via}: ${answer.status} ${JSON.stringify(answer.body)}`)
  }
  const loop = (async () => {
    while (!stopped) {
      await poll()
      await sleep(100)
    }
    await poll()
  })()
  return { stop: async () => ((stopped = true), await loop, seen) }
}

/** Whether `states` goes through `order` forwards only (repeats and skipped states allowed). */
const inOrder = (states: ReadonlyArray<string>, order: ReadonlyArray<string>): boolean =>
  states.every((state, index) => order.includes(state) && (index === 0 || order.indexOf(state) >= order.indexOf(states[index - 1]!)))

/** Whether `node` is cordoned, as `GET /v1/nodes` on `via` (what `replivol node ls` shows) says. */
const cordonOf = async (node: string, via: string): Promise<boolean | undefined> =>
  ((await admin(via, "GET", "/v1/nodes")).body as Array<{ name: string; cordoned: boolean }>).find((n) => n.name === node)?.cordoned

const healthyWith = (replicas: number) => (v: VolumeView) => v.health === "healthy" && v.replicas.length === replicas && v.replicas.every((r) => r.state === "in-sync")

const test = suite("cluster operations on real node processes with etcd while fio verifies through the FUSE mount")
const it = skipReason === undefined ? test : test.skip

test.before(async () => {
  if (skipReason !== undefined) return
  state.etcd = await startEtcd()
  state.root = await mkdtemp(join(tmpdir(), "replivol-etcd-ops-"))
  state.mount = join(state.root, "mnt")
  await writeFile(join(state.root, "secret"), `${secret}\n`, { mode: 0o600 })
  await Effect.runPromise(ensureLocalPki(join(state.root, "tls"), nodes.map((name) => ({ name, host: `${hostBase}${name.slice(1)}` }))))
  state.nodes = nodes.map(startNode)
  await pollFor(60_000, async () => {
    const dead = state.nodes.find((n) => n.child.exitCode !== null)
    if (dead) throw new Error(`node ${dead.name} exited (${dead.child.exitCode}):\n${dead.log()}`)
    return state.nodes.every((n) => /^ready$/m.test(n.log())) && (await isMounted(state.mount)) ? true : undefined
  }, () => `the nodes were not ready (and n1 mounted) within 60 s:\n${logs()}`)
})

test.after(async () => {
  await Promise.all(state.nodes.map(stopNode))
  // OPS_FIO_LOG=FILE keeps the nodes' logs (events of every node) for a look after the run.
  if (process.env.OPS_FIO_LOG) await writeFile(process.env.OPS_FIO_LOG, state.nodes.map((n) => `--- ${n.name}\n${n.log()}`).join("\n"))
  if (state.mount !== "") await cleanupMount(state.mount)
  await state.etcd?.stop()
  if (state.root !== "") await rm(state.root, { recursive: true, force: true })
})

/** Round `index`'s job: its region, its seed (fio regenerates both for `--verify_only`). */
const roundJob = (index: number) => `--name=ops-${index} --offset=${(index % regions) * regionMiB}M --size=${regionMiB}M --randseed=${0x0b5 + index}`
const common = (file: string) => `--filename=${file} --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=16 --verify=crc32c --verify_fatal=1`
const roundArgs = (file: string, index: number) => `${common(file)} --rate_iops=${rateIops} --do_verify=1 --end_fsync=1 ${roundJob(index)}`

/** fio rounds back to back from now until a round that started after `operations` finished has finished; the rounds, each checked. */
const underLoad = async (file: string, operations: () => Promise<void>) =>
  (await underFioLoad({
    roundArgs: (index) => roundArgs(file, index), roundBytes: regionMiB * 1024 * 1024, roundTimeoutMs,
    maxMs: operationsMaxMs + 2 * roundTimeoutMs, leadMs: 1000, context: logs,
  }, operations)).rounds

it("update 1→2→1, resize, move, cordon/uncordon and drain through the CLI while fio verifies: nothing lost, copies identical", async () => {
  const startedMs = performance.now()
  const step = (what: string) => console.log(`  ops +${((performance.now() - startedMs) / 1000).toFixed(1)} s: ${what}`)
  const labels = { "storageos.com/replicas": "1", "storageos.com/failure.mode": "soft", "storageos.com/hint.master": "n1" }
  const create = await admin("n1", "POST", "/v1/volumes", { volume, sizeBytes: sizeMiB * 1024 * 1024, labels })
  assert.is(create.status, 201, JSON.stringify(create.body))
  const file = `${state.mount}/${volume}`
  await pollFor(30_000, async () => ((await sh(`test -f '${file}'`)).code === 0 ? true : undefined), () => `${file} did not appear under the mount\n${logs()}`)
  const created = await waitVolume("healthy", 60_000, healthyWith(1))
  assert.is(created.master, "n1", "the hinted master")
  const replica = created.replicas[0]!.node
  const free = nodes.find((n) => n !== "n1" && n !== replica)!
  step(`created: master n1, replica ${replica}; fio starts`)

  const rounds = await underLoad(file, async () => {
    await cli("n2", "volume", "update", volume, "--label", "storageos.com/replicas=2")
    await waitVolume("healthy with 2 in-sync replicas", 60_000, healthyWith(2))
    step("replicas 1 → 2: both in sync")
    await cli("n3", "volume", "update", volume, "--label", "storageos.com/replicas=1")
    const down = await waitVolume("healthy with 1 replica", 30_000, healthyWith(1))
    step(`replicas 2 → 1: kept ${down.replicas[0]!.node}`)

    await cli("n1", "volume", "resize", volume, "--size", `${grownMiB}MiB`)
    const grown = await waitVolume(`${grownMiB} MiB`, 30_000, (v) => v.sizeBytes === grownMiB * 1024 * 1024)
    await pollFor(10_000, async () => ((await sh(`stat -c %s '${file}'`)).stdout.trim() === String(grownMiB * 1024 * 1024) ? true : undefined), () => `the mounted file did not grow to ${grownMiB} MiB`)
    step(`resized to ${grownMiB} MiB (the mounted file follows)`)

    const to = nodes.find((n) => n !== grown.master && !grown.replicas.some((r) => r.node === n))!
    const moveSeen = watchStatus("n3", `/v1/volumes/${volume}/move`)
    step(await cli("n2", "volume", "move", volume, "--to", to).then((out) => out.trim().split("\n").pop()!))
    const moveStates = await moveSeen.stop()
    assert.ok(moveStates.every((m) => m.runner === "n2" && m.to === to), `n3 reports the move run by n2 to ${to}: ${JSON.stringify(moveStates)}`)
    assert.ok(inOrder(moveStates.map((m) => m.state), ["copying", "handing-over", "done"]), `the states n3 reports follow the move: ${moveStates.map((m) => m.state).join(" ")}`)
    assert.is(moveStates[moveStates.length - 1]?.state, "done", "n3 reports the move done")
    step(`n3 reported the move as it ran: ${[...new Set(moveStates.map((m) => m.state))].join(" → ")}`)
    const afterMove = await waitVolume(`master ${to}`, 30_000, (v) => v.master === to && healthyWith(1)(v))
    assert.ok(afterMove.epoch > grown.epoch, "the epoch rose with the move")

    const cordoned = afterMove.replicas[0]!.node
    await cli("n3", "node", "cordon", cordoned)
    assert.is(await cordonOf(cordoned, "n1"), true, `${cordoned} is listed cordoned`)
    await cli("n2", "node", "uncordon", cordoned)
    assert.is(await cordonOf(cordoned, "n3"), false, `${cordoned} is listed uncordoned`)
    step(`cordoned and uncordoned ${cordoned}`)

    const drainVia = nodes.find((n) => n !== to)!
    const other = nodes.find((n) => n !== to && n !== drainVia)!
    const drainSeen = watchStatus(other, `/v1/nodes/${to}/drain`)
    step(await cli(drainVia, "node", "drain", to).then((out) => out.trim().split("\n").pop()!))
    const drainStates = await drainSeen.stop()
    assert.ok(drainStates.every((d) => d.runner === drainVia && d.node === to), `${other} reports the drain of ${to} run by ${drainVia}: ${JSON.stringify(drainStates)}`)
    assert.ok(inOrder(drainStates.map((d) => d.state), ["draining", "done"]), `the states ${other} reports follow the drain: ${drainStates.map((d) => d.state).join(" ")}`)
    assert.equal([drainStates[drainStates.length - 1]?.state, drainStates[drainStates.length - 1]?.volumesDone], ["done", 1], `${other} reports the drain done`)
  })
  step(`${rounds.length} fio rounds of ${regionMiB} MiB, each verified; write IOPS ${rounds.map((r) => Math.round(r.run.jobs[0]?.writeIops ?? 0)).join(" ")}`)

  const drainedNode = ((await admin("n1", "GET", "/v1/nodes")).body as Array<{ name: string; cordoned: boolean }>).find((n) => n.cordoned)?.name
  assert.ok(drainedNode !== undefined, "the drained node stays cordoned")
  const view = await waitVolume("healthy with 1 in-sync replica", 30_000, healthyWith(1))
  assert.ok(view.master !== drainedNode && view.replicas.every((r) => r.node !== drainedNode), `the drained node ${drainedNode} holds no copy: ${JSON.stringify(view)}`)
  const dropped = join(state.root, drainedNode, "copies", `${volume}.img`)
  await pollFor(10_000, async () => ((await sh(`test -e '${dropped}'`)).code !== 0 ? true : undefined), () => `the drained node's copy ${dropped} is still on its disk`)
  assert.is(view.sizeBytes, grownMiB * 1024 * 1024)
  const verified = await cli(view.master, "volume", "verify", volume)
  assert.match(verified, /differing regions: 0/)
  step(`volume verify: ${verified.trim().split("\n").slice(-2).join(" | ")}`)

  const holders = [view.master, ...view.replicas.map((r) => r.node)]
  const copyFiles = holders.map((n) => join(state.root, n, "copies", `${volume}.img`))
  let sums: string[] = []
  await pollFor(10_000, async () => {
    sums = await sha256Of(copyFiles)
    return sums.every((s) => s.length === 64 && s === sums[0]) ? true : undefined
  }, () => "").catch(() => undefined)
  assert.ok(sums.every((s) => s.length === 64 && s === sums[0]), `the in-sync copies differ: ${holders.map((n, i) => `${n} ${sums[i]}`).join(", ")}`)
  assert.is(await mountedSha(file, 0, grownMiB), sums[0], "the mount reads what the copies hold")
  step(`copies on ${holders.join(", ")} sha256-identical (${sums[0]!.slice(0, 16)}…)`)

  // Every region still holds what its latest round wrote (each acknowledged during the operations): fio regenerates and checks it.
  const latest = [...new Map(rounds.map((r) => [r.index % regions, r.index])).values()].sort((a, b) => a - b)
  const again = await fio(`${common(file)} --verify_only ${latest.map(roundJob).join(" ")}`, roundTimeoutMs)
  const regionBytes = regionMiB * 1024 * 1024
  assert.ok(again.code === 0 && again.jobs.length === latest.length && again.jobs.every((j) => j.error === 0 && j.readBytes === regionBytes),
    `fio --verify_only of rounds ${latest.join(" ")} failed (${again.code}): ${again.stderr.slice(-2000)}${again.stdout.slice(-1000)}`)
  step(`fio --verify_only at the end: rounds ${latest.join(" ")} (${latest.length} regions of ${regionMiB} MiB) still hold what was acknowledged`)
})

test.run()
