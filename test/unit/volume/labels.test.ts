// Labels → VolumeSpec: defaults, every allowed value, and every kind of refusal with its message.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect } from "effect"
import {
  formatLabel,
  formatLabels,
  Label,
  LabelError,
  parseLabelArg,
  parseLabelArgs,
  parseLabels,
  specLabels,
  validateLabels,
  checkSpecChange,
  type VolumeSpec,
} from "../../../lib/volume/labels.ts"

const Labels = suite("volume/labels")

const spec = (labels: Record<string, string>): VolumeSpec => {
  const result = validateLabels(labels)
  if (result instanceof LabelError) throw new Error(`expected a spec, got ${result.message}`)
  return result
}
const refusal = (labels: Record<string, string>): LabelError => {
  const result = validateLabels(labels)
  if (!(result instanceof LabelError)) throw new Error(`expected a LabelError, got ${JSON.stringify(result)}`)
  return result
}

Labels("no labels gives the StorageOS defaults: 0 replicas, soft, tolerance 0, compressed", () => {
  assert.equal(spec({}), { replicas: 0, failureMode: "soft", failureTolerance: 0, hintMaster: undefined, nocompress: false })
})

Labels("default tolerance is 1 for one replica and replicas - 1 for more", () => {
  const expected = [0, 1, 1, 2, 3, 4]
  for (let replicas = 0; replicas <= 5; replicas++) {
    assert.is(spec({ [Label.replicas]: String(replicas) }).failureTolerance, expected[replicas], `replicas=${replicas}`)
  }
})

Labels("every known label is read", () => {
  assert.equal(
    spec({
      [Label.replicas]: "3",
      [Label.failureMode]: "hard",
      [Label.failureTolerance]: "2",
      [Label.hintMaster]: "node-7",
      [Label.nocompress]: "true",
      app: "postgres",
      "example.com/team": "storage",
      "empty-value": "",
    }),
    { replicas: 3, failureMode: "hard", failureTolerance: 2, hintMaster: "node-7", nocompress: true },
  )
  for (const mode of ["hard", "soft", "alwayson"] as const) assert.is(spec({ [Label.failureMode]: mode }).failureMode, mode)
  assert.is(spec({ [Label.nocompress]: "false" }).nocompress, false)
})

const badValues: ReadonlyArray<[key: string, value: string, reason: LabelError["reason"]]> = [
  [Label.replicas, "2.0", "malformed-value"],
  [Label.replicas, " 2", "malformed-value"],
  [Label.replicas, "2 ", "malformed-value"],
  [Label.replicas, "02", "malformed-value"],
  [Label.replicas, "+2", "malformed-value"],
  [Label.replicas, "two", "malformed-value"],
  [Label.replicas, "", "malformed-value"],
  [Label.replicas, "0x2", "malformed-value"],
  [Label.replicas, "1e1", "malformed-value"],
  [Label.replicas, "-1", "out-of-range"],
  [Label.replicas, "6", "out-of-range"],
  [Label.replicas, "7", "out-of-range"],
  [Label.replicas, "99999999999", "out-of-range"],
  [Label.failureTolerance, "5", "out-of-range"],
  [Label.failureTolerance, "one", "malformed-value"],
  [Label.failureMode, "Hard", "malformed-value"],
  [Label.failureMode, "always-on", "malformed-value"],
  [Label.failureMode, "", "malformed-value"],
  [Label.nocompress, "yes", "malformed-value"],
  [Label.nocompress, "TRUE", "malformed-value"],
  [Label.hintMaster, "Node1", "malformed-value"],
  [Label.hintMaster, "-node", "malformed-value"],
  [Label.hintMaster, "node.example", "malformed-value"],
  [Label.hintMaster, "a".repeat(64), "malformed-value"],
  [Label.hintMaster, "", "malformed-value"],
  ["app", "-bad", "malformed-value"],
  ["app", "a b", "malformed-value"],
  ["app", "x".repeat(64), "malformed-value"],
  ["app", "ünï", "malformed-value"],
]

Labels("bad values are refused with the label, the value and the reason", () => {
  for (const [key, value, reason] of badValues) {
    const error = refusal({ [key]: value })
    assert.is(error._tag, "LabelError")
    assert.is(error.reason, reason, `${key}=${JSON.stringify(value)}`)
    assert.is(error.label, key)
    assert.is(error.value, value)
    assert.ok(error.message.includes(key) && error.message.includes("allowed"), error.message)
    assert.ok(error.allowed.length > 0)
  }
})

Labels("the message reads: label, quoted value, what is allowed", () => {
  assert.is(refusal({ [Label.replicas]: "7" }).message, `label storageos.com/replicas="7" is out of range: allowed an integer 0..5`)
  assert.is(refusal({ [Label.failureMode]: "firm" }).message, `label storageos.com/failure.mode="firm" has a malformed value: allowed hard | soft | alwayson`)
})

Labels("unknown storageos.com labels are refused and the known ones are listed", () => {
  const error = refusal({ "storageos.com/replica": "2" })
  assert.is(error.reason, "unknown-label")
  for (const known of Object.values(Label)) assert.ok(error.allowed.includes(known), known)
})

Labels("malformed user label keys are refused", () => {
  const badKeys = ["", "-app", "app-", "a/b/c", "/name", "Example.com/x", "example..com/x", "a b", `${"a".repeat(64)}`, `example.com/${"n".repeat(64)}`, `${"a".repeat(254)}/x`]
  for (const key of badKeys) assert.is(refusal({ [key]: "v" }).reason, "malformed-key", JSON.stringify(key))
  const goodKeys = ["a", "A_b.c-D", "example.com/app", `${"a".repeat(63)}.${"b".repeat(63)}/${"n".repeat(63)}`]
  for (const key of goodKeys) assert.is(spec({ [key]: "v" }).replicas, 0, key)
})

