/**
 * Label selectors: which volumes a namespace rule applies to.
 *
 * Kubernetes-style expressions, comma-separated requirements that must all hold:
 *   key==v   key=v   key!=v   key in (a,b)   key notin (a,b)   key   !key   key<N   key>N
 * `!=` and `notin` also match when the key is absent (as Kubernetes); `<` and `>` compare integers
 * and do not match a missing or non-integer value. The empty selector matches everything.
 *
 * The parser is a loop over tokens (no recursion) with bounded input, and each error says where
 * (0-based `position`, shown as a 1-based column) and what was expected. Pure.
 */
import { Data, Effect } from "effect"
import { isLabelKey, isLabelValue } from "../volume/labels.ts"

/** Characters in one selector expression. */
export const selectorBytesMax = 1024
/** Requirements in one selector. */
export const selectorRequirementsMax = 64
/** Values in one `in (…)` / `notin (…)` set. */
export const selectorSetValuesMax = 64

export type Requirement =
  | { readonly op: "eq"; readonly key: string; readonly value: string }
  | { readonly op: "neq"; readonly key: string; readonly value: string }
  | { readonly op: "in"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "notin"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "exists"; readonly key: string }
  | { readonly op: "absent"; readonly key: string }
  | { readonly op: "lt"; readonly key: string; readonly bound: number }
  | { readonly op: "gt"; readonly key: string; readonly bound: number }

export interface Selector {
  readonly requirements: ReadonlyArray<Requirement>
  readonly source: string
}

export type SelectorErrorReason = "syntax" | "bad-key" | "bad-value" | "too-long"

export class SelectorError extends Data.TaggedError("SelectorError")<{
  readonly reason: SelectorErrorReason
  readonly source: string
  /** 0-based index into `source` of the offending token (the message shows column = position + 1). */
  readonly position: number
  readonly message: string
}> {}

// ---------------------------------------------------------------------------------------------
// Tokens

type TokenKind = "word" | "op" | "bad" | "end"
interface Token {
  readonly kind: TokenKind
  readonly text: string
  readonly position: number
}

const wordChar = /[A-Za-z0-9._\-/]/
const operators = ["==", "!=", "=", "!", "<", ">", "(", ")", ","] as const

/** Splits the source into words, operators and single bad characters; ends with an `end` token. */
const tokenize = (source: string): ReadonlyArray<Token> => {
  const tokens: Token[] = []
  let index = 0
  while (index < source.length) {
    const char = source[index]!
    if (char === " " || char === "\t") {
      index++
      continue
    }
    if (wordChar.test(char)) {
      const start = index
      while (index < source.length && wordChar.test(source[index]!)) index++
      tokens.push({ kind: "word", text: source.slice(start, index), position: start })
      continue
    }
    const op = operators.find((candidate) => source.startsWith(candidate, index))
    tokens.push({ kind: op === undefined ? "bad" : "op", text: op ?? char, position: index })
    index += op?.length ?? 1
  }
  tokens.push({ kind: "end", text: "", position: source.length })
  return tokens
}

// ---------------------------------------------------------------------------------------------
// Errors

const shownSourceMax = 120
const showSource = (source: string): string =>
  JSON.stringify(source.length > shownSourceMax ? `${source.slice(0, shownSourceMax)}…` : source)

const selectorError = (reason: SelectorErrorReason, source: string, position: number, what: string): SelectorError =>
  new SelectorError({ reason, source, position, message: `selector ${showSource(source)}: ${what}` })

const unexpected = (source: string, token: Token, expected: string): SelectorError =>
  selectorError(
    "syntax",
    source,
    token.position,
    `${token.kind === "end" ? "unexpected end" : `unexpected ${JSON.stringify(token.text)}`} at column ${token.position + 1}, expected ${expected}`,
  )

// ---------------------------------------------------------------------------------------------
// Parser: a cursor over the tokens, one requirement at a time

