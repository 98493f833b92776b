/** Deterministic test data: the bytes of block `index` under `seed`, so any process can regenerate them. */
export const patternBytes = (seed: number, index: number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  let state = (Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0
  for (let i = 0; i < length; i += 4) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    t = (t ^ (t >>> 14)) >>> 0
    out[i] = t & 0xff
    if (i + 1 < length) out[i + 1] = (t >>> 8) & 0xff
    if (i + 2 < length) out[i + 2] = (t >>> 16) & 0xff
    if (i + 3 < length) out[i + 3] = t >>> 24
  }
  return out
}

export const mulberry = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
