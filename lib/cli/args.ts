/**
 * A small declarative command-line parser: a table of commands (word paths such as
 * `volume create`), each with positional arguments and flags, global flags accepted anywhere
 * (`replivol --api X volume ls` as well as `replivol volume ls --api X`), one-letter aliases
 * (`-s 1GiB`), value checks that name the flag, the bad value and what is allowed, and generated
 * `--help`.
 *
 * It imports nothing: `replivol --help`, usage errors and shell completion load only this file and
 * the command table (lib/cli/spec.ts), which keeps them fast. Hand-rolled rather than
 * `effect/cli` for the same reason, and because exact one-line errors and exit codes matter more
 * here than features. Pure: argv in, a parse result or a `UsageError` out.
 */

export interface FlagSpec {
  readonly name: string
  /** `string` takes a value, `boolean` does not, `repeat` takes a value and may be given many times. */
  readonly kind: "string" | "boolean" | "repeat"
  /** One-letter alias: `-s` for `--size`. */
  readonly short?: string
  readonly help: string
  readonly placeholder?: string
  readonly default?: string
  /** The command cannot run without it. */
  readonly required?: boolean
  /** Checks one value: undefined when it is fine, else what is allowed ("a whole number 0..10"). */
  readonly check?: (value: string) => string | undefined
  /** Values offered by shell completion. */
  readonly choices?: ReadonlyArray<string>
}

export interface ArgSpec {
  readonly name: string
  readonly help: string
  /** When given, the only values allowed (and offered by shell completion). */
  readonly choices?: ReadonlyArray<string>
}

export interface CommandSpec {
  readonly path: ReadonlyArray<string>
  readonly summary: string
  readonly args: ReadonlyArray<ArgSpec>
  readonly flags: ReadonlyArray<FlagSpec>
}

/** The whole command line: its commands and the flags every command accepts (help, version). */
export interface ProgramSpec {
  readonly name: string
  readonly about: string
  readonly commands: ReadonlyArray<CommandSpec>
  readonly globalFlags: ReadonlyArray<FlagSpec>
  /** Flags most commands share (the admin API connection), listed once in the root help. */
  readonly sharedFlags?: { readonly title: string; readonly flags: ReadonlyArray<FlagSpec> }
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

export interface VersionRequest {
  readonly kind: "version"
}

export type UsageReason = "unknown-command" | "unknown-flag" | "missing-value" | "missing-argument" | "missing-flag" | "extra-argument" | "bad-value"

/** The user typed something the table does not allow: exit code 2. */
export class UsageError extends Error {
  readonly _tag = "UsageError"
  constructor(readonly reason: UsageReason, message: string) {
    super(message)
  }
}

// ---- value checks (used by the command table)

/** A whole number in min..max. */
export const wholeNumberIn = (min: number, max: number, unit = "") => (value: string): string | undefined => {
  const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) && n >= min && n <= max ? undefined : `a whole number ${min}..${max}${unit}`
}

/** Any number (fractions allowed) in min..max. */
export const numberIn = (min: number, max: number, unit = "") => (value: string): string | undefined => {
  const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN
  return Number.isFinite(n) && n >= min && n <= max ? undefined : `a number ${min}..${max}${unit}`
}

export const oneOf = (choices: ReadonlyArray<string>) => (value: string): string | undefined =>
  choices.includes(value) ? undefined : `one of ${choices.join(", ")}`

// ---- help

const flagLeft = (flag: FlagSpec): string =>
  `${flag.short ? `-${flag.short}, ` : "    "}--${flag.name}${flag.kind === "boolean" ? "" : ` ${flag.placeholder ?? "VALUE"}`}`

const flagLine = (flag: FlagSpec): string => {
  const extra = flag.required ? " (required)" : flag.default !== undefined && flag.default !== "" ? ` (default ${flag.default})` : flag.kind === "repeat" ? " (repeatable)" : ""
  return `  ${flagLeft(flag).padEnd(30)} ${flag.help}${extra}`
}

const usageLine = (program: string, command: CommandSpec): string =>
  [program, ...command.path, ...command.args.map((a) => a.name.toUpperCase()), command.flags.length > 0 ? "[flags]" : ""].filter((s) => s !== "").join(" ")

