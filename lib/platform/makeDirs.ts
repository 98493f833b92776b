/**
 * `mkdir -p` that always ends: Node's `mkdir(path, { recursive: true })` loops for ever under a
 * file system that answers ENOENT to a mkdir whose parent exists (for example /proc: `cluster up
 * --data /proc/x` spun at 100 % CPU). This walks up to the nearest existing ancestor and creates
 * each missing level once, so such a refusal becomes an error naming the directory.
 */
import { mkdir, stat } from "node:fs/promises"
import { dirname } from "node:path"

/** Directory levels a path may have; a longer one is refused rather than walked. */
const levelsMax = 256

export const makeDirs = async (path: string): Promise<void> => {
  const missing: string[] = []
  let at = path
  for (let level = 0; ; level++) {
    if (level >= levelsMax) throw new Error(`cannot create ${path}: more than ${levelsMax} directory levels`)
    try {
      const info = await stat(at)
      if (!info.isDirectory()) throw Object.assign(new Error(`cannot create ${path}: ${at} exists and is not a directory`), { code: "ENOTDIR" })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
      missing.push(at)
      const parent = dirname(at)
      if (parent === at) break
      at = parent
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === "EEXIST") continue
      throw Object.assign(new Error(`cannot create directory ${dir}: ${code ?? String(error)} (the file system refuses it; choose another place)`), { code })
    }
  }
}
