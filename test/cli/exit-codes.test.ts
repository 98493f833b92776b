/**
 * Exit codes are the same for every command: 2 for a usage error (the parser refused the line),
 * 1 when the operation failed, each with one line `replivol: <reason>` on stderr. Every command of
 * the table is run both ways as a real process (no cluster: the admin API address is a closed port).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { commands } from "../../lib/cli/spec.ts"
import { runCli } from "./support.ts"

const test = suite("replivol exit codes")
const closedApi = "127.0.0.1:9" // discard port: nothing listens there on a test machine

/** A valid line for each command (arguments and required flags), so that only the operation can fail. */
const validLine = (path: ReadonlyArray<string>): string[] => {
  const line = path.join(" ")
  const table: Record<string, string[]> = {
    "cluster up": ["cluster", "up", "--no-mount", "--quiet"],
    "cluster health": ["cluster", "health"],
    "node start": ["node", "start", "--name", "n1", "--address", "127.0.0.1:5703", "--data", "/tmp/replivol-exit-none", "--etcd", "http://127.0.0.1:9", "--secret-file", "/nonexistent/secret"],
    "node ls": ["node", "ls"],
    "node kill": ["node", "kill", "n1"],
    "node revive": ["node", "revive", "n1"],
    "node label": ["node", "label", "n1", "--label", "topology.kubernetes.io/zone=a"],
    "node cordon": ["node", "cordon", "n1"],
    "node uncordon": ["node", "uncordon", "n1"],
    "node drain": ["node", "drain", "n1"],
    "volume create": ["volume", "create", "a/b", "--size", "1MiB"],
    "volume ls": ["volume", "ls"],
    "volume inspect": ["volume", "inspect", "a/b"],
    "volume rm": ["volume", "rm", "a/b"],
    "volume verify": ["volume", "verify", "a/b", "--repair"],
    "volume update": ["volume", "update", "a/b", "--label", "storageos.com/replicas=1"],
    "volume resize": ["volume", "resize", "a/b", "--size", "2MiB"],
    "volume move": ["volume", "move", "a/b", "--to", "n2"],
    "volume accept-loss": ["volume", "accept-loss", "a/b", "--yes"],
    "rule create": ["rule", "create", "r", "--namespace", "a"],
    "rule ls": ["rule", "ls"],
    "rule inspect": ["rule", "inspect", "r", "--namespace", "a"],
    "rule rm": ["rule", "rm", "r", "--namespace", "a"],
    "cert ca": ["cert", "ca", "--dir", "/tmp/replivol-exit-none/ca"],
    "cert issue": ["cert", "issue", "n1", "--dir", "/tmp/replivol-exit-none/ca"],
    completion: ["completion", "bash"],
  }
  const found = table[line]
  if (!found) throw new Error(`exit-code test has no line for "${line}": add one`)
  return found
}

const oneLine = (stderr: string) => stderr.trim().split("\n").length === 1 && stderr.startsWith("replivol: ")

test("every command: an unknown flag exits 2 with one line naming it", async () => {
  for (const command of commands) {
    const result = await runCli([...validLine(command.path), "--no-such-flag"])
    assert.is(result.code, 2, `${command.path.join(" ")}: ${result.stderr}`)
    assert.ok(oneLine(result.stderr), result.stderr)
    assert.match(result.stderr, "--no-such-flag")
  }
})

test("every command that talks to a cluster: an unreachable admin API exits 1 with one line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "replivol-exit-"))
  await writeFile(join(dir, "admin.token"), "t0k3n\n")
  try {
    for (const command of commands.filter((c) => c.flags.some((f) => f.name === "token"))) {
      const result = await runCli([...validLine(command.path), "--api", closedApi, "--data", dir])
      assert.is(result.code, 1, `${command.path.join(" ")}: ${result.stderr}`)
      assert.ok(oneLine(result.stderr), result.stderr)
      assert.match(result.stderr, `cannot reach the admin API at ${closedApi}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("volume accept-loss without --yes exits 1 saying what it would lose, before it talks to any cluster", async () => {
  const result = await runCli(["volume", "accept-loss", "a/b", "--api", closedApi, "--token", "t0k3n"])
  assert.is(result.code, 1, result.stderr)
  assert.ok(oneLine(result.stderr), result.stderr)
  assert.match(result.stderr, "writes only they hold are lost for good")
  assert.match(result.stderr, "--yes")
  assert.not.match(result.stderr, "cannot reach the admin API", "it asked no cluster")
})

test("server commands: a failure to start exits 1 (unreadable secret, a data directory under a file, a bad encryption key file)", async () => {
  const node = await runCli(validLine(["node", "start"]))
  assert.is(node.code, 1, node.stderr)
  assert.match(node.stderr, /^replivol: --secret-file \/nonexistent\/secret cannot be read/)
  const dir = await mkdtemp(join(tmpdir(), "replivol-exit-"))
  await writeFile(join(dir, "file"), "not a directory\n")
  try {
    const data = join(dir, "file", "data")
    const up = await runCli(["cluster", "up", "--no-mount", "--quiet", "--data", data, "--api", "127.0.0.1:0", "--port", "29703", "--host-base", "127.0.29."])
    assert.is(up.code, 1, up.stderr)
    assert.match(up.stderr, `replivol: cannot read or create ${data}/`)
    assert.ok(oneLine(up.stderr), up.stderr)
    // An encryption key file that is missing or not a key stops the start with the reason (before etcd is dialled).
    await writeFile(join(dir, "secret"), "a-secret-of-at-least-16-bytes\n")
    await writeFile(join(dir, "bad.key"), "not a key\n")
    const start = validLine(["node", "start"]).map((arg) => (arg === "/nonexistent/secret" ? join(dir, "secret") : arg))
    for (const [file, reason] of [["bad.key", /bad\.key does not hold an encryption key: expected 64 hex digits/], ["missing.key", /missing\.key cannot be read/]] as const) {
      const refused = await runCli([...start, "--encryption-key-file", join(dir, file)])
      assert.is(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, reason)
      assert.ok(oneLine(refused.stderr), refused.stderr)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("usage errors of every kind exit 2: unknown command, missing argument, missing or bad value, extra argument", async () => {
  for (const argv of [["volume", "explode"], ["volume", "inspect"], ["volume", "create", "a/b"], ["rule", "create", "r", "-n", "a", "--weight", "abc"], ["volume", "inspect", "a/b", "--timeout", "abc"], ["volume", "rm", "a/b", "c/d"], ["completion", "fish"], ["volume", "ls", "--api"]]) {
    const result = await runCli(argv)
    assert.is(result.code, 2, `${argv.join(" ")}: ${result.stderr}`)
    assert.ok(oneLine(result.stderr), result.stderr)
  }
})

test.run()
