/**
 * The TLS flags of the test and benchmark node processes: `--tls-dir DIR` (DIR/ca.crt,
 * DIR/<name>.crt, DIR/<name>.key, as lib/platform/certificates.ts ensureLocalPki writes them) or
 * `--plaintext` (plain TCP). Without either, createNode's default: this process's own CA.
 */
import type { TlsOption } from "../../lib/platform/nodeTransport.ts"

export const tlsFromArgs = (args: ReadonlyArray<string>, name: string): { readonly tls?: TlsOption } => {
  if (args.includes("--plaintext")) return { tls: "insecure-plaintext" }
  const at = args.indexOf("--tls-dir")
  const dir = at >= 0 ? args[at + 1] : undefined
  return dir ? { tls: { caFile: `${dir}/ca.crt`, certFile: `${dir}/${name}.crt`, keyFile: `${dir}/${name}.key` } } : {}
}
