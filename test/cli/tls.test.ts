/**
 * The command line's TLS: `cluster up` makes a throwaway CA and node certificates in DIR/tls (keys
 * 0600, certificates naming each node's address, signed by the CA) and says it runs TLS;
 * `--insecure-plaintext` warns and makes none; `node start` refuses to start without its three
 * TLS files (or with unreadable ones, or with both TLS files and --insecure-plaintext), saying what
 * is missing, before it contacts etcd.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { X509Certificate } from "node:crypto"
import { existsSync, readFileSync, statSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runCli, startUp } from "./support.ts"

const test = suite("replivol TLS: cluster up's throwaway CA, node start's files")

test("cluster up makes a CA and a certificate per node in DIR/tls, and runs TLS", async () => {
  const up = await startUp({ hostBase: "127.0.47.", port: 29713, apiPort: 29715, extra: ["--nodes", "2", "--no-mount", "--quiet"] })
  try {
    assert.match(up.log(), "port 29713: TLS 1.3, mutual certificates from a throwaway CA in")
    const dir = join(up.data, "tls")
    for (const file of ["ca.crt", "ca.key", "n1.crt", "n1.key", "n2.crt", "n2.key", "client.crt", "client.key"]) assert.ok(existsSync(join(dir, file)), file)
    for (const key of ["ca.key", "n1.key", "client.key"]) assert.is(statSync(join(dir, key)).mode & 0o777, 0o600, `${key} is private`)
    const ca = new X509Certificate(readFileSync(join(dir, "ca.crt")))
    assert.ok(ca.ca, "ca.crt is a CA certificate")
    const n2 = new X509Certificate(readFileSync(join(dir, "n2.crt")))
    assert.ok(n2.verify(ca.publicKey), "n2.crt is signed by ca.crt")
    assert.ok(n2.checkIP("127.0.47.2") !== undefined, `n2.crt names its address: ${n2.subjectAltName}`)
    assert.is(n2.checkIP("127.0.47.1"), undefined, "and not n1's")
    const health = await up.cli("cluster", "health", "--json")
    assert.is(health.code, 0, health.stderr)
    assert.ok((JSON.parse(health.stdout) as { nodes: unknown[] }).nodes.length === 2, "both nodes joined")
  } finally {
    assert.is(await up.stop(), 0)
  }
})

test("cluster up --insecure-plaintext warns and makes no certificates", async () => {
  const up = await startUp({ hostBase: "127.0.48.", port: 29723, apiPort: 29725, extra: ["--nodes", "1", "--no-mount", "--quiet", "--insecure-plaintext"] })
  try {
    assert.match(up.log(), "WARNING: --insecure-plaintext")
    assert.match(up.log(), "port 29723: plain TCP (--insecure-plaintext)")
    assert.not.ok(existsSync(join(up.data, "tls")), "no tls directory")
  } finally {
    assert.is(await up.stop(), 0)
  }
})

test("node start needs all three TLS files or --insecure-plaintext, and readable files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "replivol-tls-cli-"))
  try {
    await writeFile(join(dir, "secret"), "node-start-tls-secret-0123456789\n")
    const base = ["node", "start", "--name", "n1", "--address", "127.0.0.1:29733", "--data", join(dir, "data"), "--etcd", "http://127.0.0.1:9", "--secret-file", join(dir, "secret")]
    const none = await runCli(base)
    assert.is(none.code, 1, none.stderr)
    assert.match(none.stderr, "node start needs --tls-cert, --tls-key and --tls-ca")
    const some = await runCli([...base, "--tls-cert", join(dir, "n1.crt")])
    assert.is(some.code, 1, some.stderr)
    assert.match(some.stderr, "node start needs --tls-cert, --tls-key and --tls-ca")
    const both = await runCli([...base, "--tls-cert", "a", "--tls-key", "b", "--tls-ca", "c", "--insecure-plaintext"])
    assert.is(both.code, 1, both.stderr)
    assert.match(both.stderr, "not both")
    const missing = await runCli([...base, "--tls-cert", join(dir, "n1.crt"), "--tls-key", join(dir, "n1.key"), "--tls-ca", join(dir, "ca.crt")])
    assert.is(missing.code, 1, missing.stderr)
    assert.match(missing.stderr, `cannot read the TLS certificate file ${join(dir, "n1.crt")}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test.run()
