/**
 * The `replivol` command table: every command, its arguments and flags, their one-letter
 * aliases and value checks. One source for parsing, `--help`, shell completion (completion.ts)
 * and the command reference's doc-drift test. Pure and light: it imports only the parser and the
 * size parser, so `replivol --help` loads nothing else.
 *
 * Aliases: -h --help, -V --version, -a --api, -d --data, -j --json, -s --size, -l --label,
 * -n --namespace, -w --watch, -t --timeout, -q --quiet.
 */
import { numberIn, oneOf, wholeNumberIn, type CommandSpec, type FlagSpec, type ProgramSpec } from "./args.ts"
import { checkSize } from "./size.ts"

export const program = "replivol"
export const about = "replivol — synchronously replicated block volumes (StorageOS v1 model): a local cluster, volumes, rules, nodes."

/** `host:port` with a port 0..65535 (0: any free port, when serving; the host may be left out: `:5705`). */
const hostPort = (value: string): string | undefined => {
  const match = /^(?:\[?[^\]\s]*\]?:)?(\d{1,5})$/.exec(value.trim())
  const port = Number(match?.[1])
  return match && value.includes(":") && port <= 65535 ? undefined : "HOST:PORT with a port 0..65535, e.g. 127.0.0.1:5705"
}
const hostMaybePort = (value: string): string | undefined => {
  const match = /^[^:\s]+(?::(\d{1,5}))?$/.exec(value)
  const port = match?.[1] === undefined ? 5703 : Number(match[1])
  return match && port >= 1 && port <= 65535 ? undefined : "HOST or HOST:PORT with a port 1..65535, e.g. 10.0.0.1:5703"
}
const keyValue = (value: string): string | undefined => (value.indexOf("=") > 0 ? undefined : "KEY=VALUE, e.g. storageos.com/replicas=2")
const nodeKeyValue = (value: string): string | undefined => (/^[a-z0-9-]+:[^=]+=/.test(value) ? undefined : "NODE:KEY=VALUE, e.g. n1:topology.kubernetes.io/zone=a")

const help: FlagSpec = { name: "help", short: "h", kind: "boolean", help: "show help (for the program, a group or a command)" }
const version: FlagSpec = { name: "version", short: "V", kind: "boolean", help: "print the version and exit" }

const api: FlagSpec = { name: "api", short: "a", kind: "string", placeholder: "HOST:PORT", check: hostPort, help: "admin API address (default $REPLIVOL_API or 127.0.0.1:5705)" }
const data: FlagSpec = { name: "data", short: "d", kind: "string", placeholder: "DIR", help: "data directory holding admin.token (default $REPLIVOL_DATA or ./data)" }
const token: FlagSpec = { name: "token", kind: "string", placeholder: "TOKEN", help: "admin token (default $REPLIVOL_TOKEN or <data>/admin.token)" }
const json: FlagSpec = { name: "json", short: "j", kind: "boolean", help: "print JSON for scripts" }
export const clientFlags: ReadonlyArray<FlagSpec> = [api, data, token, json]
const label: FlagSpec = { name: "label", short: "l", kind: "repeat", placeholder: "KEY=VALUE", check: keyValue, help: "a label, e.g. storageos.com/replicas=2" }
const quiet: FlagSpec = { name: "quiet", short: "q", kind: "boolean", help: "do not print cluster events" }
const namespace = (what: string, required: boolean): FlagSpec => ({ name: "namespace", short: "n", kind: "string", placeholder: "NS", help: what, ...(required ? { required } : {}) })
const volumeArg = { name: "volume", help: "NAMESPACE/NAME" }

