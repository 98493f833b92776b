/**
 * A test's base port on loopback, moved by REPLIVOL_TEST_PORT_OFFSET. test/all.ts runs the
 * portable groups on Node 22 and on Bun at the same time, each with its own offset, so the two
 * runs of one test never listen on the same address (they did: EADDRINUSE).
 */
export const testPort = (base: number): number => {
  const offset = Number(process.env.REPLIVOL_TEST_PORT_OFFSET ?? 0)
  if (!Number.isInteger(offset) || offset < 0 || base + offset > 65_535) throw new Error(`REPLIVOL_TEST_PORT_OFFSET must be a whole number that keeps port ${base} below 65536, got ${process.env.REPLIVOL_TEST_PORT_OFFSET}`)
  return base + offset
}