/** Help for one command: usage, arguments, flags with aliases and defaults. */
export const commandHelp = (spec: ProgramSpec, command: CommandSpec): string => {
  const lines = [command.summary, "", `Usage: ${usageLine(spec.name, command)}`]
  if (command.args.length > 0) {
    lines.push("", "Arguments:")
    for (const arg of command.args) lines.push(`  ${arg.name.toUpperCase().padEnd(30)} ${arg.help}`)
  }
  lines.push("", "Flags:")
  for (const flag of [...command.flags, ...spec.globalFlags]) lines.push(flagLine(flag))
  return lines.join("\n")
}

/** Help for a group (or the root): the commands under `prefix`. */
export const groupHelp = (spec: ProgramSpec, prefix: ReadonlyArray<string>): string => {
  const under = spec.commands.filter((c) => prefix.every((word, i) => c.path[i] === word))
  const lines = [spec.about, "", `Usage: ${[spec.name, ...prefix].join(" ")} COMMAND [flags]`, "", "Commands:"]
  for (const command of under) lines.push(`  ${command.path.join(" ").padEnd(22)} ${command.summary}`)
  lines.push("", "Global flags (anywhere on the line):")
  for (const flag of spec.globalFlags) lines.push(flagLine(flag))
  if (spec.sharedFlags) {
    lines.push("", `${spec.sharedFlags.title}:`)
    for (const flag of spec.sharedFlags.flags) lines.push(flagLine(flag))
  }
  lines.push("", `Run "${spec.name} COMMAND --help" for a command's arguments and flags. Exit codes: 0 ok, 1 the operation failed, 2 usage error.`)
  return lines.join("\n")
}

// ---- the table's own consistency

/** Every flag of the table by name and by alias; a name or alias meaning two different things is a defect of the table. */
export const flagIndex = (spec: ProgramSpec): { readonly byName: ReadonlyMap<string, FlagSpec>; readonly byShort: ReadonlyMap<string, FlagSpec>; readonly conflicts: ReadonlyArray<string> } => {
  const byName = new Map<string, FlagSpec>()
  const byShort = new Map<string, FlagSpec>()
  const conflicts: string[] = []
  for (const flag of [...spec.globalFlags, ...spec.commands.flatMap((c) => c.flags)]) {
    const known = byName.get(flag.name)
    if (known && (known.kind !== flag.kind || known.short !== flag.short)) conflicts.push(`--${flag.name} is declared twice with a different kind or alias`)
    if (!known) byName.set(flag.name, flag)
    if (flag.short !== undefined) {
      const other = byShort.get(flag.short)
      if (other && other.name !== flag.name) conflicts.push(`-${flag.short} stands for both --${other.name} and --${flag.name}`)
      if (!other) byShort.set(flag.short, flag)
    }
  }
  return { byName, byShort, conflicts }
}

// ---- parsing

interface Given {
  readonly flag: FlagSpec
  readonly value: string | boolean
}

interface Tokens {
  readonly words: ReadonlyArray<string>
  readonly given: ReadonlyArray<Given>
}

const isShortToken = (token: string) => /^-[A-Za-z]$/.test(token)
const isLongToken = (token: string) => token.startsWith("--") && token.length > 2
const isFlagLike = (token: string) => isLongToken(token) || /^-[A-Za-z]/.test(token)

