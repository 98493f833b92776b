/**
 * CRC-32C (Castagnoli), the checksum of every frame header and body.
 *
 * Pure TypeScript, slice-by-8 tables, so it runs the same on Node, Bun and Deno and in the
 * simulator. Chosen over CRC-32 (IEEE) for its better error detection on storage payloads
 * (iSCSI, ext4 metadata and Btrfs use it too).
 */
const polynomialReflected = 0x82f63b78

const tables: Uint32Array[] = (() => {
  const out: Uint32Array[] = []
  const first = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1
    first[n] = c >>> 0
  }
  out.push(first)
  for (let t = 1; t < 8; t++) {
    const table = new Uint32Array(256)
    const previous = out[t - 1]!
    for (let n = 0; n < 256; n++) table[n] = ((previous[n]! >>> 8) ^ first[previous[n]! & 0xff]!) >>> 0
    out.push(table)
  }
  return out
})()
const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array]

/** CRC-32C of `bytes`, continuing from `previous` (0 to start). Returns an unsigned 32-bit value. */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0
  let index = 0
  const length = bytes.length
  const end8 = length - (length % 8)
  while (index < end8) {
    const a = (bytes[index]! | (bytes[index + 1]! << 8) | (bytes[index + 2]! << 16) | (bytes[index + 3]! << 24)) ^ crc
    crc =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[bytes[index + 4]!]! ^
      t2[bytes[index + 5]!]! ^
      t1[bytes[index + 6]!]! ^
      t0[bytes[index + 7]!]!
    index += 8
  }
  while (index < length) crc = t0[(crc ^ bytes[index++]!) & 0xff]! ^ (crc >>> 8)
  return ~crc >>> 0
}
