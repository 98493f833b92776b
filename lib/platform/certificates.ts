/**
 * Certificates for port 5703's TLS: a cluster CA and the node (and client) certificates it signs.
 *
 * node:crypto makes ECDSA P-256 keys and signatures on Node, Bun and Deno, but cannot write an
 * X.509 certificate; lib/core/x509.ts writes the DER and this module signs it. No openssl at run
 * time, no dependency. `cluster up` and the library's local cluster call `ensureLocalPki` to get a
 * throwaway CA in their data directory; production clusters bring their own CA (any tool) and
 * give each node its files (`node start --tls-cert/--tls-key/--tls-ca`).
 *
 * Time and serial numbers come from Effect's Clock and the Entropy service, so tests can make
 * an expired or not-yet-valid certificate exactly.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import { Clock, Data, Effect } from "effect"
import * as X509 from "../core/x509.ts"
import { Entropy } from "../net/entropy.ts"

export class CertificateError extends Data.TaggedError("CertificateError")<{
  readonly reason: "unreadable" | "malformed" | "bad-name" | "exists"
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {}

/** A certificate and its private key, both PEM. */
export interface Identity {
  readonly certPem: string
  readonly keyPem: string
}

export interface Authority extends Identity {
  readonly commonName: string
}

export interface IssueOptions {
  readonly commonName: string
  readonly dnsNames?: ReadonlyArray<string>
  readonly ipAddresses?: ReadonlyArray<string>
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly serial: Uint8Array
}

const dayMs = 86_400_000
/** Validity in days of the certificates a local cluster makes (and below: the clock skew tolerated at their start). */
export const localCertificateDays = 825
const skewMs = 3_600_000
export const localAuthorityName = "replivol local cluster CA"

const newKey = () => crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })
const spkiOf = (key: crypto.KeyObject) => new Uint8Array(key.export({ type: "spki", format: "der" }))
const pemKey = (key: crypto.KeyObject) => String(key.export({ type: "pkcs8", format: "pem" }))
const signTbs = (tbs: Uint8Array, key: crypto.KeyObject) => new Uint8Array(crypto.sign("sha256", tbs, { key, dsaEncoding: "der" }))

/** A self-signed CA certificate (may sign certificates only). Pure apart from key generation. */
export const makeAuthority = (options: Omit<IssueOptions, "dnsNames" | "ipAddresses">): Authority => {
  const { publicKey, privateKey } = newKey()
  const spki = spkiOf(publicKey)
  const tbs = X509.tbsCertificate({
    serial: options.serial, subjectCommonName: options.commonName, issuerCommonName: options.commonName,
    notBeforeMs: options.notBeforeMs, notAfterMs: options.notAfterMs,
    subjectPublicKeyInfo: spki, issuerPublicKeyInfo: spki, authority: true, dnsNames: [], ipAddresses: [],
  })
  return { commonName: options.commonName, certPem: X509.pem("CERTIFICATE", X509.certificate(tbs, signTbs(tbs, privateKey))), keyPem: pemKey(privateKey) }
}

/** A certificate for TLS server and client use, signed by `authority`. */
export const issueCertificate = (authority: Authority, options: IssueOptions): Identity => {
  const { publicKey, privateKey } = newKey()
  const authorityKey = crypto.createPrivateKey(authority.keyPem)
  const tbs = X509.tbsCertificate({
    serial: options.serial, subjectCommonName: options.commonName, issuerCommonName: authority.commonName,
    notBeforeMs: options.notBeforeMs, notAfterMs: options.notAfterMs,
    subjectPublicKeyInfo: spkiOf(publicKey), issuerPublicKeyInfo: spkiOf(crypto.createPublicKey(authorityKey)),
    authority: false, dnsNames: options.dnsNames ?? [], ipAddresses: options.ipAddresses ?? [],
  })
  return { certPem: X509.pem("CERTIFICATE", X509.certificate(tbs, signTbs(tbs, authorityKey))), keyPem: pemKey(privateKey) }
}

/** The validity window and serial for a certificate made now (Clock, Entropy). */
export const validityFromNow = (days: number) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const entropy = yield* Entropy
    return { notBeforeMs: now - skewMs, notAfterMs: now + days * dayMs, serial: entropy.randomBytes(16) }
  })

export interface PkiMember {
  /** Node (or client) name: the certificate's common name and DNS name. */
  readonly name: string
  /** The address it listens on or dials from: an IP address or a DNS name. */
  readonly host: string
}

export interface LocalPki {
  readonly caPem: string
  readonly identities: ReadonlyMap<string, Identity>
  /** The directory holding ca.crt, ca.key, <name>.crt and <name>.key (undefined in memory). */
  readonly dir?: string
}

