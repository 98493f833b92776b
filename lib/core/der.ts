/**
 * A minimal DER (ITU-T X.690 Distinguished Encoding Rules) writer: just the types an X.509 v3
 * certificate needs (lib/core/x509.ts). Pure; every value is encoded the one way DER allows
 * (definite lengths in the shortest form, minimal integers, trailing zero bits of a named bit
 * string removed), so the same input always gives the same bytes.
 */
import { assert } from "./assert.ts"
import { concatBytes } from "./bytes.ts"

/** The largest value we encode (a certificate is a few hundred bytes; this is a sanity bound). */
export const derValueBytesMax = 1 << 20

const lengthBytes = (length: number): Uint8Array => {
  assert(Number.isSafeInteger(length) && length >= 0 && length <= derValueBytesMax, `DER length ${length} out of range`)
  if (length < 0x80) return Uint8Array.of(length)
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

/** One TLV: tag byte, DER length, contents. */
export const tlv = (tag: number, contents: Uint8Array): Uint8Array => concatBytes([Uint8Array.of(tag), lengthBytes(contents.length), contents])

export const sequence = (...items: ReadonlyArray<Uint8Array>): Uint8Array => tlv(0x30, concatBytes(items))
export const set = (...items: ReadonlyArray<Uint8Array>): Uint8Array => tlv(0x31, concatBytes(items))
export const boolean = (value: boolean): Uint8Array => tlv(0x01, Uint8Array.of(value ? 0xff : 0x00))
export const nullValue = (): Uint8Array => tlv(0x05, new Uint8Array(0))
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(0x04, bytes)
export const utf8String = (text: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(text))
/** `[n] EXPLICIT`: a constructed context tag around one encoded value. */
export const explicit = (n: number, value: Uint8Array): Uint8Array => tlv(0xa0 | n, value)
/** `[n] IMPLICIT` of a primitive type: the context tag replaces the type's own. */
export const implicitPrimitive = (n: number, contents: Uint8Array): Uint8Array => tlv(0x80 | n, contents)

/** An INTEGER from unsigned big-endian magnitude bytes (minimal form, positive). */
export const unsignedInteger = (magnitude: Uint8Array): Uint8Array => {
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  const trimmed = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(start)
  return tlv(0x02, (trimmed[0]! & 0x80) !== 0 ? concatBytes([Uint8Array.of(0), trimmed]) : trimmed)
}

export const smallInteger = (value: number): Uint8Array => {
  assert(Number.isSafeInteger(value) && value >= 0 && value <= 0xffff_ffff, `DER small integer ${value} out of range`)
  const bytes: number[] = []
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return unsignedInteger(Uint8Array.from(bytes))
}

/** An OBJECT IDENTIFIER from its dotted form ("1.2.840.10045.4.3.2"). */
export const objectIdentifier = (dotted: string): Uint8Array => {
  const arcs = dotted.split(".").map(Number)
  assert(arcs.length >= 2 && arcs.every((arc) => Number.isSafeInteger(arc) && arc >= 0) && arcs[0]! <= 2, `bad OID ${dotted}`)
  const out: number[] = []
  const base128 = (value: number) => {
    const groups: number[] = [value & 0x7f]
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) groups.unshift(0x80 | (rest & 0x7f))
    out.push(...groups)
  }
  base128(arcs[0]! * 40 + arcs[1]!)
  for (const arc of arcs.slice(2)) base128(arc)
  return tlv(0x06, Uint8Array.from(out))
}

/** A BIT STRING holding whole bytes (a public key, a signature). */
export const bitString = (bytes: Uint8Array): Uint8Array => tlv(0x03, concatBytes([Uint8Array.of(0), bytes]))

/** A named BIT STRING (KeyUsage) from bit numbers, bit 0 the most significant; trailing zero bits dropped. */
export const namedBits = (bits: ReadonlyArray<number>): Uint8Array => {
  if (bits.length === 0) return tlv(0x03, Uint8Array.of(0))
  const highest = Math.max(...bits)
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1)
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7)
  const unused = 7 - (highest & 7)
  return tlv(0x03, concatBytes([Uint8Array.of(unused), bytes]))
}

const two = (n: number) => String(n).padStart(2, "0")

/** X.509 Time: UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). Whole seconds, UTC. */
export const time = (epochMs: number): Uint8Array => {
  const date = new Date(Math.floor(epochMs / 1000) * 1000)
  const year = date.getUTCFullYear()
  assert(year >= 0 && year <= 9999, `certificate time ${epochMs} out of range`)
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`
  return year >= 1950 && year < 2050
    ? tlv(0x17, new TextEncoder().encode(`${two(year % 100)}${rest}`))
    : tlv(0x18, new TextEncoder().encode(`${String(year).padStart(4, "0")}${rest}`))
}