/** Splits argv into command words and flags; a flag is known by its name alone (the table keeps names unambiguous). */
const tokenize = (spec: ProgramSpec, argv: ReadonlyArray<string>): Tokens | UsageError => {
  const { byName, byShort } = flagIndex(spec)
  const words: string[] = []
  const given: Given[] = []
  let rest = false
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!
    if (rest || !isFlagLike(token)) {
      if (!rest && token === "--") rest = true
      else words.push(token)
      continue
    }
    const [name, inline] = isLongToken(token) ? (token.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]) : [token.slice(1), undefined]
    const flag = isLongToken(token) ? byName.get(name) : isShortToken(token) ? byShort.get(name) : undefined
    if (!flag) return new UsageError("unknown-flag", `unknown flag ${token.split("=")[0]}: run "${spec.name} --help" for the commands and "${spec.name} COMMAND --help" for their flags`)
    if (flag.kind === "boolean") {
      if (inline !== undefined && inline !== "true" && inline !== "false") return new UsageError("bad-value", `--${flag.name} "${inline}" is not valid: expected true or false (or no value)`)
      given.push({ flag, value: inline !== "false" })
      continue
    }
    const value = inline ?? argv[++index]
    if (value === undefined) return new UsageError("missing-value", `flag --${flag.name} needs a value (${flag.placeholder ?? "VALUE"})`)
    given.push({ flag, value })
  }
  return { words, given }
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
export const parseArgs = (spec: ProgramSpec, argv: ReadonlyArray<string>): Parsed | HelpRequest | VersionRequest | UsageError => {
  const tokens = tokenize(spec, argv)
  if (tokens instanceof UsageError) return tokens
  const wantsHelp = tokens.given.some((g) => g.flag.name === "help" && g.value === true)
  const command = matchCommand(spec.commands, tokens.words)
  if (command === undefined) {
    const prefix = tokens.words.slice(0, 1).filter((w) => spec.commands.some((c) => c.path[0] === w))
    if (wantsHelp || tokens.words.length === 0 || (prefix.length === 1 && tokens.words.length === 1)) {
      if (!wantsHelp && tokens.words.length === 0 && tokens.given.some((g) => g.flag.name === "version" && g.value === true)) return { kind: "version" }
      return { kind: "help", text: groupHelp(spec, prefix) }
    }
    return new UsageError("unknown-command", `unknown command "${tokens.words.join(" ")}": run "${spec.name} --help" for the commands`)
  }
  if (wantsHelp) return { kind: "help", text: commandHelp(spec, command) }
  if (tokens.given.some((g) => g.flag.name === "version" && g.value === true)) return { kind: "version" }
  return bindCommand(spec, command, tokens)
}

const bindCommand = (spec: ProgramSpec, command: CommandSpec, tokens: Tokens): Parsed | UsageError => {
  const where = `"${spec.name} ${command.path.join(" ")}"`
  const flags: Record<string, FlagValue> = {}
  for (const flag of command.flags) {
    if (flag.default !== undefined) flags[flag.name] = flag.default
    else if (flag.kind === "boolean") flags[flag.name] = false
    else if (flag.kind === "repeat") flags[flag.name] = []
  }
  for (const { flag, value } of tokens.given) {
    if (spec.globalFlags.some((g) => g.name === flag.name)) continue
    const own = command.flags.find((f) => f.name === flag.name)
    if (!own) return new UsageError("unknown-flag", `unknown flag --${flag.name} for ${where}: run "${spec.name} ${command.path.join(" ")} --help"`)
    if (typeof value === "string") {
      const allowed = own.check?.(value)
      if (allowed !== undefined) return new UsageError("bad-value", `--${own.name} "${value}" is not valid: expected ${allowed}`)
    }
    flags[own.name] = own.kind === "repeat" ? [...(flags[own.name] as ReadonlyArray<string>), value as string] : value
  }
  const missing = command.flags.find((f) => f.required && (flags[f.name] === undefined || flags[f.name] === ""))
  if (missing) return new UsageError("missing-flag", `${where} needs --${missing.name} ${missing.placeholder ?? "VALUE"}: usage: ${usageLine(spec.name, command)}`)
  const positionals = tokens.words.slice(command.path.length)
  const args: Record<string, string> = {}
  for (const [i, arg] of command.args.entries()) {
    const value = positionals[i]
    if (value === undefined) return new UsageError("missing-argument", `missing ${arg.name.toUpperCase()}: usage: ${usageLine(spec.name, command)}`)
    if (arg.choices && !arg.choices.includes(value)) return new UsageError("bad-value", `${arg.name.toUpperCase()} "${value}" is not valid: expected one of ${arg.choices.join(", ")}`)
    args[arg.name] = value
  }
  if (positionals.length > command.args.length) {
    return new UsageError("extra-argument", `unexpected argument "${positionals[command.args.length]}": usage: ${usageLine(spec.name, command)}`)
  }
  return { kind: "run", command, args, flags }
}
