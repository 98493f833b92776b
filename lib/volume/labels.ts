/**
 * Volume labels → a validated `VolumeSpec`.
 *
 * A volume is described by labels, as in StorageOS v1: the `storageos.com/…` labels choose the
 * replica count, failure mode, failure tolerance, a preferred master node, compression, encryption
 * at rest and the node label whose values are the failure domains its copies are spread across; every
 * other label is the user's own and only has to be a well-formed Kubernetes-style label. A bad
 * label is refused at creation with a `LabelError` naming the label, its value and what is
 * allowed, so nothing is created from a half-understood request.
 *
 * Pure: no I/O. The checks are hand-written (regular expressions without nested quantifiers, and
 * every input bounded before it is matched) so each message can say exactly what was wrong.
 */
import { Data, Effect } from "effect"
import { failureToleranceMax, nodeNameBytesMax, replicasMax } from "../core/limits.ts"

export type FailureMode = "hard" | "soft" | "alwayson"

export interface VolumeSpec {
  readonly replicas: number
  readonly failureMode: FailureMode
  readonly failureTolerance: number
  readonly hintMaster: string | undefined
  readonly nocompress: boolean
  /** The node label whose values are failure domains to spread the copies across (default `defaultTopologyKey`). */
  readonly topologyKey?: string
  /** Every copy is stored encrypted (lib/crypt/); chosen at creation only (absent: false). */
  readonly encryption?: boolean
}

/** The labels replivol understands (StorageOS v1 names, kept for compatibility). */
export const Label = {
  replicas: "storageos.com/replicas",
  failureMode: "storageos.com/failure.mode",
  failureTolerance: "storageos.com/failure.tolerance",
  hintMaster: "storageos.com/hint.master",
  nocompress: "storageos.com/nocompress",
  topologyKey: "storageos.com/topology-key",
  encryption: "storageos.com/encryption",
} as const

/** The node label placement spreads a volume's copies across when the volume names none (Kubernetes' zone). */
export const defaultTopologyKey = "topology.kubernetes.io/zone"
/** StorageOS v1's failure-domain node label, honoured on nodes that lack the default key. */
export const legacyTopologyKey = "iaas/failure-domain"

/** Keys under this prefix are reserved for replivol; unknown ones are refused. */
export const reservedPrefix = "storageos.com/"
/** Labels on one volume (or in one rule). */
export const labelCountMax = 64
/** The name part of a label key, and a label value (Kubernetes). */
export const labelNameBytesMax = 63
/** The optional DNS-subdomain prefix of a label key (Kubernetes). */
export const labelPrefixBytesMax = 253

export const failureModes: ReadonlyArray<FailureMode> = ["hard", "soft", "alwayson"]

export type LabelErrorReason = "malformed-key" | "malformed-value" | "out-of-range" | "unknown-label" | "conflict" | "immutable"

export class LabelError extends Data.TaggedError("LabelError")<{
  readonly reason: LabelErrorReason
  readonly label: string
  readonly value: string
  readonly allowed: string
  readonly message: string
}> {}

const knownLabels: ReadonlyArray<string> = Object.values(Label)

const allowedText = {
  replicas: `an integer 0..${replicasMax}`,
  failureMode: failureModes.join(" | "),
  failureTolerance: `an integer 0..${failureToleranceMax}, at most ${Label.replicas}`,
  hintMaster: `a node name: 1..${nodeNameBytesMax} of a-z 0-9 -, starting and ending with a letter or digit`,
  nocompress: "true | false",
  topologyKey: "a node label key, [prefix/]name (for example topology.kubernetes.io/zone)",
  key: `[prefix/]name: prefix a DNS subdomain of at most ${labelPrefixBytesMax} characters, name 1..${labelNameBytesMax} of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit`,
  value: `0..${labelNameBytesMax} of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit`,
  unknown: `one of ${knownLabels.join(", ")}`,
} as const

