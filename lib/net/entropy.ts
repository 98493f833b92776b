/**
 * Entropy: the source of handshake nonces.
 *
 * Real nodes use the platform's cryptographic generator (`crypto.getRandomValues`, present on
 * Node, Bun and Deno). The simulator replaces it with a seeded generator so a whole run, nonces
 * included, replays exactly from its seed.
 */
import { Context } from "effect"
import { mulberry32 } from "../core/seeded.ts"

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

/** A seeded source (mulberry32) for simulations and fuzzers: a run replays exactly from its seed. */
export const seededEntropy = (seed: number): EntropySource & { readonly nextUint32: () => number } => {
  const { nextUint32 } = mulberry32(seed >>> 0 || 0x9e3779b9)
  return {
    nextUint32,
    randomBytes: (count) => {
      const out = new Uint8Array(count)
      for (let i = 0; i < count; i++) out[i] = nextUint32() & 0xff
      return out
    },
  }
}