/** DNS name (and IP address or host name) a member's certificate carries. */
export const sanFor = (member: PkiMember) =>
  X509.ipBytes(member.host) ? { dnsNames: [member.name], ipAddresses: [member.host] } : { dnsNames: [member.name, member.host], ipAddresses: [] }

/** A throwaway CA and one certificate per member, in memory. */
export const makeLocalPki = (members: ReadonlyArray<PkiMember>, authority?: Authority) =>
  Effect.gen(function* () {
    const ca = authority ?? makeAuthority({ commonName: localAuthorityName, ...(yield* validityFromNow(localCertificateDays)) })
    const identities = new Map<string, Identity>()
    for (const member of members) {
      identities.set(member.name, issueCertificate(ca, { commonName: member.name, ...sanFor(member), ...(yield* validityFromNow(localCertificateDays)) }))
    }
    return { ca, pki: { caPem: ca.certPem, identities } as LocalPki }
  })

const readIfPresent = (path: string) => Effect.promise(() => fs.readFile(path, "utf8").catch(() => undefined))

/** The CA kept in `dir` if it is ours, valid for another day and matches its key; else undefined. */
const reusableAuthority = (dir: string) =>
  Effect.gen(function* () {
    const [certPem, keyPem] = yield* Effect.all([readIfPresent(`${dir}/ca.crt`), readIfPresent(`${dir}/ca.key`)])
    if (certPem === undefined || keyPem === undefined) return undefined
    const now = yield* Clock.currentTimeMillis
    try {
      const cert = new crypto.X509Certificate(certPem)
      const ours = cert.subject.split("\n").includes(`CN=${localAuthorityName}`) && cert.checkPrivateKey(crypto.createPrivateKey(keyPem))
      return ours && Date.parse(cert.validTo) > now + dayMs ? { commonName: localAuthorityName, certPem, keyPem } : undefined
    } catch {
      return undefined
    }
  })

/**
 * The local cluster's PKI in `dir`: its CA is kept across restarts (so a client given ca.crt
 * keeps working), node certificates are issued afresh on every start. Keys are written 0600.
 */
export const ensureLocalPki = (dir: string, members: ReadonlyArray<PkiMember>) =>
  Effect.gen(function* () {
    const kept = yield* reusableAuthority(dir)
    const { ca, pki } = yield* makeLocalPki(members, kept)
    yield* Effect.tryPromise({
      try: async () => {
        await fs.mkdir(dir, { recursive: true, mode: 0o700 })
        const write = (name: string, text: string, mode: number) => fs.writeFile(`${dir}/${name}`, text, { mode }).then(() => fs.chmod(`${dir}/${name}`, mode))
        if (!kept) await Promise.all([write("ca.crt", ca.certPem, 0o644), write("ca.key", ca.keyPem, 0o600)])
        for (const [name, identity] of pki.identities) await Promise.all([write(`${name}.crt`, identity.certPem, 0o644), write(`${name}.key`, identity.keyPem, 0o600)])
      },
      catch: (cause) => new CertificateError({ reason: "unreadable", path: dir, message: `cannot write the local cluster's certificates to ${dir}: ${String(cause)}`, cause }),
    })
    return { ...pki, dir } satisfies LocalPki
  })

/** Reads and checks a PEM certificate, key and CA from files (`node start --tls-*`). */
export const readTlsFiles = (files: { readonly certFile: string; readonly keyFile: string; readonly caFile: string }) =>
  Effect.gen(function* () {
    const read = (path: string, what: string) =>
      Effect.tryPromise({
        try: () => fs.readFile(path, "utf8"),
        catch: (cause) => new CertificateError({ reason: "unreadable", path, message: `cannot read the TLS ${what} file ${path}: ${String(cause)}`, cause }),
      })
    const [certPem, keyPem, caPem] = yield* Effect.all([read(files.certFile, "certificate"), read(files.keyFile, "key"), read(files.caFile, "CA")])
    const check = <A>(path: string, what: string, parse: () => A) =>
      Effect.try({
        try: parse,
        catch: (cause) => new CertificateError({ reason: "malformed", path, message: `the TLS ${what} file ${path} is not a valid PEM ${what}: ${String(cause)}`, cause }),
      })
    yield* check(files.certFile, "certificate", () => new crypto.X509Certificate(certPem))
    yield* check(files.caFile, "CA", () => new crypto.X509Certificate(caPem))
    const key = yield* check(files.keyFile, "key", () => crypto.createPrivateKey(keyPem))
    const matches = new crypto.X509Certificate(certPem).checkPrivateKey(key)
    if (!matches) return yield* new CertificateError({ reason: "malformed", path: files.keyFile, message: `the TLS key ${files.keyFile} does not belong to the certificate ${files.certFile}` })
    return { caPem, identity: { certPem, keyPem } }
  })

// ---- `replivol cert ca` / `cert issue`: a CA of one's own for a multi-machine cluster.

export const clusterAuthorityName = "replivol cluster CA"
const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const dnsName = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/