const describeReason: Record<LabelErrorReason, string> = {
  "malformed-key": "has a malformed key",
  "malformed-value": "has a malformed value",
  "out-of-range": "is out of range",
  "unknown-label": "is not a known storageos.com label",
  conflict: "conflicts",
  immutable: "cannot be changed after creation",
}

/** Shown values are cut so that an error message stays a line, whatever the input. */
const shownValueMax = 80
const show = (text: string): string =>
  JSON.stringify(text.length > shownValueMax ? `${text.slice(0, shownValueMax)}…` : text)

const labelError = (reason: LabelErrorReason, label: string, value: string, allowed: string): LabelError =>
  new LabelError({
    reason,
    label,
    value,
    allowed,
    message: `label ${isLabelKey(label) ? label : show(label)}=${show(value)} ${describeReason[reason]}: allowed ${allowed}`,
  })

// ---------------------------------------------------------------------------------------------
// Syntax of keys, values and names

const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const labelNamePattern = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/

/** A DNS label (RFC 1123): node names, namespaces, rule names. */
export const isDnsLabel = (text: string): boolean => text.length <= 63 && dnsLabelPattern.test(text)

/** A DNS subdomain (RFC 1123): dot-separated DNS labels, at most 253 characters. */
export const isDnsSubdomain = (text: string): boolean =>
  text.length > 0 && text.length <= labelPrefixBytesMax && text.split(".").every(isDnsLabel)

/** A Kubernetes-style label key: `[prefix/]name`. */
export const isLabelKey = (key: string): boolean => {
  if (key.length > labelPrefixBytesMax + 1 + labelNameBytesMax) return false
  const slash = key.indexOf("/")
  if (slash < 0) return labelNamePattern.test(key)
  const prefix = key.slice(0, slash)
  const name = key.slice(slash + 1)
  return isDnsSubdomain(prefix) && labelNamePattern.test(name)
}

/** A Kubernetes-style label value: empty, or a label name. */
export const isLabelValue = (value: string): boolean => value === "" || labelNamePattern.test(value)

// ---------------------------------------------------------------------------------------------
// One label at a time

/** Strict decimal: no sign other than a leading "-", no spaces, no leading zeros, no fraction. */
const integerPattern = /^-?(0|[1-9][0-9]{0,14})$/

const parseIntegerIn = (label: string, value: string, max: number, allowed: string): number | LabelError => {
  if (!integerPattern.test(value)) return labelError("malformed-value", label, value, allowed)
  const n = Number(value)
  return n < 0 || n > max ? labelError("out-of-range", label, value, allowed) : n
}

const parseFailureMode = (value: string): FailureMode | LabelError =>
  (failureModes as ReadonlyArray<string>).includes(value)
    ? (value as FailureMode)
    : labelError("malformed-value", Label.failureMode, value, allowedText.failureMode)

const parseBoolean = (label: string, value: string): boolean | LabelError =>
  value === "true" ? true : value === "false" ? false : labelError("malformed-value", label, value, allowedText.nocompress)

const parseNodeName = (label: string, value: string): string | LabelError =>
  isDnsLabel(value) && value.length <= nodeNameBytesMax ? value : labelError("malformed-value", label, value, allowedText.hintMaster)

const keyError = (key: string, value: string): LabelError | undefined => {
  if (key.startsWith(reservedPrefix)) {
    return knownLabels.includes(key) ? undefined : labelError("unknown-label", key, value, allowedText.unknown)
  }
  return isLabelKey(key) ? undefined : labelError("malformed-key", key, value, allowedText.key)
}

/** The key alone: well-formed, and known if it is under `storageos.com/`. */
export const checkLabelKey = (key: string): LabelError | undefined => keyError(key, "")

/** The parsed value of a known label, or its error. */
type KnownValue = number | FailureMode | boolean | string
const parseKnown = (key: string, value: string): KnownValue | LabelError => {
  switch (key) {
    case Label.replicas:
      return parseIntegerIn(key, value, replicasMax, allowedText.replicas)
    case Label.failureMode:
      return parseFailureMode(value)
    case Label.failureTolerance:
      return parseIntegerIn(key, value, failureToleranceMax, allowedText.failureTolerance)
    case Label.hintMaster:
      return parseNodeName(key, value)
    case Label.nocompress:
    case Label.encryption:
      return parseBoolean(key, value)
    case Label.topologyKey:
      return isLabelKey(value) ? value : labelError("malformed-value", key, value, allowedText.topologyKey)
    default:
      return labelError("unknown-label", key, value, allowedText.unknown)
  }
}

