/**
 * Which transport a node gets from its `tls` option: TLS 1.3 with its certificate files or PEM
 * text, plain TCP only when asked for by name (`"insecure-plaintext"`, with a warning), and by
 * default a certificate from this process's own throwaway CA.
 *
 * That default keeps `createNode` encrypted with no setup: nodes of one process trust each other
 * (the quick start, tests), and a node in another process, whose CA differs, is refused with
 * `tls-untrusted` / `tls-refused` until every node is given files from one cluster CA.
 */
import { Effect, Layer } from "effect"
import type { Transport } from "../net/Transport.ts"
import { ensureLocalPki, issueCertificate, localAuthorityName, localCertificateDays, makeAuthority, makeLocalPki, readTlsFiles, sanFor, validityFromNow, type Authority, type CertificateError, type PkiMember } from "./certificates.ts"
import { layerTcp } from "./tcp.ts"
import { layerTls } from "./tls.ts"

export type TlsOption =
  | { readonly caFile: string; readonly certFile: string; readonly keyFile: string }
  | { readonly caPem: string; readonly certPem: string; readonly keyPem: string }
  | "insecure-plaintext"

export const plaintextWarning =
  "replivol: WARNING: --insecure-plaintext: port 5703 carries volume data unencrypted and peers are not checked by certificate (only the cluster secret); use it only on a network you trust"

let processAuthority: Promise<Authority> | undefined

/** This process's throwaway CA (made once, in memory, never written anywhere). */
const processCa = Effect.suspend(() => {
  processAuthority ??= Effect.runPromise(Effect.map(validityFromNow(localCertificateDays), (validity) => makeAuthority({ commonName: `${localAuthorityName} (in-process)`, ...validity })))
  return Effect.promise(() => processAuthority!)
})

/** The Transport layer for one node (or client) named `member.name` at `member.host`. */
export const transportLayerFor = (tls: TlsOption | undefined, member: PkiMember, warn: (text: string) => Effect.Effect<void> = Effect.logWarning): Effect.Effect<Layer.Layer<Transport>, CertificateError> =>
  Effect.gen(function* () {
    if (tls === "insecure-plaintext") {
      yield* warn(plaintextWarning)
      return layerTcp
    }
    if (tls === undefined) {
      const ca = yield* processCa
      const identity = issueCertificate(ca, { commonName: member.name, ...sanFor(member), ...(yield* validityFromNow(localCertificateDays)) })
      return layerTls({ caPem: ca.certPem, identity })
    }
    if ("caFile" in tls) {
      const { caPem, identity } = yield* readTlsFiles(tls)
      return layerTls({ caPem, identity })
    }
    return layerTls({ caPem: tls.caPem, identity: { certPem: tls.certPem, keyPem: tls.keyPem } })
  })

/** The name of the client certificate a local cluster also issues (for workloads outside it). */
export const localClientName = "client"

/**
 * A local cluster's transport: a throwaway CA and a certificate per node (keyed by its host, so
 * several nodes share one process), kept in `dir` when given (`cluster up`: `<data>/tls`), in
 * memory otherwise; plain TCP only for `"insecure-plaintext"`.
 */
export const localClusterTransport = (members: ReadonlyArray<PkiMember>, dir: string | undefined, tls?: "insecure-plaintext", warn: (text: string) => Effect.Effect<void> = Effect.logWarning) =>
  Effect.gen(function* () {
    if (tls === "insecure-plaintext") {
      yield* warn(plaintextWarning)
      return { layer: layerTcp as Layer.Layer<Transport>, pki: undefined }
    }
    const all = [...members, { name: localClientName, host: "127.0.0.1" }]
    const pki = dir === undefined ? (yield* makeLocalPki(all)).pki : yield* ensureLocalPki(dir, all)
    const identities = new Map(members.map((m) => [m.host, pki.identities.get(m.name)!] as const))
    return { layer: layerTls({ caPem: pki.caPem, identities, identity: pki.identities.get(localClientName)! }) as Layer.Layer<Transport>, pki }
  })
