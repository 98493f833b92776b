// Namespace rules: validation of untrusted input, and application order and effects at creation.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import { applyRules, makeRule, type Rule, RuleError, validateRule } from "../../../lib/policy/rules.ts"
import { Label, LabelError, validateLabels } from "../../../lib/volume/labels.ts"

const Rules = suite("policy/rules")

const rule = (input: Record<string, unknown>): Rule => {
  const result = validateRule({ namespace: "default", selector: "", ...input })
  if (result instanceof RuleError) throw new Error(result.message)
  return result
}
const refused = (input: unknown): RuleError => {
  const result = validateRule(input)
  if (!(result instanceof RuleError)) throw new Error(`expected a RuleError, got ${JSON.stringify(result)}`)
  return result
}

const base = { name: "r1", namespace: "default", selector: "env==prod", labels: { [Label.replicas]: "2" } }

Rules("defaults: action add, weight 5, active, empty description", () => {
  assert.equal(validateRule(base), { ...base, description: "", action: "add", weight: 5, active: true })
})

// [field overrides, reason, field]
const badInputs: ReadonlyArray<[Record<string, unknown>, RuleError["reason"], string]> = [
  [{ name: "R1" }, "bad-name", "name"],
  [{ name: "" }, "bad-name", "name"],
  [{ name: 7 }, "bad-name", "name"],
  [{ name: undefined }, "bad-name", "name"],
  [{ namespace: "kube_system" }, "bad-namespace", "namespace"],
  [{ namespace: "a".repeat(64) }, "bad-namespace", "namespace"],
  [{ description: 5 }, "bad-description", "description"],
  [{ description: "x".repeat(1025) }, "bad-description", "description"],
  [{ selector: "env===prod" }, "bad-selector", "selector"],
  [{ selector: undefined }, "bad-selector", "selector"],
  [{ action: "delete" }, "bad-action", "action"],
  [{ weight: 11 }, "bad-weight", "weight"],
  [{ weight: -1 }, "bad-weight", "weight"],
  [{ weight: 2.5 }, "bad-weight", "weight"],
  [{ weight: "3" }, "bad-weight", "weight"],
  [{ active: "yes" }, "bad-active", "active"],
  [{ labels: {} }, "bad-label", "labels"],
  [{ labels: [] }, "bad-label", "labels"],
  [{ labels: { [Label.replicas]: "7" } }, "bad-label", `labels.${Label.replicas}`],
  [{ labels: { [Label.replicas]: 2 } }, "bad-label", `labels.${Label.replicas}`],
  [{ labels: { "storageos.com/replica": "2" } }, "bad-label", "labels.storageos.com/replica"],
  [{ labels: { "bad key": "x" } }, "bad-label", "labels.bad key"],
  [{ labels: { app: "-x" } }, "bad-label", "labels.app"],
  [{ actve: false }, "unknown-field", "actve"],
]

Rules("bad input is refused naming the field, with a reason to match on", () => {
  for (const [overrides, reason, field] of badInputs) {
    const e = refused({ ...base, ...overrides })
    assert.equal([e._tag, e.reason, e.field], ["RuleError", reason, field], `${JSON.stringify(overrides)}: ${e.message}`)
    assert.ok(e.message.startsWith("rule "), e.message)
  }
  assert.is(refused(null).reason, "not-an-object")
  assert.is(refused("rule").reason, "not-an-object")
})

Rules("the selector error's column survives into the rule error", () => {
  const e = refused({ ...base, selector: "env===prod" })
  assert.ok(e.message.includes(`unexpected "=" at column 6, expected a value`), e.message)
})

Rules("a remove rule may name a label with an empty value (remove whatever the value)", () => {
  assert.is(rule({ name: "r", action: "remove", labels: { [Label.replicas]: "" } }).action, "remove")
  assert.is(refused({ ...base, labels: { [Label.replicas]: "" } }).reason, "bad-label", "an add rule may not set replicas to empty")
})

Rules("makeRule fails the Effect with the RuleError", async () => {
  const reason = await Effect.runPromise(
    makeRule({ ...base, weight: 99 }).pipe(
      Effect.map(() => "none"),
      Effect.catchTag("RuleError", (e) => Effect.succeed(e.reason)),
    ),
  )
  assert.is(reason, "bad-weight")
  assert.is((await Effect.runPromise(makeRule(base))).name, "r1")
})

Rules("env==prod adds storageos.com/replicas=2", () => {
  const rules = [rule({ name: "prod-replicas", selector: "env==prod", labels: { [Label.replicas]: "2" } })]
  assert.equal(applyRules(rules, "default", { env: "prod" }), { labels: { env: "prod", [Label.replicas]: "2" }, applied: ["prod-replicas"] })
  assert.equal(applyRules(rules, "default", { env: "dev" }), { labels: { env: "dev" }, applied: [] })
})

