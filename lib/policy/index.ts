/**
 * Namespace policy: label selectors and the rules that add or remove labels when a volume is
 * created. Pure; re-exported flat.
 */
export * from "./selector.ts"
export * from "./rules.ts"
