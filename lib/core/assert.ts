/**
 * Invariant assertions that stay on in production.
 *
 * A broken invariant is a bug in replivol, not an expected fault: it throws `InvariantViolation`
 * (inside an Effect this becomes a defect). Expected faults — a peer gone, a bad frame, an IO
 * error — are typed errors of their own module, never assertions.
 */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation"
}

export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new InvariantViolation(`invariant violated: ${what}`)
}