class Cursor {
  index = 0
  constructor(
    readonly source: string,
    readonly tokens: ReadonlyArray<Token>,
  ) {}
  peek(): Token {
    return this.tokens[Math.min(this.index, this.tokens.length - 1)]!
  }
  next(): Token {
    const token = this.peek()
    if (this.index < this.tokens.length - 1) this.index++
    return token
  }
  isOp(text: string): boolean {
    const token = this.peek()
    return token.kind === "op" && token.text === text
  }
  /** The next token ends this requirement (a "," or the end). */
  atBoundary(): boolean {
    return this.peek().kind === "end" || this.isOp(",")
  }
}

const readKey = (cursor: Cursor): string | SelectorError => {
  const token = cursor.next()
  if (token.kind !== "word") return unexpected(cursor.source, token, "a label key")
  if (!isLabelKey(token.text)) {
    return selectorError("bad-key", cursor.source, token.position, `${JSON.stringify(token.text)} at column ${token.position + 1} is not a label key: expected [prefix/]name of A-Z a-z 0-9 . _ -`)
  }
  return token.text
}

const badValue = (cursor: Cursor, token: Token, expected: string): SelectorError =>
  selectorError("bad-value", cursor.source, token.position, `${JSON.stringify(token.text)} at column ${token.position + 1} is not ${expected}`)

/** A value after `=`, `==` or `!=`: may be empty (then the requirement ends right here). */
const readValue = (cursor: Cursor): string | SelectorError => {
  if (cursor.atBoundary()) return ""
  const token = cursor.next()
  if (token.kind !== "word") return unexpected(cursor.source, token, "a value")
  if (!isLabelValue(token.text)) return badValue(cursor, token, "a label value: expected up to 63 of A-Z a-z 0-9 . _ -")
  return token.text
}

const boundPattern = /^-?[0-9]{1,15}$/

const readBound = (cursor: Cursor): number | SelectorError => {
  const token = cursor.next()
  if (token.kind !== "word") return unexpected(cursor.source, token, "an integer")
  if (!boundPattern.test(token.text)) return badValue(cursor, token, "an integer")
  return Number(token.text)
}

/** `( v1, v2, … )`: at least one value, each a non-empty label value. */
const readSet = (cursor: Cursor): ReadonlyArray<string> | SelectorError => {
  const open = cursor.next()
  if (open.kind !== "op" || open.text !== "(") return unexpected(cursor.source, open, `"("`)
  const values: string[] = []
  for (;;) {
    const token = cursor.next()
    if (token.kind !== "word") return unexpected(cursor.source, token, "a value")
    if (!isLabelValue(token.text)) return badValue(cursor, token, "a label value: expected up to 63 of A-Z a-z 0-9 . _ -")
    if (values.length === selectorSetValuesMax) {
      return selectorError("too-long", cursor.source, token.position, `more than ${selectorSetValuesMax} values in a set at column ${token.position + 1}`)
    }
    values.push(token.text)
    const separator = cursor.next()
    if (separator.kind === "op" && separator.text === ")") return values
    if (separator.kind !== "op" || separator.text !== ",") return unexpected(cursor.source, separator, `"," or ")"`)
  }
}

type Built = Requirement | SelectorError

const withValue = (cursor: Cursor, key: string, op: "eq" | "neq"): Built => {
  const value = readValue(cursor)
  return value instanceof SelectorError ? value : { op, key, value }
}
const withSet = (cursor: Cursor, key: string, op: "in" | "notin"): Built => {
  const values = readSet(cursor)
  return values instanceof SelectorError ? values : { op, key, values }
}
const withBound = (cursor: Cursor, key: string, op: "lt" | "gt"): Built => {
  const bound = readBound(cursor)
  return bound instanceof SelectorError ? bound : { op, key, bound }
}

