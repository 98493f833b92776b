/** Type guards for decoding untrusted JSON (records, control bodies, API requests). */
export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/** A non-negative safe integer (sizes, epochs, revisions, counts). */
export const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0