const clusterCommands: ReadonlyArray<CommandSpec> = [
  {
    path: ["cluster", "up"], summary: "run a local cluster in this process: nodes, admin API, FUSE mount; Ctrl-C stops it", args: [],
    flags: [
      { name: "nodes", kind: "string", default: "3", placeholder: "N", check: wholeNumberIn(1, 16), help: "number of nodes n1..nN" },
      { ...data, default: "./data", help: "node copies (DIR/nN), control store and admin token" },
      { name: "mount", kind: "string", default: "./mnt", placeholder: "DIR", help: "FUSE mount: every volume a file DIR/<namespace>/<name>" },
      { name: "no-mount", kind: "boolean", help: "do not mount" },
      { ...api, default: "127.0.0.1:5705", help: "admin API address to serve" },
      { name: "host-base", kind: "string", default: "127.0.0.", placeholder: "PREFIX", help: "node i listens on PREFIX<i>" },
      { name: "port", kind: "string", default: "5703", placeholder: "PORT", check: wholeNumberIn(1, 65535), help: "replication port of every node" },
      { name: "lease-ttl-ms", kind: "string", default: "3000", placeholder: "MS", check: wholeNumberIn(100, 60_000, " (milliseconds)"), help: "node lease TTL: a killed node's volumes fail over after about this long" },
      { name: "grace-ms", kind: "string", default: "30000", placeholder: "MS", check: wholeNumberIn(1_000, 3_600_000, " (milliseconds)"), help: "grace period: a replica whose node is down this long is replaced by a new copy elsewhere" },
      { name: "demo", kind: "boolean", help: "create default/demo (replicas=2, 1 GiB) if missing and print what to try" },
      { name: "node-label", kind: "repeat", placeholder: "NODE:KEY=VALUE", check: nodeKeyValue, help: "a label a node sets on itself at start, e.g. n1:topology.kubernetes.io/zone=a (failure domains)" },
      { name: "insecure-plaintext", kind: "boolean", help: "plain TCP between nodes instead of TLS (no throwaway CA in DIR/tls): volume data crosses the network unencrypted" },
      quiet,
    ],
  },
  { path: ["cluster", "health"], summary: "the cluster's health: nodes, control store, every volume", args: [], flags: clientFlags },
]

const nodeCommands: ReadonlyArray<CommandSpec> = [
  {
    path: ["node", "start"], summary: "run one node of a multi-machine cluster (etcd as control store)", args: [],
    flags: [
      { name: "name", kind: "string", required: true, placeholder: "NAME", help: "node name (a DNS label), unique in the cluster" },
      { name: "address", kind: "string", required: true, placeholder: "HOST[:PORT]", check: hostMaybePort, help: "replication address (port 5703 by default)" },
      { ...data, required: true, help: "where this node keeps its copies and admin token" },
      { name: "etcd", kind: "string", required: true, placeholder: "URL[,URL]", help: "etcd endpoints" },
      { name: "secret-file", kind: "string", required: true, placeholder: "FILE", help: "file holding the cluster secret (same on every node, ≥ 16 bytes)" },
      { name: "encryption-key-file", kind: "string", placeholder: "FILE", help: "file holding the key that unwraps encrypted volumes' keys (64 hex digits, same on every node); without it the node serves no encrypted volume" },
      { name: "mount", kind: "string", placeholder: "DIR", help: "also mount every volume here (FUSE)" },
      { ...api, help: "also serve the admin API here" },
      { ...label, help: "a label this node sets on itself at start, e.g. topology.kubernetes.io/zone=a (failure domains)" },
      { name: "tls-cert", kind: "string", placeholder: "FILE", help: "this node's TLS certificate (PEM, from the cluster CA; names this node's address)" },
      { name: "tls-key", kind: "string", placeholder: "FILE", help: "the private key of --tls-cert (PEM)" },
      { name: "tls-ca", kind: "string", placeholder: "FILE", help: "the cluster CA certificate (PEM): peers must present a certificate it signed" },
      { name: "insecure-plaintext", kind: "boolean", help: "plain TCP instead of TLS (no --tls-* files): volume data crosses the network unencrypted" },
      quiet,
    ],
  },
  { path: ["node", "ls"], summary: "list the cluster's nodes with their labels and cordons", args: [], flags: clientFlags },
  {
    path: ["node", "label"], summary: "set or remove labels on a node (topology.kubernetes.io/zone: its failure domain)", args: [{ name: "name", help: "node name" }],
    flags: [{ ...label, help: "a label to set, e.g. topology.kubernetes.io/zone=a" }, { name: "remove", kind: "repeat", placeholder: "KEY", help: "a label key to remove" }, ...clientFlags],
  },
  { path: ["node", "cordon"], summary: "no new copies on the node and no promotion to it (what it holds stays)", args: [{ name: "name", help: "node name" }], flags: clientFlags },
  { path: ["node", "uncordon"], summary: "let the node take new copies and promotions again", args: [{ name: "name", help: "node name" }], flags: clientFlags },
  {
    path: ["node", "drain"], summary: "cordon the node and move every master and replica off it (new copies in sync first); returns when it holds nothing", args: [{ name: "name", help: "node name" }],
    flags: [{ name: "timeout", short: "t", kind: "string", default: "86400", placeholder: "SECONDS", check: numberIn(1, 86_400, " (seconds)"), help: "stop waiting after this long (the drain goes on)" }, ...clientFlags],
  },
  { path: ["node", "kill"], summary: "crash drill (local cluster): stop a node abruptly; its lease must expire", args: [{ name: "name", help: "node name, e.g. n1" }], flags: clientFlags },
  { path: ["node", "revive"], summary: "start a killed node again with its data (local cluster)", args: [{ name: "name", help: "node name" }], flags: clientFlags },
]

