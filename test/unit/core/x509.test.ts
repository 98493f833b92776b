/**
 * The X.509 writer: DER encodings that have one right answer, then certificates that OpenSSL
 * itself parses (`openssl x509 -text`) and verifies against their CA (`openssl verify
 * -x509_strict`), and refuses when expired or signed by another CA. Skipped, with the reason
 * printed, where no openssl binary is installed.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as Der from "../../../lib/core/der.ts"
import * as X509 from "../../../lib/core/x509.ts"
import { ensureLocalPki, issueCertificate, makeAuthority, makeLocalPki, readTlsFiles, writeClusterAuthority, writeIssuedCertificate } from "../../../lib/platform/certificates.ts"

const test = suite("x509: DER writer and certificates OpenSSL accepts")
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

test("DER encodings with one right answer: lengths, integers, OIDs, named bits, times", () => {
  assert.is(hex(Der.octetString(new Uint8Array(127))).slice(0, 4), "047f")
  assert.is(hex(Der.octetString(new Uint8Array(128))).slice(0, 6), "048180")
  assert.is(hex(Der.octetString(new Uint8Array(300))).slice(0, 8), "0482012c")
  assert.is(hex(Der.unsignedInteger(Uint8Array.of(0x00, 0x00, 0x7f))), "02017f")
  assert.is(hex(Der.unsignedInteger(Uint8Array.of(0x80))), "02020080")
  assert.is(hex(Der.smallInteger(0)), "020100")
  assert.is(hex(Der.objectIdentifier("1.2.840.10045.4.3.2")), "06082a8648ce3d040302")
  assert.is(hex(Der.objectIdentifier("2.5.29.17")), "0603551d11")
  assert.is(hex(Der.namedBits([0])), "03020780") // digitalSignature
  assert.is(hex(Der.namedBits([0, 5, 6])), "03020186") // + keyCertSign, cRLSign
  assert.is(new TextDecoder().decode(Der.time(Date.UTC(2026, 0, 2, 3, 4, 5)).subarray(2)), "260102030405Z")
  assert.is(Der.time(Date.UTC(2026, 0, 1))[0], 0x17) // UTCTime until 2049
  assert.is(new TextDecoder().decode(Der.time(Date.UTC(2050, 0, 1)).subarray(2)), "20500101000000Z") // GeneralizedTime after
  assert.equal(Array.from(X509.ipBytes("10.1.2.3")!), [10, 1, 2, 3])
  assert.equal(Array.from(X509.ipBytes("::1")!), [...new Array(15).fill(0), 1])
  assert.equal(Array.from(X509.ipBytes("fe80::1:2")!).slice(0, 2), [0xfe, 0x80])
  for (const bad of ["256.1.1.1", "1.2.3", "1:2:3", "::1::", "node-1", "1:2:3:4:5:6:7:8:9"]) assert.is(X509.ipBytes(bad), undefined, bad)
})

const openssl = spawnSync("openssl", ["version"], { encoding: "utf8" })
const haveOpenssl = openssl.status === 0
if (!haveOpenssl) console.log("  x509: openssl not installed here, skipping the OpenSSL checks (apt-get install openssl)")

const run = (args: string[]) => spawnSync("openssl", args, { encoding: "utf8" })

;(haveOpenssl ? test : test.skip)("openssl parses the CA and a node certificate and verifies the chain strictly; expired and foreign ones fail", async () => {
  const dir = mkdtempSync(join(tmpdir(), "replivol-x509-"))
  try {
    const { ca, pki } = await Effect.runPromise(makeLocalPki([{ name: "n1", host: "127.0.0.1" }, { name: "n2", host: "::1" }, { name: "n3", host: "node3.example" }]))
    writeFileSync(join(dir, "ca.crt"), ca.certPem)
    for (const [name, identity] of pki.identities) writeFileSync(join(dir, `${name}.crt`), identity.certPem)
    const caText = run(["x509", "-in", join(dir, "ca.crt"), "-noout", "-text"])
    assert.is(caText.status, 0, caText.stderr)
    assert.match(caText.stdout, "CA:TRUE, pathlen:0")
    assert.match(caText.stdout, "Certificate Sign, CRL Sign")
    assert.match(caText.stdout, "ecdsa-with-SHA256")
    const n1 = run(["x509", "-in", join(dir, "n1.crt"), "-noout", "-text"])
    assert.is(n1.status, 0, n1.stderr)
    assert.match(n1.stdout, "DNS:n1, IP Address:127.0.0.1")
    assert.match(n1.stdout, "TLS Web Server Authentication, TLS Web Client Authentication")
    assert.match(n1.stdout, "CA:FALSE")
    assert.match(n1.stdout, "NIST CURVE: P-256")
    assert.match(run(["x509", "-in", join(dir, "n2.crt"), "-noout", "-ext", "subjectAltName"]).stdout, "IP Address:0:0:0:0:0:0:0:1")
    assert.match(run(["x509", "-in", join(dir, "n3.crt"), "-noout", "-ext", "subjectAltName"]).stdout, "DNS:n3, DNS:node3.example")
    const verified = run(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", join(dir, "ca.crt"), join(dir, "n1.crt"), join(dir, "n2.crt"), join(dir, "n3.crt")])
    assert.is(verified.status, 0, verified.stdout + verified.stderr)
    assert.is(run(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", join(dir, "ca.crt"), join(dir, "n1.crt")]).status, 0)

    const now = Date.now()
    const expired = issueCertificate(ca, { commonName: "old", ipAddresses: ["127.0.0.1"], notBeforeMs: now - 10 * 86_400_000, notAfterMs: now - 86_400_000, serial: new Uint8Array(16).fill(7) })
    writeFileSync(join(dir, "old.crt"), expired.certPem)
    const old = run(["verify", "-CAfile", join(dir, "ca.crt"), join(dir, "old.crt")])
    assert.is.not(old.status, 0)
    assert.match(old.stdout + old.stderr, "certificate has expired")
    const other = makeAuthority({ commonName: "another CA", notBeforeMs: now - 1000, notAfterMs: now + 86_400_000, serial: Uint8Array.of(9) })
    writeFileSync(join(dir, "other.crt"), other.certPem)
    const foreign = run(["verify", "-CAfile", join(dir, "other.crt"), join(dir, "n1.crt")])
    assert.is.not(foreign.status, 0, "a certificate does not verify against another CA")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("ensureLocalPki keeps its CA across starts and issues node certificates afresh; readTlsFiles loads them, refuses a key of another certificate", async () => {
  const dir = mkdtempSync(join(tmpdir(), "replivol-pki-"))
  try {
    const members = [{ name: "n1", host: "127.0.0.1" }, { name: "n2", host: "127.0.0.2" }]
    await Effect.runPromise(ensureLocalPki(dir, members))
    const [ca1, n1first] = [readFileSync(join(dir, "ca.crt"), "utf8"), readFileSync(join(dir, "n1.crt"), "utf8")]
    await Effect.runPromise(ensureLocalPki(dir, members))
    assert.is(readFileSync(join(dir, "ca.crt"), "utf8"), ca1, "the CA is kept")
    assert.is.not(readFileSync(join(dir, "n1.crt"), "utf8"), n1first, "node certificates are new")
    assert.is(statSync(join(dir, "n2.key")).mode & 0o777, 0o600)
    const loaded = await Effect.runPromise(readTlsFiles({ caFile: join(dir, "ca.crt"), certFile: join(dir, "n1.crt"), keyFile: join(dir, "n1.key") }))
    assert.is(loaded.caPem, ca1)
    const wrong = await Effect.runPromise(Effect.flip(readTlsFiles({ caFile: join(dir, "ca.crt"), certFile: join(dir, "n1.crt"), keyFile: join(dir, "n2.key") })))
    assert.is(wrong.reason, "malformed")
    assert.match(wrong.message, "does not belong to the certificate")
    writeFileSync(join(dir, "junk.crt"), "not a certificate\n")
    const junk = await Effect.runPromise(Effect.flip(readTlsFiles({ caFile: join(dir, "ca.crt"), certFile: join(dir, "junk.crt"), keyFile: join(dir, "n1.key") })))
    assert.is(junk.reason, "malformed")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("cert ca / cert issue: a CA and a node certificate that load as TLS files; nothing is ever overwritten; bad names refused", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "replivol-cert-")), "ca")
  try {
    await Effect.runPromise(writeClusterAuthority(dir, 30))
    const ca = readFileSync(join(dir, "ca.crt"), "utf8")
    assert.is((await Effect.runPromise(Effect.flip(writeClusterAuthority(dir, 30)))).reason, "exists")
    assert.is(readFileSync(join(dir, "ca.crt"), "utf8"), ca, "the CA is unchanged")
    const issued = await Effect.runPromise(writeIssuedCertificate(dir, "n1", ["10.0.0.1", "n1.example.com"], 30))
    assert.equal(issued.names, ["n1", "n1.example.com", "10.0.0.1"])
    await Effect.runPromise(readTlsFiles({ caFile: join(dir, "ca.crt"), certFile: issued.certFile, keyFile: issued.keyFile }))
    assert.is((await Effect.runPromise(Effect.flip(writeIssuedCertificate(dir, "n1", ["10.0.0.1"], 30)))).reason, "exists")
    assert.is((await Effect.runPromise(Effect.flip(writeIssuedCertificate(dir, "N_1", [], 30)))).reason, "bad-name")
    assert.is((await Effect.runPromise(Effect.flip(writeIssuedCertificate(dir, "n2", ["not a host"], 30)))).reason, "bad-name")
    assert.is((await Effect.runPromise(Effect.flip(writeIssuedCertificate(join(dir, "none"), "n2", [], 30)))).reason, "unreadable")
    if (haveOpenssl) assert.is(run(["verify", "-x509_strict", "-CAfile", join(dir, "ca.crt"), issued.certFile]).status, 0)
  } finally {
    rmSync(join(dir, ".."), { recursive: true, force: true })
  }
})

test.run()