/**
 * One label on its own: the key is well-formed (or a known `storageos.com/` label) and the value
 * is allowed for it. Cross-label rules (tolerance ≤ replicas) are checked by `validateLabels`.
 */
export const checkLabel = (key: string, value: string): LabelError | undefined => {
  const badKey = keyError(key, value)
  if (badKey !== undefined) return badKey
  if (key.startsWith(reservedPrefix)) {
    const known = parseKnown(key, value)
    return known instanceof LabelError ? known : undefined
  }
  return isLabelValue(value) ? undefined : labelError("malformed-value", key, value, allowedText.value)
}

// ---------------------------------------------------------------------------------------------
// All labels → VolumeSpec

/** StorageOS v1 default tolerance: 1 for one replica, replicas − 1 for more, 0 for none. */
export const defaultFailureTolerance = (replicas: number): number => (replicas <= 1 ? replicas : replicas - 1)

export const defaultSpec: VolumeSpec = {
  replicas: 0,
  failureMode: "soft",
  failureTolerance: 0,
  hintMaster: undefined,
  nocompress: false,
}

/**
 * Validates every label and builds the volume's spec. Keys are checked in sorted order, so the
 * error reported for a request with several bad labels is the same whatever the object's order.
 * `failure.tolerance` is accepted with any mode (only `soft` consults it) but never above
 * `replicas`. Synchronous; never throws.
 */
export const validateLabels = (labels: Readonly<Record<string, string>>): VolumeSpec | LabelError => {
  const keys = Object.keys(labels).sort()
  if (keys.length > labelCountMax) {
    return new LabelError({
      reason: "out-of-range",
      label: "",
      value: String(keys.length),
      allowed: `at most ${labelCountMax} labels`,
      message: `${keys.length} labels is out of range: allowed at most ${labelCountMax} labels on a volume`,
    })
  }
  for (const key of keys) {
    const value = labels[key]
    if (typeof value !== "string") return labelError("malformed-value", key, String(value), "a string")
    const error = checkLabel(key, value)
    if (error !== undefined) return error
  }
  return buildSpec(labels)
}

/** Builds the spec from labels already checked one by one; checks the cross-label conflict. */
const buildSpec = (labels: Readonly<Record<string, string>>): VolumeSpec | LabelError => {
  const replicasText = labels[Label.replicas]
  const toleranceText = labels[Label.failureTolerance]
  const modeText = labels[Label.failureMode]
  const replicas = replicasText === undefined ? defaultSpec.replicas : Number(replicasText)
  const failureTolerance = toleranceText === undefined ? defaultFailureTolerance(replicas) : Number(toleranceText)
  if (failureTolerance > replicas) {
    const shownReplicas = replicasText === undefined ? `${replicas} (the default)` : show(replicasText)
    return new LabelError({
      reason: "conflict",
      label: Label.failureTolerance,
      value: toleranceText ?? "",
      allowed: `at most ${Label.replicas} (${replicas})`,
      message: `label ${Label.failureTolerance}=${show(toleranceText ?? "")} conflicts with ${Label.replicas}=${shownReplicas}: allowed a tolerance of at most ${replicas}, the replica count`,
    })
  }
  return {
    replicas,
    failureMode: modeText === undefined ? defaultSpec.failureMode : (modeText as FailureMode),
    failureTolerance,
    hintMaster: labels[Label.hintMaster],
    nocompress: labels[Label.nocompress] === "true",
    ...(labels[Label.topologyKey] === undefined ? {} : { topologyKey: labels[Label.topologyKey] }),
    ...(labels[Label.encryption] === "true" ? { encryption: true } : {}),
  }
}