const volumeCommands: ReadonlyArray<CommandSpec> = [
  {
    path: ["volume", "create"], summary: "create a volume (labels validated, namespace rules applied)", args: [volumeArg],
    flags: [{ name: "size", short: "s", kind: "string", required: true, placeholder: "SIZE", check: checkSize, help: "size with KiB/MiB/GiB/TiB, e.g. 1GiB" }, label, ...clientFlags],
  },
  { path: ["volume", "ls"], summary: "list volumes with health, master and replicas", args: [], flags: clientFlags },
  {
    path: ["volume", "inspect"], summary: "show a volume: health, epoch, master, replicas, sync progress", args: [volumeArg],
    flags: [
      { name: "watch", short: "w", kind: "boolean", help: "redraw until healthy, with sync progress bars" },
      { name: "timeout", short: "t", kind: "string", default: "600", placeholder: "SECONDS", check: numberIn(1, 86_400, " (seconds)"), help: "give up watching after this long" },
      ...clientFlags,
    ],
  },
  {
    path: ["volume", "verify"], summary: "compare every in-sync replica with the master by region checksums, online; --repair fixes what differs", args: [volumeArg],
    flags: [
      { name: "repair", kind: "boolean", help: "send differing regions again from the master and compare them once more" },
      { name: "timeout", short: "t", kind: "string", default: "86400", placeholder: "SECONDS", check: numberIn(1, 86_400, " (seconds)"), help: "stop waiting after this long (the verify goes on)" },
      ...clientFlags,
    ],
  },
  {
    path: ["volume", "update"], summary: "change a live volume's labels: replicas, failure mode and tolerance, compression, hint (IO goes on)", args: [volumeArg],
    flags: [{ ...label, help: "a label to set, e.g. storageos.com/replicas=2" }, { name: "label-rm", kind: "repeat", placeholder: "KEY", help: "a label key to remove" }, ...clientFlags],
  },
  {
    path: ["volume", "resize"], summary: "grow a live volume on every copy (IO goes on; it never shrinks)", args: [volumeArg],
    flags: [
      { name: "size", short: "s", kind: "string", required: true, placeholder: "SIZE", check: checkSize, help: "the new size with KiB/MiB/GiB/TiB, e.g. 2GiB (at least the current size)" },
      { name: "timeout", short: "t", kind: "string", default: "120", placeholder: "SECONDS", check: numberIn(1, 86_400, " (seconds)"), help: "stop waiting after this long (the resize completes later)" },
      ...clientFlags,
    ],
  },
  {
    path: ["volume", "move"], summary: "move a volume's master to another node (planned hand-over; a copy is synced there first if it has none)", args: [volumeArg],
    flags: [
      { name: "to", kind: "string", required: true, placeholder: "NODE", help: "the node to serve as master" },
      { name: "timeout", short: "t", kind: "string", default: "86400", placeholder: "SECONDS", check: numberIn(1, 86_400, " (seconds)"), help: "stop waiting after this long (the move goes on)" },
      ...clientFlags,
    ],
  },
  { path: ["volume", "rm"], summary: "delete a volume", args: [volumeArg], flags: clientFlags },
  {
    path: ["volume", "accept-loss"], summary: "let a volume that waits for copies that are away serve what the copies here hold (what only those copies hold is lost)", args: [volumeArg],
    flags: [{ name: "yes", kind: "boolean", help: "confirm: writes only the copies away hold are lost for good" }, ...clientFlags],
  },
]

