/**
 * The volume model: labels → validated `VolumeSpec`, and failure-mode arithmetic (health,
 * usability). Pure; re-exported flat so users import `parseLabels`, `assessVolume`, … directly.
 */
export * from "./labels.ts"
export * from "./health.ts"
