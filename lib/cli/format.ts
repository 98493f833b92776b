/**
 * Human output of the CLI: aligned tables, a sync progress bar and the volume detail view. Pure
 * (text in, text out) so the layout is tested without a cluster.
 */
import type { DrainStatus, MoveStatus } from "../cluster/types.ts"
import { formatBytes } from "./size.ts"

/** Columns padded to their widest cell; the header is upper-cased. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const all = [header.map((h) => h.toUpperCase()), ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)))
  return all.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n")
}

export const barWidthChars = 30

/** `[#########.....................]  30% 300 MiB/1 GiB` */
export const progressBar = (done: number, total: number, widthChars = barWidthChars): string => {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0
  const filled = Math.round(fraction * widthChars)
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4)
  return `[${"#".repeat(filled)}${".".repeat(widthChars - filled)}] ${percent} ${formatBytes(done)}/${formatBytes(total)}`
}

/** What the CLI shows of a volume (the admin API's JSON shape, see lib/admin/routes.ts). */
export interface VolumeView {
  readonly volume: string
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  readonly health: string
  readonly usable: boolean
  readonly reason: string
  readonly epoch: number
  readonly master: string | undefined | null
  readonly replicas: ReadonlyArray<{ readonly node: string; readonly state: string; readonly reason?: string; readonly bytesDone?: number; readonly bytesTotal?: number }>
  readonly rulesApplied: ReadonlyArray<string>
  /** A resize under way (recorded, not yet on every in-sync copy): the size it grows to. */
  readonly resizingToBytes?: number
}

export const volumeTable = (volumes: ReadonlyArray<VolumeView>): string =>
  volumes.length === 0
    ? "no volumes"
    : table(
        ["volume", "size", "health", "master", "replicas", "epoch"],
        volumes.map((v) => [v.volume, formatBytes(v.sizeBytes), v.health, v.master ?? "-", v.replicas.map((r) => `${r.node}:${r.state}`).join(",") || "-", String(v.epoch)]),
      )

export const volumeDetail = (v: VolumeView): string => {
  const lines = [
    `volume:   ${v.volume}`,
    `size:     ${formatBytes(v.sizeBytes)} (${v.sizeBytes} bytes)${v.resizingToBytes === undefined ? "" : `, growing to ${formatBytes(v.resizingToBytes)}`}`,
    `health:   ${v.health}${v.usable ? "" : " (IO fails)"}${v.health === "healthy" ? "" : ` — ${v.reason}`}`,
    `epoch:    ${v.epoch}`,
    `master:   ${v.master ?? "(none)"}`,
    `labels:   ${Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(" ") || "(none)"}`,
    `rules:    ${v.rulesApplied.join(", ") || "(none applied)"}`,
    "replicas:",
  ]
  if (v.replicas.length === 0) lines.push("  (none)")
  for (const r of v.replicas) {
    const progress = r.state === "syncing" && r.bytesTotal !== undefined ? `  ${progressBar(r.bytesDone ?? 0, r.bytesTotal)}` : ""
    lines.push(`  ${r.node.padEnd(10)} ${r.state.padEnd(12)}${progress}${r.reason && r.state === "failed" ? `  (${r.reason})` : ""}`)
  }
  return lines.join("\n")
}

/** A rule as the admin API returns it. */
export interface RuleView {
  readonly name: string
  readonly namespace: string
  readonly selector: string
  readonly action: string
  readonly labels: Readonly<Record<string, string>>
  readonly weight: number
  readonly active: boolean
}

export const ruleDetail = (r: RuleView): string =>
  [
    `rule:      ${r.namespace}/${r.name}`,
    `selector:  ${r.selector || "(every volume)"}`,
    `action:    ${r.action}`,
    `labels:    ${Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(" ") || "(none)"}`,
    `weight:    ${r.weight}`,
    `active:    ${r.active}`,
  ].join("\n")

/** `GET /v1/health` (lib/admin/routes.ts clusterHealth). */
export interface ClusterHealthView {
  readonly healthy: boolean
  readonly controlStore: { readonly reachable: boolean; readonly latencyMs: number; readonly message: string }
  readonly nodes: ReadonlyArray<{ readonly name: string; readonly address: string; readonly state: string; readonly controller: boolean }>
  readonly volumes: ReadonlyArray<{ readonly volume: string; readonly health: string; readonly usable: boolean; readonly reason: string; readonly master: string | null; readonly replicasInSync: number; readonly replicasRequested: number }>
}

/** Control store, nodes and volumes, as `storageos cluster health` shows a cluster at a glance. */
export const clusterHealthText = (h: ClusterHealthView): string => {
  const store = h.controlStore.reachable ? `reachable (${h.controlStore.latencyMs} ms)` : `UNREACHABLE: ${h.controlStore.message}`
  const nodes = table(["node", "address", "state", "controller"], h.nodes.map((n) => [n.name, n.address, n.state, n.controller ? "yes" : ""]))
  const volumes = h.volumes.length === 0 ? "no volumes" : table(["volume", "health", "master", "in sync", "reason"],
    h.volumes.map((v) => [v.volume, v.health, v.master ?? "-", `${v.replicasInSync}/${v.replicasRequested}`, v.health === "healthy" ? "" : v.reason]))
  return [`cluster:        ${h.healthy ? "healthy" : "NOT healthy"}`, `control store:  ${store}`, "", nodes, "", volumes].join("\n")
}