const ruleCommands: ReadonlyArray<CommandSpec> = [
  {
    path: ["rule", "create"], summary: "create or replace a namespace rule applied when volumes are created", args: [{ name: "name", help: "rule name" }],
    flags: [
      namespace("namespace the rule applies to", true),
      { name: "selector", kind: "string", default: "", placeholder: "EXPR", help: "label selector, e.g. \"env==prod\" (empty: every volume)" },
      { name: "action", kind: "string", default: "add", placeholder: "add|remove", check: oneOf(["add", "remove"]), choices: ["add", "remove"], help: "add or remove the labels" },
      label,
      { name: "weight", kind: "string", default: "5", placeholder: "0..10", check: wholeNumberIn(0, 10), help: "lower weights apply first" },
      ...clientFlags,
    ],
  },
  { path: ["rule", "ls"], summary: "list rules", args: [], flags: [namespace("only this namespace", false), ...clientFlags] },
  { path: ["rule", "inspect"], summary: "show one rule", args: [{ name: "name", help: "rule name" }], flags: [namespace("the rule's namespace", true), ...clientFlags] },
  { path: ["rule", "rm"], summary: "delete a rule", args: [{ name: "name", help: "rule name" }], flags: [namespace("the rule's namespace", true), ...clientFlags] },
]

const certDir: FlagSpec = { name: "dir", kind: "string", required: true, placeholder: "DIR", help: "the CA's directory: ca.crt and ca.key (ca.key stays private, mode 0600)" }
const certDays: FlagSpec = { name: "days", kind: "string", default: "825", placeholder: "N", check: wholeNumberIn(1, 3650), help: "validity in days" }

const certCommands: ReadonlyArray<CommandSpec> = [
  {
    path: ["cert", "ca"], summary: "make a cluster CA for port 5703's TLS (ECDSA P-256): DIR/ca.crt and DIR/ca.key; never overwrites", args: [],
    flags: [certDir, certDays],
  },
  {
    path: ["cert", "issue"], summary: "issue a node (or client) certificate from the CA in --dir: DIR/NAME.crt and DIR/NAME.key", args: [{ name: "name", help: "node or client name (a DNS label)" }],
    flags: [certDir, { name: "host", kind: "repeat", placeholder: "HOST", help: "an address peers dial it at, IP or DNS name (repeat; at least one for a node)" }, certDays],
  },
]

export const shells = ["bash", "zsh"] as const

const otherCommands: ReadonlyArray<CommandSpec> = [
  { path: ["completion"], summary: "print a shell completion script (bash or zsh)", args: [{ name: "shell", help: "bash or zsh", choices: shells }], flags: [] },
]

export const commands: ReadonlyArray<CommandSpec> = [...clusterCommands, ...nodeCommands, ...volumeCommands, ...ruleCommands, ...certCommands, ...otherCommands]

export const spec: ProgramSpec = {
  name: program, about, commands, globalFlags: [help, version],
  sharedFlags: { title: "Admin API flags (every command that talks to a cluster, anywhere on the line)", flags: clientFlags },
}

/** Commands that run a server in this process (they load the cluster, etcd and FUSE code). */
export const serverCommands: ReadonlySet<string> = new Set(["cluster up", "node start"])
/** Commands answered without a cluster. */
export const localCommands: ReadonlySet<string> = new Set(["completion", "cert ca", "cert issue"])