Labels("tolerance above replicas is a conflict naming both labels", () => {
  const error = refusal({ [Label.replicas]: "2", [Label.failureTolerance]: "3" })
  assert.is(error.reason, "conflict")
  assert.ok(error.message.includes(Label.replicas) && error.message.includes(Label.failureTolerance), error.message)
  assert.is(refusal({ [Label.failureTolerance]: "1" }).reason, "conflict", "replicas defaults to 0")
  assert.is(spec({ [Label.replicas]: "2", [Label.failureTolerance]: "2" }).failureTolerance, 2)
  assert.is(spec({ [Label.replicas]: "2", [Label.failureTolerance]: "0" }).failureTolerance, 0)
})

Labels("the error reported does not depend on key order", () => {
  const a = refusal({ zz: "-x", [Label.replicas]: "9" })
  const b = refusal({ [Label.replicas]: "9", zz: "-x" })
  assert.equal([a.label, a.reason], [b.label, b.reason])
})

Labels("too many labels are refused", () => {
  const labels: Record<string, string> = {}
  for (let i = 0; i < 65; i++) labels[`l${i}`] = "v"
  assert.is(refusal(labels).reason, "out-of-range")
})

Labels("parseLabels fails the Effect with the LabelError, matchable by _tag and reason", async () => {
  const ok = await Effect.runPromise(parseLabels({ [Label.replicas]: "1" }))
  assert.is(ok.failureTolerance, 1)
  const reason = await Effect.runPromise(
    parseLabels({ [Label.replicas]: "6" }).pipe(
      Effect.map(() => "none"),
      Effect.catchTag("LabelError", (e) => Effect.succeed(e.reason)),
    ),
  )
  assert.is(reason, "out-of-range")
})

Labels("specLabels round-trips through validateLabels", () => {
  const specs: VolumeSpec[] = [
    { replicas: 0, failureMode: "soft", failureTolerance: 0, hintMaster: undefined, nocompress: false },
    { replicas: 5, failureMode: "alwayson", failureTolerance: 4, hintMaster: "n1", nocompress: true },
    { replicas: 2, failureMode: "hard", failureTolerance: 0, hintMaster: undefined, nocompress: false },
  ]
  for (const s of specs) assert.equal(spec(specLabels(s)), s)
})

Labels("CLI: parseLabelArg splits at the first = and checks the label", () => {
  assert.equal(parseLabelArg("storageos.com/replicas=2"), ["storageos.com/replicas", "2"])
  const twoEquals = parseLabelArg("app=a=b")
  assert.ok(twoEquals instanceof LabelError && twoEquals.reason === "malformed-value" && twoEquals.label === "app" && twoEquals.value === "a=b")
  assert.equal(parseLabelArg("note="), ["note", ""])
  const noEquals = parseLabelArg("storageos.com/replicas")
  assert.ok(noEquals instanceof LabelError && noEquals.reason === "malformed-key")
  const outOfRange = parseLabelArg("storageos.com/replicas=9")
  assert.ok(outOfRange instanceof LabelError && outOfRange.reason === "out-of-range")
  const unknown = parseLabelArg("storageos.com/replica=1")
  assert.ok(unknown instanceof LabelError && unknown.reason === "unknown-label")
  assert.is(formatLabel("app", "db"), "app=db")
  assert.is(formatLabels({ b: "2", a: "1" }), "a=1,b=2")
})

Labels("CLI: parseLabelArgs collects labels and refuses the same key with two values", () => {
  assert.equal(parseLabelArgs(["app=db", "storageos.com/replicas=1", "app=db"]), { app: "db", "storageos.com/replicas": "1" })
  const twice = parseLabelArgs(["app=db", "app=web"])
  assert.ok(twice instanceof LabelError && twice.reason === "conflict", String(twice))
})

Labels("huge input is reported on one line", () => {
  const error = refusal({ app: "x".repeat(100_000) })
  assert.ok(error.message.length < 400, `message length ${error.message.length}`)
})

Labels("storageos.com/encryption: true | false at creation; changing it later is refused with the reason", () => {
  assert.is(spec({ [Label.encryption]: "true" }).encryption, true)
  assert.is(spec({ [Label.encryption]: "false" }).encryption, undefined)
  assert.is(spec({}).encryption, undefined)
  const bad = refusal({ [Label.encryption]: "yes" })
  assert.is(bad.reason, "malformed-value")
  assert.match(bad.message, /true \| false/)
  assert.equal(validateLabels(specLabels(spec({ [Label.encryption]: "true" }))), spec({ [Label.encryption]: "true" }))
  const encrypted = spec({ [Label.encryption]: "true" })
  const plain = spec({})
  assert.is(checkSpecChange(encrypted, spec({ [Label.encryption]: "true", [Label.replicas]: "2" }), {}), undefined)
  assert.is(checkSpecChange(plain, spec({ [Label.replicas]: "1" }), {}), undefined)
  const off = checkSpecChange(encrypted, plain, {})
  assert.is(off?.reason, "immutable")
  assert.match(off?.message ?? "", /cannot be changed after creation: the volume is stored encrypted/)
  const on = checkSpecChange(plain, encrypted, { [Label.encryption]: "true" })
  assert.is(on?.reason, "immutable")
  assert.match(on?.message ?? "", /stored in plain/)
})

Labels.run()
