/**
 * `replivol` entry point: parse argv, run the command, set the exit code. Every failure is one
 * line on stderr, `replivol: <reason>`, and exit code 1 (2 for a usage error). The server commands
 * run until SIGINT/SIGTERM, which closes their scope (unmount, stop nodes) and exits 0.
 */
import { Cause, Effect, Exit, Fiber, type Scope } from "effect"
import { parseArgs, UsageError } from "./args.ts"
import { about, commands, program, runClientCommand, type Flags, type Output } from "./commands.ts"
// The server commands (cluster up, node start) load the whole cluster, etcd and FUSE code; the
// client commands only need HTTP. Loading the former lazily keeps `replivol volume ls` quick.
const servers = () => import("./up.ts")

const out = (line: string) => void process.stdout.write(`${line}\n`)
const fail = (message: string, code: number) => {
  process.stderr.write(`${program}: ${message.split("\n")[0]}\n`)
  process.exitCode = code
}

const messageOf = (error: unknown): string =>
  typeof (error as { message?: unknown })?.message === "string" && (error as { message: string }).message !== "" ? (error as { message: string }).message : String(error)

const runServer = (run: (flags: Flags, out: Output) => Effect.Effect<void, unknown, Scope.Scope>, flags: Flags) =>
  new Promise<void>((resolve) => {
    const fiber = Effect.runFork(Effect.scoped(Effect.suspend(() => run(flags, out))))
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      out(`${signal}: stopping (unmount, stop nodes)…`)
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", () => stop("SIGINT"))
    process.on("SIGTERM", () => stop("SIGTERM"))
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit) || (stopping && Cause.hasInterruptsOnly(exit.cause))) {
        out("stopped")
        process.exitCode = 0
      } else {
        const failure = exit.cause.reasons.find((r) => r._tag === "Fail") as { error?: unknown } | undefined
        const die = exit.cause.reasons.find((r) => r._tag === "Die") as { defect?: unknown } | undefined
        fail(messageOf(failure?.error ?? die?.defect ?? Cause.pretty(exit.cause)), 1)
      }
      resolve()
    })
  })

export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  const parsed = parseArgs(program, about, commands, argv)
  if (parsed instanceof UsageError) return fail(parsed.message, 2)
  if (parsed.kind === "help") return out(parsed.text)
  const path = parsed.command.path.join(" ")
  try {
    if (path === "cluster up") return await runServer((await servers()).clusterUp, parsed.flags)
    if (path === "node start") return await runServer((await servers()).nodeStart, parsed.flags)
    await runClientCommand(path, parsed.args, parsed.flags, out, process.env, process.stdout.isTTY === true)
  } catch (error) {
    fail(messageOf(error), 1)
  }
}

await main(process.argv.slice(2))
