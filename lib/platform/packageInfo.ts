/**
 * The package's own version for `replivol --version`: read from the nearest package.json named
 * "replivol" above this file, so it is right both from the sources (lib/platform/) and from a
 * compiled build (dist/lib/platform/), installed or in the repository.
 */
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** Directories walked upwards before giving up. */
const searchDepthMax = 6

export const packageVersion = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let depth = 0; depth < searchDepthMax; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown }
      if (pkg.name === "replivol" && typeof pkg.version === "string") return pkg.version
    } catch {
      // no package.json here (or not ours): keep walking up
    }
    dir = dirname(dir)
  }
  return "unknown"
}
