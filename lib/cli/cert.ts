/**
 * `replivol cert ca` and `replivol cert issue`: a cluster CA and node certificates for port
 * 5703's TLS without openssl (lib/platform/certificates.ts writes them). Answered locally: no
 * cluster, no admin API. Never overwrites a file; keys are written mode 0600.
 */
import { Effect } from "effect"
import { writeClusterAuthority, writeIssuedCertificate } from "../platform/certificates.ts"
import type { Flags, Output } from "./commands.ts"

const text = (flags: Flags, name: string): string => (typeof flags[name] === "string" ? (flags[name] as string) : "")
const absolute = (path: string): string => (path.startsWith("/") ? path : `${process.cwd()}/${path.replace(/^\.\//, "")}`).replace(/\/+$/, "")

export const runCertCommand = async (path: string, args: Readonly<Record<string, string>>, flags: Flags, out: Output): Promise<void> => {
  const dir = absolute(text(flags, "dir"))
  const days = Number(text(flags, "days") || "825")
  if (path === "cert ca") {
    const made = await Effect.runPromise(writeClusterAuthority(dir, days))
    out(`wrote ${made.certFile} (give it to every node: --tls-ca) and ${made.keyFile} (keep it private, off the nodes)`)
    return
  }
  const hosts = (flags.host as ReadonlyArray<string> | undefined) ?? []
  const name = args.name ?? ""
  const issued = await Effect.runPromise(writeIssuedCertificate(dir, name, hosts, days))
  out(`wrote ${issued.certFile} and ${issued.keyFile} for ${issued.names.join(", ")}: node start --name ${name} --tls-cert ${issued.certFile} --tls-key ${issued.keyFile} --tls-ca ${dir}/ca.crt`)
}