/** `POST`/`GET /v1/volumes/NS/NAME/verify` (lib/replication/verify.ts VerifyReport). */
export interface VerifyView {
  readonly volume: string
  readonly epoch: number
  readonly master: string
  readonly repair: boolean
  readonly regionBytes: number
  readonly state: "running" | "done" | "failed"
  readonly startedAtMs: number
  readonly finishedAtMs?: number
  readonly bytesDone: number
  readonly bytesTotal: number
  readonly copies: ReadonlyArray<{ readonly node: string; readonly state: string; readonly reason?: string }>
  readonly differences: ReadonlyArray<{ readonly node: string; readonly offset: number; readonly length: number; readonly repaired: boolean }>
  readonly differencesFound: number
  readonly differingRegions: number
  readonly error?: string
}

/** One line while a verify runs: `verifying default/db [####......]  40% 400 MiB/1 GiB, 0 differing` */
export const verifyProgressLine = (v: VerifyView): string =>
  `verifying ${v.volume} ${progressBar(v.bytesDone, v.bytesTotal)}, ${v.differencesFound} differing`

/** The result: every compared copy, every difference (and whether it was repaired). */
export const verifyText = (v: VerifyView): string => {
  const seconds = v.finishedAtMs === undefined ? "" : ` in ${((v.finishedAtMs - v.startedAtMs) / 1000).toFixed(1)} s`
  const lines = [
    `verify of ${v.volume}: ${v.state}${seconds}${v.error ? ` — ${v.error}` : ""}`,
    `master:   ${v.master} (epoch ${v.epoch}), ${formatBytes(v.bytesDone)} of ${formatBytes(v.bytesTotal)} compared in ${formatBytes(v.regionBytes)} regions`,
    "copies:",
  ]
  if (v.copies.length === 0) lines.push("  (no in-sync replica to compare)")
  for (const c of v.copies) lines.push(`  ${c.node.padEnd(10)} ${c.state}${c.reason ? `  (${c.reason})` : ""}`)
  const repaired = v.differences.filter((d) => d.repaired).length
  lines.push(`differing regions: ${v.differingRegions}${v.repair ? ` (found ${v.differencesFound}, repaired ${repaired})` : ""}`)
  if (v.differences.length > 0) {
    const rows = v.differences.map((d) => [d.node, String(d.offset), String(d.length), ...(v.repair ? [d.repaired ? "yes" : "no"] : [])])
    lines.push(table(["replica", "offset", "length", ...(v.repair ? ["repaired"] : [])], rows).split("\n").map((l) => `  ${l}`).join("\n"))
    if (v.differencesFound > v.differences.length) lines.push(`  … and ${v.differencesFound - v.differences.length} more`)
  }
  return lines.join("\n")
}

/**
 * `POST`/`GET /v1/volumes/NS/NAME/move`: lib/cluster/types.ts MoveStatus as JSON (the node running
 * it is `runner`: any node's API reports it, lib/cluster/opStatus.ts). A move with no master to
 * move from arrives without `from` (JSON has no undefined).
 */
export type MoveView = Omit<MoveStatus, "from"> & { readonly from?: string }

/** One line of a move's progress. */
export const moveProgressLine = (m: MoveView): string =>
  m.state === "copying" ? `moving ${m.volume} to ${m.to}: syncing its copy there ${progressBar(m.bytesDone, m.bytesTotal)}`
  : m.state === "handing-over" ? `moving ${m.volume} to ${m.to}: handing over from ${m.from ?? "(none)"}`
  : m.state === "done" ? `moved ${m.volume}: master ${m.from ?? "(none)"} → ${m.to} (epoch ${m.epoch ?? "?"}${m.finishedAtMs === undefined ? "" : `, ${((m.finishedAtMs - m.startedAtMs) / 1000).toFixed(1)} s`})`
  : `move of ${m.volume} to ${m.to} failed: ${m.error ?? "unknown reason"}`

/** `POST`/`GET /v1/nodes/NAME/drain`: lib/cluster/types.ts DrainStatus as JSON (its optional members are absent, never null). */
export type DrainView = DrainStatus

/** One line of a drain's progress. */
export const drainProgressLine = (d: DrainView): string => {
  const count = `${d.volumesDone}/${d.volumesTotal} volumes`
  if (d.state === "done") return `drained ${d.node}: ${count} moved off it; it holds nothing and stays cordoned${d.finishedAtMs === undefined ? "" : ` (${((d.finishedAtMs - d.startedAtMs) / 1000).toFixed(1)} s)`}`
  if (d.state === "failed") return `drain of ${d.node} failed after ${count}: ${d.error ?? "unknown reason"} (it stays cordoned)`
  const c = d.current
  if (!c) return `draining ${d.node}: ${count}`
  return `draining ${d.node}: ${count}; ${c.action === "move-master" ? "moving the master of" : "replacing the replica of"} ${c.volume} → ${c.to} ${progressBar(c.bytesDone, c.bytesTotal)}`
}