const replicaPolicy = (): Rule[] => [
  rule({ name: "default-replicas", selector: `!${Label.replicas}`, labels: { [Label.replicas]: "1" }, weight: 1 }),
  rule({ name: "at-least-two", selector: `${Label.replicas}<2`, labels: { [Label.replicas]: "2" }, weight: 2 }),
]

Rules("!replicas adds a default, then replicas<2 raises it to 2: later rules see earlier changes", () => {
  const { labels, applied } = applyRules(replicaPolicy(), "default", {})
  assert.equal(labels, { [Label.replicas]: "2" })
  assert.equal(applied, ["default-replicas", "at-least-two"])
  assert.equal(applyRules(replicaPolicy(), "default", { [Label.replicas]: "3" }), { labels: { [Label.replicas]: "3" }, applied: [] })
})

Rules("lower weight applies first, whatever the list order; ties go by name", () => {
  const heavy = rule({ name: "a-heavy", labels: { tier: "gold" }, weight: 9 })
  const light = rule({ name: "z-light", labels: { tier: "bronze" }, weight: 0 })
  assert.equal(applyRules([heavy, light], "default", {}), { labels: { tier: "gold" }, applied: ["z-light", "a-heavy"] })
  assert.equal(applyRules([light, heavy], "default", {}).applied, ["z-light", "a-heavy"])
  const b = rule({ name: "b", labels: { tier: "b" } })
  const a = rule({ name: "a", labels: { tier: "a" } })
  assert.equal(applyRules([b, a], "default", {}), { labels: { tier: "b" }, applied: ["a", "b"] })
})

Rules("inactive rules and other namespaces' rules are ignored", () => {
  const rules = [
    rule({ name: "off", labels: { x: "1" }, active: false }),
    rule({ name: "elsewhere", namespace: "other", labels: { y: "1" } }),
    rule({ name: "here", labels: { z: "1" } }),
  ]
  assert.equal(applyRules(rules, "default", {}), { labels: { z: "1" }, applied: ["here"] })
  assert.equal(applyRules(rules, "other", {}), { labels: { y: "1" }, applied: ["elsewhere"] })
  assert.equal(applyRules(rules, "nobody", { a: "b" }), { labels: { a: "b" }, applied: [] })
})

Rules("remove deletes a key, or only a matching value when the rule gives one", () => {
  const any = rule({ name: "no-hint", action: "remove", labels: { [Label.hintMaster]: "" } })
  const exact = rule({ name: "no-alwayson", action: "remove", labels: { [Label.failureMode]: "alwayson" } })
  const input = { [Label.hintMaster]: "node1", [Label.failureMode]: "alwayson" }
  assert.equal(applyRules([any, exact], "default", input), { labels: {}, applied: ["no-alwayson", "no-hint"] })
  assert.equal(applyRules([exact], "default", { [Label.failureMode]: "hard" }).labels, { [Label.failureMode]: "hard" })
})

Rules("the input labels are not modified", () => {
  const input = { env: "prod" }
  applyRules([rule({ name: "r", labels: { x: "1" } })], "default", input)
  assert.equal(input, { env: "prod" })
})

Rules("applying then parseLabels gives the volume the namespace enforces", () => {
  const rules = [
    ...replicaPolicy(),
    rule({ name: "prod-hard", selector: "env in (prod,staging)", labels: { [Label.failureMode]: "hard" }, weight: 3 }),
    rule({ name: "no-alwayson", action: "remove", labels: { [Label.failureMode]: "alwayson" }, weight: 0 }),
  ]
  const cases: ReadonlyArray<[Record<string, string>, { replicas: number; failureMode: string; failureTolerance: number }]> = [
    [{}, { replicas: 2, failureMode: "soft", failureTolerance: 1 }],
    [{ env: "prod" }, { replicas: 2, failureMode: "hard", failureTolerance: 1 }],
    [{ env: "dev", [Label.failureMode]: "alwayson" }, { replicas: 2, failureMode: "soft", failureTolerance: 1 }],
    [{ [Label.replicas]: "4" }, { replicas: 4, failureMode: "soft", failureTolerance: 3 }],
  ]
  for (const [input, expected] of cases) {
    const spec = validateLabels(applyRules(rules, "default", input).labels)
    if (spec instanceof LabelError) throw new Error(spec.message)
    assert.equal({ replicas: spec.replicas, failureMode: spec.failureMode, failureTolerance: spec.failureTolerance }, expected, JSON.stringify(input))
  }
})

Rules.run()
