/**
 * `replivol` entry point: parse argv, run the command, set the exit code. Every failure is one
 * line on stderr, `replivol: <reason>`; exit code 2 for a usage error (unknown command or flag,
 * a missing or malformed value), 1 when the operation failed, 0 on success. The server commands
 * run until SIGINT/SIGTERM, which closes their scope (unmount, stop nodes) and exits 0.
 *
 * Only the parser and the command table are imported up front: help, usage errors, `--version`
 * and completion load nothing else (no Effect runtime, no cluster, no FUSE), so they start fast.
 * The client commands load the HTTP client and the Effect runtime; the server commands the whole
 * cluster, etcd and FUSE code.
 */
import { parseArgs, UsageError } from "./args.ts"
import { localCommands, program, serverCommands, spec } from "./spec.ts"

const out = (line: string) => void process.stdout.write(`${line}\n`)
const fail = (message: string, code: number) => {
  process.stderr.write(`${program}: ${message.split("\n")[0]}\n`)
  process.exitCode = code
}

const messageOf = (error: unknown): string =>
  typeof (error as { message?: unknown })?.message === "string" && (error as { message: string }).message !== "" ? (error as { message: string }).message : String(error)

export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  const parsed = parseArgs(spec, argv)
  if (parsed instanceof UsageError) return fail(parsed.message, 2)
  if (parsed.kind === "help") return out(parsed.text)
  if (parsed.kind === "version") return out(`${program} ${(await import("../platform/packageInfo.ts")).packageVersion()}`)
  const path = parsed.command.path.join(" ")
  try {
    if (path.startsWith("cert ")) return await (await import("./cert.ts")).runCertCommand(path, parsed.args, parsed.flags, out)
    if (localCommands.has(path)) return out((await import("./completion.ts")).completionScript(parsed.args.shell as "bash" | "zsh", spec))
    if (serverCommands.has(path)) {
      process.exitCode = await (await import("./up.ts")).runServer(path, parsed.flags, out, fail)
      return
    }
    const { runClientCommand } = await import("./commands.ts")
    await runClientCommand(path, parsed.args, parsed.flags, out, process.env, process.stdout.isTTY === true)
  } catch (error) {
    fail(messageOf(error), error instanceof UsageError ? 2 : 1)
  }
}

await main(process.argv.slice(2))
