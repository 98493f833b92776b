/**
 * Namespace rules, applied to a volume's labels when it is created.
 *
 * StorageOS v1 rules let a namespace enforce a data-protection policy: a rule has a selector over
 * volume labels, an action (`add` sets its labels, `remove` deletes them), a weight 0..10 and an
 * `active` flag. Rules are evaluated from the lowest weight (ties by name, so the order never
 * depends on storage order), each against the labels as changed by the rules before it.
 *
 * Pure: `validateRule` turns untrusted input (JSON from the CLI or the control store) into a
 * `Rule` or a `RuleError`; `applyRules` is a function of rules, namespace and labels.
 */
import { isRecord } from "../core/guards.ts"
import { Data, Effect } from "effect"
import { assert } from "../core/assert.ts"
import { checkLabel, checkLabelKey, isDnsLabel, labelCountMax } from "../volume/labels.ts"
import { matches, parseSelector, SelectorError, type Selector } from "./selector.ts"

export type RuleAction = "add" | "remove"

export interface Rule {
  readonly name: string
  readonly namespace: string
  readonly description: string
  readonly selector: string
  readonly action: RuleAction
  readonly labels: Readonly<Record<string, string>>
  /** 0..10; lower weights apply first. */
  readonly weight: number
  readonly active: boolean
}

/** Highest rule weight (StorageOS v1: 0..10). */
export const ruleWeightMax = 10
export const ruleWeightDefault = 5
/** Characters in a rule's description. */
export const ruleDescriptionBytesMax = 1024

export type RuleErrorReason =
  | "not-an-object"
  | "unknown-field"
  | "bad-name"
  | "bad-namespace"
  | "bad-description"
  | "bad-selector"
  | "bad-action"
  | "bad-weight"
  | "bad-label"
  | "bad-active"

export class RuleError extends Data.TaggedError("RuleError")<{
  readonly reason: RuleErrorReason
  /** The input field that was wrong: "name", "weight", "labels.<key>", … ("" for the whole input). */
  readonly field: string
  /** The offending value as text (cut to a line). */
  readonly value: string
  readonly message: string
}> {}

const ruleFields = ["name", "namespace", "description", "selector", "action", "labels", "weight", "active"] as const

const shownValueMax = 80
const showValue = (value: unknown): string => {
  let text: string
  try {
    text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value))
  } catch {
    text = String(value)
  }
  return text.length > shownValueMax ? `${text.slice(0, shownValueMax)}…` : text
}

const ruleError = (reason: RuleErrorReason, field: string, value: unknown, what: string): RuleError => {
  const shown = showValue(value)
  return new RuleError({ reason, field, value: shown, message: `rule ${field || "input"}=${JSON.stringify(shown)} ${what}` })
}

const dnsLabelText = "a DNS label: 1..63 of a-z 0-9 -, starting and ending with a letter or digit"

const readName = (input: Record<string, unknown>, field: "name" | "namespace"): string | RuleError => {
  const value = input[field]
  return typeof value === "string" && isDnsLabel(value)
    ? value
    : ruleError(field === "name" ? "bad-name" : "bad-namespace", field, value, `is not allowed: expected ${dnsLabelText}`)
}

const readDescription = (input: Record<string, unknown>): string | RuleError => {
  const value = input.description ?? ""
  return typeof value === "string" && value.length <= ruleDescriptionBytesMax
    ? value
    : ruleError("bad-description", "description", value, `is not allowed: expected text of at most ${ruleDescriptionBytesMax} characters`)
}

const readSelector = (input: Record<string, unknown>): string | RuleError => {
  const value = input.selector
  if (typeof value !== "string") return ruleError("bad-selector", "selector", value, "is not allowed: expected a selector expression (text, may be empty)")
  const parsed = parseSelector(value)
  return parsed instanceof SelectorError ? new RuleError({ reason: "bad-selector", field: "selector", value: showValue(value), message: `rule ${parsed.message}` }) : value
}

const readAction = (input: Record<string, unknown>): RuleAction | RuleError => {
  const value = input.action ?? "add"
  return value === "add" || value === "remove" ? value : ruleError("bad-action", "action", value, "is not allowed: expected add | remove")
}

const readWeight = (input: Record<string, unknown>): number | RuleError => {
  const value = input.weight ?? ruleWeightDefault
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= ruleWeightMax
    ? value
    : ruleError("bad-weight", "weight", value, `is out of range: expected an integer 0..${ruleWeightMax}`)
}

