/**
 * X.509 v3 certificates (RFC 5280) for the cluster CA and its node certificates, written in DER.
 *
 * Pure: the caller supplies the public keys (SubjectPublicKeyInfo DER), the serial number, the
 * validity and, once `tbsCertificate` is signed, the signature. Only ECDSA P-256 with SHA-256 is
 * produced. The extensions are the ones a TLS 1.3 peer checks: BasicConstraints, KeyUsage,
 * ExtendedKeyUsage (server and client auth), SubjectAltName (DNS names and IP addresses) and the
 * key identifiers that link a certificate to its issuer. lib/platform/certificates.ts does the
 * key generation and signing with node:crypto; test/unit/x509.test.ts checks the output with
 * `openssl x509 -text` and `openssl verify`.
 */
import { assert } from "./assert.ts"
import * as Der from "./der.ts"
import { sha256 } from "./sha256.ts"

export const oid = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const

/** Serial numbers are at most 20 bytes (RFC 5280 §4.1.2.2). */
export const serialBytesMax = 20

export interface CertificateTemplate {
  /** Random bytes (≤ 20); made positive here. */
  readonly serial: Uint8Array
  readonly subjectCommonName: string
  readonly issuerCommonName: string
  readonly notBeforeMs: number
  readonly notAfterMs: number
  /** The subject's public key, SubjectPublicKeyInfo DER. */
  readonly subjectPublicKeyInfo: Uint8Array
  /** The issuer's public key (the same as the subject's for a self-signed CA). */
  readonly issuerPublicKeyInfo: Uint8Array
  /** A CA certificate (may sign certificates, no TLS use) or an end-entity one. */
  readonly authority: boolean
  readonly dnsNames: ReadonlyArray<string>
  readonly ipAddresses: ReadonlyArray<string>
}

const organization = "replivol"

const name = (commonName: string) =>
  Der.sequence(
    Der.set(Der.sequence(Der.objectIdentifier(oid.organization), Der.utf8String(organization))),
    Der.set(Der.sequence(Der.objectIdentifier(oid.commonName), Der.utf8String(commonName))),
  )

const extension = (id: string, critical: boolean, value: Uint8Array) =>
  critical
    ? Der.sequence(Der.objectIdentifier(id), Der.boolean(true), Der.octetString(value))
    : Der.sequence(Der.objectIdentifier(id), Der.octetString(value))

/** The key identifier: the first 20 bytes of SHA-256 over the SubjectPublicKeyInfo (RFC 7093 §2 style). */
export const keyIdentifier = (subjectPublicKeyInfo: Uint8Array): Uint8Array => sha256(subjectPublicKeyInfo).subarray(0, 20)

/** Parses a textual IPv4 or IPv6 address into its 4 or 16 bytes; undefined if it is neither. */
export const ipBytes = (text: string): Uint8Array | undefined => {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (v4) {
    const parts = v4.slice(1).map(Number)
    return parts.every((part) => part <= 255) ? Uint8Array.from(parts) : undefined
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.length > 39) return undefined
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const groups = (half: string) => (half === "" ? [] : half.split(":"))
  const head = groups(halves[0]!), tail = halves.length === 2 ? groups(halves[1]!) : []
  const missing = 8 - head.length - tail.length
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return undefined
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail]
  if (!all.every((group) => /^[0-9a-fA-F]{1,4}$/.test(group))) return undefined
  const out = new Uint8Array(16)
  all.forEach((group, i) => {
    const value = parseInt(group, 16)
    out[i * 2] = value >> 8
    out[i * 2 + 1] = value & 0xff
  })
  return out
}

const subjectAltName = (dnsNames: ReadonlyArray<string>, ipAddresses: ReadonlyArray<string>) =>
  Der.sequence(
    ...dnsNames.map((dns) => Der.implicitPrimitive(2, new TextEncoder().encode(dns))),
    ...ipAddresses.map((ip) => {
      const bytes = ipBytes(ip)
      assert(bytes !== undefined, `certificate IP address ${ip} is malformed`)
      return Der.implicitPrimitive(7, bytes)
    }),
  )

const extensions = (template: CertificateTemplate) => {
  const keyUsageBits = template.authority ? [0, 5, 6] : [0] // digitalSignature, keyCertSign, cRLSign
  const list = [
    extension(oid.basicConstraints, true, template.authority ? Der.sequence(Der.boolean(true), Der.smallInteger(0)) : Der.sequence()),
    extension(oid.keyUsage, true, Der.namedBits(keyUsageBits)),
    extension(oid.subjectKeyIdentifier, false, Der.octetString(keyIdentifier(template.subjectPublicKeyInfo))),
    extension(oid.authorityKeyIdentifier, false, Der.sequence(Der.implicitPrimitive(0, keyIdentifier(template.issuerPublicKeyInfo)))),
  ]
  if (!template.authority) {
    list.push(extension(oid.extKeyUsage, false, Der.sequence(Der.objectIdentifier(oid.serverAuth), Der.objectIdentifier(oid.clientAuth))))
  }
  if (template.dnsNames.length + template.ipAddresses.length > 0) {
    list.push(extension(oid.subjectAltName, false, subjectAltName(template.dnsNames, template.ipAddresses)))
  }
  return Der.explicit(3, Der.sequence(...list))
}

const signatureAlgorithm = () => Der.sequence(Der.objectIdentifier(oid.ecdsaWithSha256))

/** The TBSCertificate: the bytes the issuer signs. */
export const tbsCertificate = (template: CertificateTemplate): Uint8Array => {
  assert(template.serial.length > 0 && template.serial.length <= serialBytesMax, `certificate serial is ${template.serial.length} bytes`)
  assert(template.notBeforeMs < template.notAfterMs, "certificate validity ends before it starts")
  const serial = template.serial.slice()
  serial[0] = (serial[0]! & 0x7f) | 0x01 // positive and non-zero, the length kept
  return Der.sequence(
    Der.explicit(0, Der.smallInteger(2)), // v3
    Der.unsignedInteger(serial),
    signatureAlgorithm(),
    name(template.issuerCommonName),
    Der.sequence(Der.time(template.notBeforeMs), Der.time(template.notAfterMs)),
    name(template.subjectCommonName),
    template.subjectPublicKeyInfo,
    extensions(template),
  )
}

/** The signed certificate from its TBS bytes and the issuer's ECDSA signature (DER `Ecdsa-Sig-Value`). */
export const certificate = (tbs: Uint8Array, signature: Uint8Array): Uint8Array => Der.sequence(tbs, signatureAlgorithm(), Der.bitString(signature))

/** PEM armour (RFC 7468): base64 in 64-character lines. */
export const pem = (label: string, der: Uint8Array): string => {
  let binary = ""
  for (const byte of der) binary += String.fromCharCode(byte)
  const lines = btoa(binary).match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}