/** One requirement, from its first token to just before the "," or end that follows it. */
const readRequirement = (cursor: Cursor): Built => {
  const negated = cursor.isOp("!")
  if (negated) cursor.next()
  const key = readKey(cursor)
  if (key instanceof SelectorError) return key
  if (negated || cursor.atBoundary()) return { op: negated ? "absent" : "exists", key }
  const token = cursor.next()
  if (token.kind === "op") {
    if (token.text === "=" || token.text === "==") return withValue(cursor, key, "eq")
    if (token.text === "!=") return withValue(cursor, key, "neq")
    if (token.text === "<") return withBound(cursor, key, "lt")
    if (token.text === ">") return withBound(cursor, key, "gt")
  }
  if (token.kind === "word" && token.text === "in") return withSet(cursor, key, "in")
  if (token.kind === "word" && token.text === "notin") return withSet(cursor, key, "notin")
  return unexpected(cursor.source, token, `an operator (=, ==, !=, in, notin, <, >) or ","`)
}

/** Parses a selector expression. Synchronous; never throws. */
export const parseSelector = (source: string): Selector | SelectorError => {
  if (source.length > selectorBytesMax) {
    return selectorError("too-long", source, selectorBytesMax, `${source.length} characters, more than the ${selectorBytesMax} allowed`)
  }
  const cursor = new Cursor(source, tokenize(source))
  const requirements: Requirement[] = []
  if (cursor.peek().kind === "end") return { requirements, source }
  for (;;) {
    const start = cursor.peek()
    if (requirements.length === selectorRequirementsMax) {
      return selectorError("too-long", source, start.position, `more than ${selectorRequirementsMax} requirements (at column ${start.position + 1})`)
    }
    const requirement = readRequirement(cursor)
    if (requirement instanceof SelectorError) return requirement
    requirements.push(requirement)
    const separator = cursor.next()
    if (separator.kind === "end") return { requirements, source }
    if (separator.kind !== "op" || separator.text !== ",") return unexpected(source, separator, `"," or the end`)
  }
}

/** `parseSelector` as an Effect that fails with the `SelectorError`. */
export const parseSelectorEffect = (source: string): Effect.Effect<Selector, SelectorError> =>
  Effect.suspend(() => {
    const result = parseSelector(source)
    return result instanceof SelectorError ? Effect.fail(result) : Effect.succeed(result)
  })

// ---------------------------------------------------------------------------------------------
// Matching

const integerValue = /^-?[0-9]{1,15}$/

const requirementHolds = (requirement: Requirement, labels: Readonly<Record<string, string>>): boolean => {
  const present = Object.hasOwn(labels, requirement.key)
  const value = present ? labels[requirement.key] : undefined
  switch (requirement.op) {
    case "eq":
      return value === requirement.value
    case "neq":
      return value !== requirement.value
    case "in":
      return value !== undefined && requirement.values.includes(value)
    case "notin":
      return value === undefined || !requirement.values.includes(value)
    case "exists":
      return present
    case "absent":
      return !present
    case "lt":
      return value !== undefined && integerValue.test(value) && Number(value) < requirement.bound
    case "gt":
      return value !== undefined && integerValue.test(value) && Number(value) > requirement.bound
  }
}

/** True when every requirement holds for `labels` (the empty selector matches everything). */
export const matches = (selector: Selector, labels: Readonly<Record<string, string>>): boolean =>
  selector.requirements.every((requirement) => requirementHolds(requirement, labels))

const formatRequirement = (requirement: Requirement): string => {
  switch (requirement.op) {
    case "eq":
      return `${requirement.key}==${requirement.value}`
    case "neq":
      return `${requirement.key}!=${requirement.value}`
    case "in":
      return `${requirement.key} in (${requirement.values.join(",")})`
    case "notin":
      return `${requirement.key} notin (${requirement.values.join(",")})`
    case "exists":
      return requirement.key
    case "absent":
      return `!${requirement.key}`
    case "lt":
      return `${requirement.key}<${requirement.bound}`
    case "gt":
      return `${requirement.key}>${requirement.bound}`
  }
}

/** The canonical text of a selector (parses back to the same requirements). */
export const formatSelector = (selector: Selector): string => selector.requirements.map(formatRequirement).join(",")
