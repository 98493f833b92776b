/**
 * A small declarative command-line parser: a table of commands (word paths such as
 * `volume create`), each with positional arguments and `--flags`, and generated `--help`.
 *
 * Hand-rolled rather than `effect/cli` because that one needs `@effect/platform-node` services
 * (FileSystem, Terminal, ChildProcessSpawner, Stdio) which this package does not install, and the
 * CLI's needs are small: exact one-line errors and exit codes matter more than features. Pure:
 * argv in, a parse result or a `UsageError` out.
 */
import { Data } from "effect"

export interface FlagSpec {
  readonly name: string
  /** `string` takes a value, `boolean` does not, `repeat` takes a value and may be given many times. */
  readonly kind: "string" | "boolean" | "repeat"
  readonly help: string
  readonly placeholder?: string
  readonly default?: string
}

export interface ArgSpec {
  readonly name: string
  readonly help: string
}

export interface CommandSpec {
  readonly path: ReadonlyArray<string>
  readonly summary: string
  readonly args: ReadonlyArray<ArgSpec>
  readonly flags: ReadonlyArray<FlagSpec>
}

export type FlagValue = string | boolean | ReadonlyArray<string>

export interface Parsed {
  readonly kind: "run"
  readonly command: CommandSpec
  readonly args: Readonly<Record<string, string>>
  readonly flags: Readonly<Record<string, FlagValue>>
}

export interface HelpRequest {
  readonly kind: "help"
  readonly text: string
}

export class UsageError extends Data.TaggedError("UsageError")<{
  readonly reason: "unknown-command" | "unknown-flag" | "missing-value" | "missing-argument" | "extra-argument"
  readonly message: string
}> {}

const usageLine = (program: string, command: CommandSpec): string =>
  [program, ...command.path, ...command.args.map((a) => a.name.toUpperCase()), command.flags.length > 0 ? "[flags]" : ""].filter((s) => s !== "").join(" ")

/** Help for one command: usage, arguments, flags with defaults. */
export const commandHelp = (program: string, command: CommandSpec): string => {
  const lines = [`${command.summary}`, "", `Usage: ${usageLine(program, command)}`]
  if (command.args.length > 0) {
    lines.push("", "Arguments:")
    for (const arg of command.args) lines.push(`  ${arg.name.toUpperCase().padEnd(24)} ${arg.help}`)
  }
  lines.push("", "Flags:")
  for (const flag of [...command.flags, { name: "help", kind: "boolean" as const, help: "show this help" }]) {
    const left = flag.kind === "boolean" ? `--${flag.name}` : `--${flag.name} ${(flag as FlagSpec).placeholder ?? "VALUE"}`
    const extra = (flag as FlagSpec).default !== undefined ? ` (default ${(flag as FlagSpec).default})` : flag.kind === "repeat" ? " (repeatable)" : ""
    lines.push(`  ${left.padEnd(24)} ${flag.help}${extra}`)
  }
  return lines.join("\n")
}

/** Help for a group (or the root): the commands under `prefix`. */
export const groupHelp = (program: string, commands: ReadonlyArray<CommandSpec>, prefix: ReadonlyArray<string>, about: string): string => {
  const under = commands.filter((c) => prefix.every((word, i) => c.path[i] === word))
  const lines = [about, "", `Usage: ${[program, ...prefix].join(" ")} COMMAND [flags]`, "", "Commands:"]
  for (const command of under) lines.push(`  ${command.path.join(" ").padEnd(22)} ${command.summary}`)
  lines.push("", `Run "${program} COMMAND --help" for a command's arguments and flags.`)
  return lines.join("\n")
}

const matchCommand = (commands: ReadonlyArray<CommandSpec>, words: ReadonlyArray<string>): CommandSpec | undefined => {
  let best: CommandSpec | undefined
  for (const command of commands) {
    const fits = command.path.every((word, i) => words[i] === word)
    if (fits && (best === undefined || command.path.length > best.path.length)) best = command
  }
  return best
}

/** Parses `argv` (without the program name). */
export const parseArgs = (program: string, about: string, commands: ReadonlyArray<CommandSpec>, argv: ReadonlyArray<string>): Parsed | HelpRequest | UsageError => {
  const wantsHelp = argv.includes("--help") || argv.includes("-h")
  const words = argv.filter((a) => !a.startsWith("-"))
  const command = matchCommand(commands, words)
  if (command === undefined) {
    const prefix = words.slice(0, 1).filter((w) => commands.some((c) => c.path[0] === w))
    if (wantsHelp || words.length === 0 || (prefix.length === 1 && words.length === 1)) return { kind: "help", text: groupHelp(program, commands, prefix, about) }
    return new UsageError({ reason: "unknown-command", message: `unknown command "${words.join(" ")}": run "${program} --help" for the commands` })
  }
  if (wantsHelp) return { kind: "help", text: commandHelp(program, command) }
  return parseCommand(program, command, argv)
}

const parseCommand = (program: string, command: CommandSpec, argv: ReadonlyArray<string>): Parsed | UsageError => {
  const flags: Record<string, FlagValue> = {}
  for (const flag of command.flags) {
    if (flag.default !== undefined) flags[flag.name] = flag.default
    else if (flag.kind === "boolean") flags[flag.name] = false
    else if (flag.kind === "repeat") flags[flag.name] = []
  }
  const positionals: string[] = []
  let skipped = 0
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!
    if (!token.startsWith("--")) {
      if (skipped < command.path.length) skipped++
      else positionals.push(token)
      continue
    }
    const [name, inline] = token.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    const flag = command.flags.find((f) => f.name === name)
    if (!flag) return new UsageError({ reason: "unknown-flag", message: `unknown flag --${name} for "${command.path.join(" ")}": run "${program} ${command.path.join(" ")} --help"` })
    if (flag.kind === "boolean") {
      flags[name] = inline === undefined ? true : inline !== "false"
      continue
    }
    const value = inline ?? argv[++index]
    if (value === undefined) return new UsageError({ reason: "missing-value", message: `flag --${name} needs a value (${flag.placeholder ?? "VALUE"})` })
    flags[name] = flag.kind === "repeat" ? [...(flags[name] as ReadonlyArray<string>), value] : value
  }
  const args: Record<string, string> = {}
  for (const [i, spec] of command.args.entries()) {
    const value = positionals[i]
    if (value === undefined) return new UsageError({ reason: "missing-argument", message: `missing ${spec.name.toUpperCase()}: usage: ${usageLine(program, command)}` })
    args[spec.name] = value
  }
  if (positionals.length > command.args.length) {
    return new UsageError({ reason: "extra-argument", message: `unexpected argument "${positionals[command.args.length]}": usage: ${usageLine(program, command)}` })
  }
  return { kind: "run", command, args, flags }
}
