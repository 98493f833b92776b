/**
 * The `replivol …` commands a reader finds in the docs: every one in a fenced shell block
 * (```sh, bash, shell, console — concrete, copy-pasteable lines; `npx replivol`, `$(…)`, `<(…)`,
 * pipes and comments handled), and every backticked `replivol …` span in a table row (synopses:
 * `[optional]` parts kept, `a|b` takes `a`, `…` dropped, PLACEHOLDERS replaced by a valid sample).
 * Pure: markdown text in, commands with their line out.
 */

export interface DocCommand {
  readonly file: string
  readonly line: number
  readonly text: string
  readonly argv: ReadonlyArray<string>
  /** From a fenced shell block (runnable as is), or a table's synopsis. */
  readonly source: "shell" | "table"
}

const shellFence = /^\s*```(sh|bash|shell|console|zsh)\s*$/
const operators = new Set(["|", "&", ";", ">", "<", "(", ")"])

/** Words and operators of one shell line (quotes group, `#` at a word start ends the line). */
export const shellWords = (line: string): string[] => {
  const out: string[] = []
  let word = ""
  let inWord = false
  let quote: string | undefined
  const end = () => {
    if (inWord) out.push(word)
    word = ""
    inWord = false
  }
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined
      else word += ch
      continue
    }
    if (ch === "'" || ch === '"') {
      quote = ch
      inWord = true
    } else if (/\s/.test(ch)) end()
    else if (operators.has(ch)) {
      end()
      out.push(`\u0000${ch}`)
    } else if (ch === "#" && !inWord) break
    else {
      word += ch
      inWord = true
    }
  }
  end()
  return out
}

/** The argv after each bare `replivol` word of a shell line, up to the next operator. */
const fromShellLine = (line: string): string[][] => {
  const words = shellWords(line)
  const found: string[][] = []
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== "replivol") continue
    // The command, not the package name (`npm install replivol`): first word, after an operator, or after npx.
    const before = words[i - 1]
    const starts = (at: number) => at < 0 || words[at]!.startsWith("\u0000")
    if (!(starts(i - 1) || (before === "npx" && starts(i - 2)))) continue
    const argv: string[] = []
    for (let j = i + 1; j < words.length && !words[j]!.startsWith("\u0000"); j++) argv.push(words[j]!)
    found.push(argv)
  }
  return found
}

const flagSamples: Readonly<Record<string, string>> = {
  size: "1GiB", nodes: "3", port: "5703", weight: "5", timeout: "60", "lease-ttl-ms": "3000",
  api: "127.0.0.1:5705", address: "127.0.0.1:5703", label: "k=v", action: "add", shell: "bash",
}
const isPlaceholder = (word: string) => /^[A-Z][A-Z0-9_]*(?:[/:,.=][A-Z0-9_,]*)*$/.test(word)

/** A synopsis such as `replivol volume create NS/NAME --size 1GiB [--label k=v]…` → a concrete argv. */
export const synopsisArgv = (synopsis: string): string[] => {
  const words = synopsis.replace(/\\\|/g, "|").replace(/[[\]]/g, "").replace(/…|\.\.\.(?=\s|$)/g, " ").trim().split(/\s+/).slice(1)
  const argv: string[] = []
  for (const raw of words) {
    const word = raw.includes("|") && !raw.startsWith("-") ? raw.split("|")[0]! : raw
    if (!isPlaceholder(word)) {
      argv.push(word)
      continue
    }
    const previous = argv.at(-1)
    const flag = previous?.startsWith("-") ? previous.replace(/^-+/, "") : undefined
    argv.push((flag && flagSamples[flag]) ?? word.toLowerCase())
  }
  return argv
}

export const docCommands = (file: string, markdown: string): DocCommand[] => {
  const found: DocCommand[] = []
  let fenced = false
  let shell = false
  markdown.split("\n").forEach((text, index) => {
    const line = index + 1
    if (/^\s*```/.test(text)) {
      shell = !fenced && shellFence.test(text)
      fenced = !fenced
      return
    }
    if (fenced) {
      if (shell) for (const argv of fromShellLine(text)) found.push({ file, line, text: text.trim(), argv, source: "shell" })
      return
    }
    if (!text.trimStart().startsWith("|")) return
    for (const span of text.matchAll(/`(replivol [^`]+)`/g)) found.push({ file, line, text: span[1]!, argv: synopsisArgv(span[1]!), source: "table" })
  })
  return found
}
