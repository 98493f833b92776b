/**
 * `replivol --help`, usage errors, `--version` and `completion` must start fast (≤ 250 ms on
 * Node; test/bench/cli-startup.ts measures it): what main.ts imports statically — everything
 * loaded before the command is known — is the parser, the command table and the size parser,
 * and none of them imports a package (no Effect runtime) or a node: module. The heavy parts
 * (client, servers, completion, version) are `await import`ed by the command that needs them.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { repoRoot } from "../support/processes.ts"

const test = suite("replivol startup path")

/** Static `import … from "…"` specifiers of a module (type-only imports are erased, so skipped). */
const staticImports = (file: string): string[] =>
  [...readFileSync(file, "utf8").matchAll(/^import\s+(?!type\s)[^;]*?from\s+"([^"]+)"/gm)].map((m) => m[1]!)

test("main.ts's static import closure is args.ts, spec.ts and size.ts, and none of them imports a package or node:", () => {
  const seen = new Set<string>()
  const external: string[] = []
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const specifier of staticImports(file)) {
      if (specifier.startsWith(".")) visit(join(dirname(file), specifier))
      else external.push(`${relative(repoRoot, file)} imports ${specifier}`)
    }
  }
  visit(join(repoRoot, "lib/cli/main.ts"))
  assert.equal([...seen].map((f) => relative(repoRoot, f)).sort(), ["lib/cli/args.ts", "lib/cli/main.ts", "lib/cli/size.ts", "lib/cli/spec.ts"])
  assert.equal(external, [])
})

test("the import scan sees a static import of a package (the check can fail)", () => {
  assert.equal(staticImports(join(repoRoot, "lib/cli/commands.ts")).filter((s) => !s.startsWith(".")), ["effect"])
})

test.run()
