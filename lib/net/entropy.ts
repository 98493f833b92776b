/**
 * Entropy: the source of handshake nonces.
 *
 * Real nodes use the platform's cryptographic generator (`crypto.getRandomValues`, present on
 * Node, Bun and Deno). The simulator replaces it with a seeded generator so a whole run, nonces
 * included, replays exactly from its seed.
 */
import { Context } from "effect"

export interface EntropySource {
  readonly randomBytes: (count: number) => Uint8Array
}

const cryptoBytes = (count: number): Uint8Array => {
  const out = new Uint8Array(count)
  globalThis.crypto.getRandomValues(out)
  return out
}

export const Entropy = Context.Reference<EntropySource>("replivol/Entropy", {
  defaultValue: () => ({ randomBytes: cryptoBytes }),
})

/** A seeded generator (xorshift128+ style mixing of a 32-bit seed) for simulations and fuzzers. */
export const seededEntropy = (seed: number): EntropySource & { readonly nextUint32: () => number } => {
  let state = seed >>> 0 || 0x9e3779b9
  const nextUint32 = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  return {
    nextUint32,
    randomBytes: (count) => {
      const out = new Uint8Array(count)
      for (let i = 0; i < count; i++) out[i] = nextUint32() & 0xff
      return out
    },
  }
}
