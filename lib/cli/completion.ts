/**
 * Shell completion scripts for `replivol completion bash|zsh`, generated from the command table
 * (lib/cli/spec.ts) so they can never offer a command or flag the parser refuses. The bash
 * script is a completion function driven by COMP_WORDS/COMP_CWORD; the zsh script loads zsh's
 * bash-completion emulation (bashcompinit) and registers the same function. Pure: text out.
 *
 * The script walks the words typed so far, skipping flags and the value of a flag that takes
 * one, to find the command path; then it offers the next command word, a fixed choice
 * (`--action add|remove`, `completion bash|zsh`), directories for directory flags, or the
 * command's flags when the current word starts with "-".
 */
import { flagIndex, type CommandSpec, type FlagSpec, type ProgramSpec } from "./args.ts"

const directoryFlags = new Set(["data", "mount", "dir"])
const fileFlags = new Set(["secret-file", "encryption-key-file", "tls-cert", "tls-key", "tls-ca"])

const quote = (text: string) => `"${text.replace(/(["\\$`])/g, "\\$1")}"`

const flagWords = (flags: ReadonlyArray<FlagSpec>): string =>
  flags.flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]).join(" ")

/** The next words after each command-path prefix: "" → groups, "volume" → create ls inspect rm. */
const nextWords = (commands: ReadonlyArray<CommandSpec>): Map<string, Set<string>> => {
  const next = new Map<string, Set<string>>()
  for (const command of commands) {
    for (let depth = 0; depth < command.path.length; depth++) {
      const prefix = command.path.slice(0, depth).join(" ")
      const words = next.get(prefix) ?? new Set<string>()
      words.add(command.path[depth]!)
      next.set(prefix, words)
    }
    const choices = command.args[0]?.choices
    if (choices) next.set(command.path.join(" "), new Set(choices))
  }
  return next
}

const bashFunction = (spec: ProgramSpec, fn: string): string => {
  const { byName } = flagIndex(spec)
  const valueFlags = [...byName.values()].filter((f) => f.kind !== "boolean")
  const choiceCases = valueFlags.filter((f) => f.choices).map((f) => `    ${[`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])].join("|")}) COMPREPLY=($(compgen -W ${quote(f.choices!.join(" "))} -- "$cur")); return 0 ;;`)
  const dirs = valueFlags.filter((f) => directoryFlags.has(f.name)).flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])])
  const files = valueFlags.filter((f) => fileFlags.has(f.name)).map((f) => `--${f.name}`)
  const wordCases = [...nextWords(spec.commands)].map(([prefix, words]) => `    ${quote(prefix)}) words=${quote([...words].join(" "))} ;;`)
  const longestFirst = [...spec.commands].sort((a, b) => b.path.length - a.path.length)
  const flagCases = longestFirst.map((c) => `    ${quote(c.path.join(" "))}|${quote(`${c.path.join(" ")} `)}*) flags=${quote(flagWords([...c.flags, ...spec.globalFlags]))} ;;`)
  const rootFlags = flagWords([...spec.globalFlags, ...(spec.sharedFlags?.flags ?? [])])
  return `${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev=""
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local value_flags=${quote(` ${flagWords(valueFlags)} `)}
  case "$prev" in
${[...choiceCases, ...(dirs.length ? [`    ${dirs.join("|")}) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;`] : []), ...(files.length ? [`    ${files.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;`] : [])].join("\n")}
  esac
  if [[ "$value_flags" == *" $prev "* ]]; then COMPREPLY=(); return 0; fi
  local path="" word i skip=0
  for (( i = 1; i < COMP_CWORD; i++ )); do
    word="\${COMP_WORDS[i]}"
    if (( skip )); then skip=0; continue; fi
    if [[ "$value_flags" == *" $word "* ]]; then skip=1; continue; fi
    [[ "$word" == -* ]] && continue
    path="\${path:+$path }$word"
  done
  local words="" flags=${quote(rootFlags)}
  case "$path" in
${wordCases.join("\n")}
  esac
  case "$path" in
${flagCases.join("\n")}
  esac
  if [[ "$cur" == -* ]]; then words="$flags"; fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  return 0
}`
}

/** The completion script for `shell`. */
export const completionScript = (shell: "bash" | "zsh", spec: ProgramSpec): string => {
  if (shell === "bash") {
    return [
      `# ${spec.name} completion for bash. Load it now:   source <(${spec.name} completion bash)`,
      `# or for every shell:   ${spec.name} completion bash > /etc/bash_completion.d/${spec.name}   (or ~/.local/share/bash-completion/completions/${spec.name})`,
      bashFunction(spec, `_${spec.name}`),
      `complete -F _${spec.name} ${spec.name}`,
      "",
    ].join("\n")
  }
  return [
    `# ${spec.name} completion for zsh. Add to ~/.zshrc (after compinit):   source <(${spec.name} completion zsh)`,
    "autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }",
    "autoload -U +X bashcompinit && bashcompinit",
    bashFunction(spec, `_${spec.name}_complete`),
    `complete -F _${spec.name}_complete ${spec.name}`,
    "",
  ].join("\n")
}