/**
 * A live volume's labels may change (volume update) except where the copies already depend on
 * them: `storageos.com/encryption` is chosen at creation (every copy is stored encrypted or plain
 * from the first byte; re-encrypting in place is not offered). Undefined: the change is allowed.
 */
export const checkSpecChange = (before: VolumeSpec, after: VolumeSpec, labels: Readonly<Record<string, string>>): LabelError | undefined => {
  const was = before.encryption === true
  if (was === (after.encryption === true)) return undefined
  const value = labels[Label.encryption] ?? ""
  return new LabelError({
    reason: "immutable",
    label: Label.encryption,
    value,
    allowed: `only at creation (this volume is stored ${was ? "encrypted" : "in plain"}): create a new volume${was ? "" : ` with ${Label.encryption}=true`} and copy the data`,
    message: `label ${Label.encryption}=${show(value)} cannot be changed after creation: the volume is stored ${was ? "encrypted" : "in plain"} and stays so; allowed only at creation: create a new volume${was ? "" : ` with ${Label.encryption}=true`} and copy the data`,
  })
}

/** `validateLabels` as an Effect that fails with the `LabelError`. */
export const parseLabels = (labels: Readonly<Record<string, string>>): Effect.Effect<VolumeSpec, LabelError> =>
  Effect.suspend(() => {
    const result = validateLabels(labels)
    return result instanceof LabelError ? Effect.fail(result) : Effect.succeed(result)
  })

/** The `storageos.com/` labels that describe `spec` explicitly (the inverse of `validateLabels`). */
export const specLabels = (spec: VolumeSpec): Record<string, string> => {
  const out: Record<string, string> = {
    [Label.replicas]: String(spec.replicas),
    [Label.failureMode]: spec.failureMode,
    [Label.failureTolerance]: String(spec.failureTolerance),
    [Label.nocompress]: String(spec.nocompress),
  }
  if (spec.hintMaster !== undefined) out[Label.hintMaster] = spec.hintMaster
  if (spec.topologyKey !== undefined) out[Label.topologyKey] = spec.topologyKey
  if (spec.encryption === true) out[Label.encryption] = "true"
  return out
}

// ---------------------------------------------------------------------------------------------
// Command-line helpers

/** `key=value`, as the CLI prints and reads it. */
export const formatLabel = (key: string, value: string): string => `${key}=${value}`

/** Labels as `k1=v1,k2=v2`, keys sorted (stable output for tables and tests). */
export const formatLabels = (labels: Readonly<Record<string, string>>): string =>
  Object.keys(labels)
    .sort()
    .map((key) => formatLabel(key, labels[key] ?? ""))
    .join(",")

/** Reads one `key=value` argument (split at the first "="; the value may be empty) and checks it. */
export const parseLabelArg = (arg: string): readonly [key: string, value: string] | LabelError => {
  const equals = arg.indexOf("=")
  if (equals < 0) {
    return new LabelError({
      reason: "malformed-key",
      label: arg,
      value: "",
      allowed: "key=value",
      message: `label argument ${show(arg)} has no "=": allowed key=value, e.g. ${Label.replicas}=1`,
    })
  }
  const key = arg.slice(0, equals)
  const value = arg.slice(equals + 1)
  const error = checkLabel(key, value)
  return error ?? [key, value]
}

/** Reads several `key=value` arguments; the same key twice is a conflict. */
export const parseLabelArgs = (args: ReadonlyArray<string>): Record<string, string> | LabelError => {
  const out: Record<string, string> = {}
  for (const arg of args) {
    const pair = parseLabelArg(arg)
    if (pair instanceof LabelError) return pair
    const [key, value] = pair
    const previous = out[key]
    if (previous !== undefined && previous !== value) {
      return new LabelError({
        reason: "conflict",
        label: key,
        value,
        allowed: "one value per label",
        message: `label ${key}=${show(value)} conflicts with ${key}=${show(previous)} given earlier: allowed one value per label`,
      })
    }
    out[key] = value
  }
  return out
}
