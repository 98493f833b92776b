// Label selectors: every operator, Kubernetes semantics for absent keys, bounds and error positions.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import {
  formatSelector,
  matches,
  parseSelector,
  parseSelectorEffect,
  type Selector,
  SelectorError,
  selectorBytesMax,
  selectorRequirementsMax,
  selectorSetValuesMax,
} from "../../../lib/policy/selector.ts"

const Selectors = suite("policy/selector")

const parsed = (source: string): Selector => {
  const result = parseSelector(source)
  if (result instanceof SelectorError) throw new Error(result.message)
  return result
}
const refused = (source: string): SelectorError => {
  const result = parseSelector(source)
  if (!(result instanceof SelectorError)) throw new Error(`expected a SelectorError for ${JSON.stringify(source)}`)
  return result
}

const prod = { env: "prod", tier: "db", "storageos.com/replicas": "2" }
const dev = { env: "dev", "storageos.com/replicas": "x" }
const bare = {}

// [selector, matches prod, matches dev, matches bare]
const matchTable: ReadonlyArray<[string, boolean, boolean, boolean]> = [
  ["", true, true, true],
  ["env==prod", true, false, false],
  ["env=prod", true, false, false],
  ["env = prod", true, false, false],
  ["env!=prod", false, true, true],
  ["env in (prod,staging)", true, false, false],
  ["env in ( prod , staging )", true, false, false],
  ["env in(dev)", false, true, false],
  ["env notin (prod)", false, true, true],
  ["tier", true, false, false],
  ["!tier", false, true, true],
  [" ! tier ", false, true, true],
  ["storageos.com/replicas<2", false, false, false],
  ["storageos.com/replicas<3", true, false, false],
  ["storageos.com/replicas>1", true, false, false],
  ["storageos.com/replicas>2", false, false, false],
  ["storageos.com/replicas>-1", true, false, false],
  ["env==prod,tier==db", true, false, false],
  ["env==prod, tier==web", false, false, false],
  ["env, !tier", false, true, false],
  ["env!=prod,!tier", false, true, true],
  ["tier=", false, false, false],
]

Selectors("every operator against present, different and absent labels", () => {
  for (const [source, onProd, onDev, onBare] of matchTable) {
    const selector = parsed(source)
    assert.equal([matches(selector, prod), matches(selector, dev), matches(selector, bare)], [onProd, onDev, onBare], source)
  }
})

Selectors("key= with an empty value matches only an empty value", () => {
  const selector = parsed("note=")
  assert.ok(matches(selector, { note: "" }))
  assert.not.ok(matches(selector, { note: "x" }))
  assert.not.ok(matches(selector, {}))
})

Selectors("< and > compare integers; a non-integer value does not match", () => {
  assert.ok(matches(parsed("size>9"), { size: "10" }), "10 > 9 numerically, not as text")
  assert.not.ok(matches(parsed("size<9"), { size: "10" }))
  assert.not.ok(matches(parsed("size<9"), { size: "1.5" }))
  assert.not.ok(matches(parsed("size>0"), { size: "many" }))
})

Selectors("parsed requirements have a plain shape", () => {
  assert.equal(parsed("a==1, b in (x,y), !c, d<3").requirements, [
    { op: "eq", key: "a", value: "1" },
    { op: "in", key: "b", values: ["x", "y"] },
    { op: "absent", key: "c" },
    { op: "lt", key: "d", bound: 3 },
  ])
  assert.is(parsed(" env==prod ").source, " env==prod ")
})

Selectors("formatSelector gives canonical text that parses back to the same requirements", () => {
  for (const [source] of matchTable) {
    const selector = parsed(source)
    assert.equal(parsed(formatSelector(selector)).requirements, selector.requirements, source)
  }
})

Selectors("errors say where (column) and what was expected", () => {
  const e = refused("env===prod")
  assert.is(e._tag, "SelectorError")
  assert.is(e.reason, "syntax")
  assert.is(e.position, 5)
  assert.is(e.message, `selector "env===prod": unexpected "=" at column 6, expected a value`)
  assert.is(refused("env in prod").message, `selector "env in prod": unexpected "prod" at column 8, expected "("`)
  assert.is(refused("env in (a").message, `selector "env in (a": unexpected end at column 10, expected "," or ")"`)
})

// [source, reason, position]
const errorTable: ReadonlyArray<[string, SelectorError["reason"], number]> = [
  [",", "syntax", 0],
  ["env==prod,", "syntax", 10],
  ["env==prod,,tier", "syntax", 10],
  ["env prod", "syntax", 4],
  ["env in ()", "syntax", 8],
  ["env in (a,)", "syntax", 10],
  ["env in (a b)", "syntax", 10],
  ["env notin a", "syntax", 10],
  ["!", "syntax", 1],
  ["!env==x", "syntax", 4],
  ["env==prod)", "syntax", 9],
  ["env@prod", "syntax", 3],
  ["env<", "syntax", 4],
  ["-env", "bad-key", 0],
  ["a/b/c==x", "bad-key", 0],
  ["env==-prod", "bad-value", 5],
  ["env==a/b", "bad-value", 5],
  ["env in (a,-b)", "bad-value", 10],
  ["size<ten", "bad-value", 5],
  ["size>1.5", "bad-value", 5],
]

Selectors("malformed selectors are refused with a reason and a position", () => {
  for (const [source, reason, position] of errorTable) {
    const e = refused(source)
    assert.equal([e.reason, e.position], [reason, position], `${source}: ${e.message}`)
    assert.ok(e.message.includes(`column ${position + 1}`), e.message)
  }
})

Selectors("input is bounded: length, requirements and set size", () => {
  assert.is(refused("a".repeat(selectorBytesMax + 1)).reason, "too-long")
  const many = Array.from({ length: selectorRequirementsMax + 1 }, (_, i) => `k${i}`).join(",")
  assert.is(refused(many).reason, "too-long")
  assert.is(parsed(Array.from({ length: selectorRequirementsMax }, (_, i) => `k${i}`).join(",")).requirements.length, selectorRequirementsMax)
  const bigSet = `k in (${Array.from({ length: selectorSetValuesMax + 1 }, (_, i) => `v${i}`).join(",")})`
  assert.is(refused(bigSet).reason, "too-long")
  const error = refused("x".repeat(selectorBytesMax + 1))
  assert.ok(error.message.length < 300, "the message shows a cut of the source")
})

Selectors("deeply nested-looking input is handled without recursion", () => {
  const e = refused(`k in ${"(".repeat(1000)}`)
  assert.is(e.reason, "syntax")
})

Selectors("parseSelectorEffect fails with the SelectorError", async () => {
  const ok = await Effect.runPromise(parseSelectorEffect("env==prod"))
  assert.is(ok.requirements.length, 1)
  const reason = await Effect.runPromise(
    parseSelectorEffect("env===prod").pipe(
      Effect.map(() => "none"),
      Effect.catchTag("SelectorError", (e) => Effect.succeed(e.reason)),
    ),
  )
  assert.is(reason, "syntax")
})

Selectors.run()
