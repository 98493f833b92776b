/**
 * Human output of the CLI: aligned tables, a sync progress bar and the volume detail view. Pure
 * (text in, text out) so the layout is tested without a cluster.
 */
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
    `size:     ${formatBytes(v.sizeBytes)} (${v.sizeBytes} bytes)`,
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
