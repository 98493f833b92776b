/**
 * mulberry32: a small seeded pseudo-random generator (32-bit state), for everything that must
 * replay exactly from a seed — simulated networks, workloads, handshake nonces in simulations.
 * Never for secrets outside a simulation.
 */
export interface SeededRandom {
  /** Uniform in [0, 2^32). */
  readonly nextUint32: () => number
  /** Uniform in [0, 1). */
  readonly next: () => number
}

export const mulberry32 = (seed: number): SeededRandom => {
  let state = seed >>> 0
  const nextUint32 = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  return { nextUint32, next: () => nextUint32() / 4294967296 }
}