const readActive = (input: Record<string, unknown>): boolean | RuleError => {
  const value = input.active ?? true
  return typeof value === "boolean" ? value : ruleError("bad-active", "active", value, "is not allowed: expected true | false")
}


/**
 * Rule labels must be valid labels. An `add` rule's values must be allowed for their label (so a
 * rule can never force an invalid volume); a `remove` rule's value may be empty (remove whatever
 * the value), else it must be allowed too.
 */
const readLabels = (input: Record<string, unknown>, action: RuleAction): Record<string, string> | RuleError => {
  const value = input.labels
  if (!isRecord(value)) return ruleError("bad-label", "labels", value, "is not allowed: expected an object of label key → value")
  const keys = Object.keys(value).sort()
  if (keys.length === 0 || keys.length > labelCountMax) {
    return ruleError("bad-label", "labels", value, `has ${keys.length} labels: expected 1..${labelCountMax}`)
  }
  const out: Record<string, string> = {}
  for (const key of keys) {
    const labelValue = value[key]
    if (typeof labelValue !== "string") return ruleError("bad-label", `labels.${key}`, labelValue, "is not allowed: expected a text value")
    const error = action === "remove" && labelValue === "" ? checkLabelKey(key) : checkLabel(key, labelValue)
    if (error !== undefined) return new RuleError({ reason: "bad-label", field: `labels.${key}`, value: labelValue, message: `rule ${error.message}` })
    out[key] = labelValue
  }
  return out
}

/** Turns untrusted input into a `Rule`; the first wrong field (in a fixed order) is reported. Never throws. */
export const validateRule = (input: unknown): Rule | RuleError => {
  if (!isRecord(input)) return ruleError("not-an-object", "", input, "is not allowed: expected an object with name, namespace, selector, labels")
  const unknown = Object.keys(input).find((key) => !(ruleFields as ReadonlyArray<string>).includes(key))
  if (unknown !== undefined) return ruleError("unknown-field", unknown, input[unknown], `is not a rule field: expected one of ${ruleFields.join(", ")}`)
  const name = readName(input, "name")
  if (name instanceof RuleError) return name
  const namespace = readName(input, "namespace")
  if (namespace instanceof RuleError) return namespace
  const description = readDescription(input)
  if (description instanceof RuleError) return description
  const selector = readSelector(input)
  if (selector instanceof RuleError) return selector
  const action = readAction(input)
  if (action instanceof RuleError) return action
  const labels = readLabels(input, action)
  if (labels instanceof RuleError) return labels
  const weight = readWeight(input)
  if (weight instanceof RuleError) return weight
  const active = readActive(input)
  if (active instanceof RuleError) return active
  return { name, namespace, description, selector, action, labels, weight, active }
}

/** `validateRule` as an Effect that fails with the `RuleError`. */
export const makeRule = (input: unknown): Effect.Effect<Rule, RuleError> =>
  Effect.suspend(() => {
    const result = validateRule(input)
    return result instanceof RuleError ? Effect.fail(result) : Effect.succeed(result)
  })

/** Evaluation order: weight ascending, then name, then insertion (equal names in one namespace are a caller bug). */
const byWeightThenName = (a: Rule, b: Rule): number =>
  a.weight !== b.weight ? a.weight - b.weight : a.name < b.name ? -1 : a.name > b.name ? 1 : 0

const applyAction = (rule: Rule, labels: Record<string, string>): void => {
  for (const [key, value] of Object.entries(rule.labels)) {
    if (rule.action === "add") labels[key] = value
    else if (value === "" || labels[key] === value) delete labels[key]
  }
}

const compiled = (rule: Rule): Selector => {
  const selector = parseSelector(rule.selector)
  assert(!(selector instanceof SelectorError), `rule ${rule.namespace}/${rule.name} has a valid selector (rules come from validateRule)`)
  return selector
}

/**
 * Applies the active rules of `namespace` to `labels` (not modified; a new object is returned).
 * `applied` lists, in evaluation order, the rules whose selector matched.
 */
export const applyRules = (
  rules: ReadonlyArray<Rule>,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): { labels: Record<string, string>; applied: ReadonlyArray<string> } => {
  const current: Record<string, string> = { ...labels }
  const applied: string[] = []
  const chosen = rules.filter((rule) => rule.active && rule.namespace === namespace).sort(byWeightThenName)
  for (const rule of chosen) {
    if (!matches(compiled(rule), current)) continue
    applyAction(rule, current)
    applied.push(rule.name)
  }
  return { labels: current, applied }
}
