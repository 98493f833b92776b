/**
 * The byte-range rule shared by stores, volumes and clients: offset and length are non-negative
 * safe integers and the range ends inside `sizeBytes`.
 */
export const isInside = (sizeBytes: number, offset: number, length: number): boolean =>
  Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0 && offset + length <= sizeBytes