const writeFiles = (dir: string, files: ReadonlyArray<readonly [string, string, number]>) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 })
      for (const [name, text, mode] of files) {
        await fs.writeFile(`${dir}/${name}`, text, { mode, flag: "wx" })
      }
    },
    catch: (cause) => (cause as NodeJS.ErrnoException)?.code === "EEXIST"
      ? new CertificateError({ reason: "exists", path: dir, message: `${dir} already holds ${files.map(([n]) => n).join(" or ")}: nothing was overwritten (remove them first to make new ones)`, cause })
      : new CertificateError({ reason: "unreadable", path: dir, message: `cannot write to ${dir}: ${String(cause)}`, cause }),
  })

/** Makes DIR/ca.crt and DIR/ca.key (0600); refuses to overwrite either. */
export const writeClusterAuthority = (dir: string, days: number) =>
  Effect.gen(function* () {
    const existing = yield* Effect.all([readIfPresent(`${dir}/ca.crt`), readIfPresent(`${dir}/ca.key`)])
    if (existing.some((text) => text !== undefined)) {
      return yield* new CertificateError({ reason: "exists", path: dir, message: `${dir} already holds a CA (ca.crt or ca.key): nothing was overwritten` })
    }
    const ca = makeAuthority({ commonName: clusterAuthorityName, ...(yield* validityFromNow(days)) })
    yield* writeFiles(dir, [["ca.key", ca.keyPem, 0o600], ["ca.crt", ca.certPem, 0o644]])
    return { certFile: `${dir}/ca.crt`, keyFile: `${dir}/ca.key` }
  })

/** The CA in DIR, if replivol made it (its subject is ours, its key matches). */
const loadAuthority = (dir: string) =>
  Effect.gen(function* () {
    const [certPem, keyPem] = yield* Effect.all([readIfPresent(`${dir}/ca.crt`), readIfPresent(`${dir}/ca.key`)])
    if (certPem === undefined || keyPem === undefined) {
      return yield* new CertificateError({ reason: "unreadable", path: dir, message: `${dir} has no ca.crt and ca.key: make them with replivol cert ca --dir ${dir}` })
    }
    const subject = yield* Effect.try({
      try: () => {
        const cert = new crypto.X509Certificate(certPem)
        return cert.checkPrivateKey(crypto.createPrivateKey(keyPem)) ? cert.subject.split("\n") : undefined
      },
      catch: (cause) => new CertificateError({ reason: "malformed", path: dir, message: `${dir}/ca.crt or ca.key is not a valid PEM certificate and key: ${String(cause)}`, cause }),
    })
    const name = subject?.find((part) => part.startsWith("CN="))?.slice(3)
    if (subject === undefined || name === undefined || !subject.includes("O=replivol")) {
      return yield* new CertificateError({ reason: "malformed", path: dir, message: `${dir}/ca.crt was not made by replivol (or ca.key is not its key): issue certificates with the tool that made that CA` })
    }
    return { commonName: name, certPem, keyPem } satisfies Authority
  })

/** Issues DIR/NAME.crt and DIR/NAME.key (0600) from the CA in DIR, naming `hosts`; refuses to overwrite. */
export const writeIssuedCertificate = (dir: string, name: string, hosts: ReadonlyArray<string>, days: number) =>
  Effect.gen(function* () {
    if (!dnsLabel.test(name)) return yield* new CertificateError({ reason: "bad-name", path: dir, message: `name "${name}" is not allowed: a DNS label (lower-case letters, digits and "-", 1..63 characters)` })
    const bad = hosts.find((host) => X509.ipBytes(host) === undefined && !dnsName.test(host))
    if (bad !== undefined) return yield* new CertificateError({ reason: "bad-name", path: dir, message: `--host ${bad} is not an IP address or a DNS name` })
    const ca = yield* loadAuthority(dir)
    const existing = yield* Effect.all([readIfPresent(`${dir}/${name}.crt`), readIfPresent(`${dir}/${name}.key`)])
    if (existing.some((file) => file !== undefined)) {
      return yield* new CertificateError({ reason: "exists", path: dir, message: `${dir} already holds ${name}.crt or ${name}.key: nothing was overwritten` })
    }
    const ipAddresses = hosts.filter((host) => X509.ipBytes(host) !== undefined)
    const dnsNames = [name, ...hosts.filter((host) => X509.ipBytes(host) === undefined && host !== name)]
    const identity = issueCertificate(ca, { commonName: name, dnsNames, ipAddresses, ...(yield* validityFromNow(days)) })
    yield* writeFiles(dir, [[`${name}.key`, identity.keyPem, 0o600], [`${name}.crt`, identity.certPem, 0o644]])
    return { certFile: `${dir}/${name}.crt`, keyFile: `${dir}/${name}.key`, names: [...dnsNames, ...ipAddresses] }
  })
