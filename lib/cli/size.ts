/**
 * Volume sizes as people type them: `1GiB`, `512MiB`, `4096` (bytes). Binary suffixes only
 * (KiB/MiB/GiB/TiB, plus K/M/G/T as the same powers of 1024), because a block volume's size is a
 * whole number of sectors and decimal units (GB = 10^9) rarely are. Pure, and it imports nothing
 * (the argument parser checks `--size` with it before anything heavy is loaded).
 */

export class SizeError extends Error {
  readonly _tag = "SizeError"
  constructor(readonly reason: "malformed" | "not-positive" | "too-large", readonly input: string, message: string) {
    super(message)
  }
}

const units: Readonly<Record<string, number>> = {
  "": 1, b: 1,
  k: 2 ** 10, kib: 2 ** 10,
  m: 2 ** 20, mib: 2 ** 20,
  g: 2 ** 30, gib: 2 ** 30,
  t: 2 ** 40, tib: 2 ** 40,
}

export const sizeAllowed = "a whole number with an optional unit KiB, MiB, GiB or TiB (for example 1GiB, 512MiB, 1048576)"

/** Bytes for `text`, or a SizeError naming the input and what is allowed. */
export const parseSize = (text: string): number | SizeError => {
  const match = /^\s*(\d+)(?:\.(\d+))?\s*([a-zA-Z]*)\s*$/.exec(text)
  const unit = match ? units[match[3]!.toLowerCase()] : undefined
  if (!match || unit === undefined) return new SizeError("malformed", text, `size "${text}" is not understood: expected ${sizeAllowed}`)
  const bytes = Number(`${match[1]}.${match[2] ?? "0"}`) * unit
  if (!Number.isSafeInteger(bytes)) return new SizeError("too-large", text, `size "${text}" is too large or not a whole number of bytes: expected ${sizeAllowed}`)
  if (bytes <= 0) return new SizeError("not-positive", text, `size "${text}" must be greater than zero: expected ${sizeAllowed}`)
  return bytes
}

/** `1073741824` → `1 GiB`; `1536` → `1.5 KiB`. */
export const formatBytes = (bytes: number): string => {
  const names = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let index = 0
  while (value >= 1024 && index < names.length - 1) {
    value /= 1024
    index++
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, "")
  return `${text} ${names[index]}`
}

/** The parser's check for a size flag: undefined when `text` is a size, else what is allowed. */
export const checkSize = (text: string): string | undefined => {
  const size = parseSize(text)
  if (typeof size === "number") return undefined
  return size.reason === "malformed" ? sizeAllowed : size.reason === "not-positive" ? `a size greater than zero: ${sizeAllowed}` : `a whole number of bytes below 8 PiB: ${sizeAllowed}`
}
