/**
 * The package as a user gets it: `npm pack` (its prepack builds dist/), the tarball installed into
 * an empty project (offline, from the npm cache `npm ci` filled), then the README's app — taken
 * from README.md, so the two cannot drift — run by plain `node` (no loader), Node 22, Bun and
 * Deno; the same app type-checked by tsc against the shipped declarations, with deliberate type
 * errors refused; and `npx replivol --help` from the installed bin.
 *
 * The install uses a lockfile made from this repository's package-lock.json (the tarball plus the
 * locked production dependencies), so `npm ci --offline` needs no registry metadata. A missing
 * runtime is a skipped test with its reason (test/support/runtimes.ts).
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { repoRoot } from "../support/processes.ts"
import { runtime, testOn, type Runtime } from "../support/runtimes.ts"

const test = suite("package: npm pack, install, run on every runtime")

const work = mkdtempSync(join(tmpdir(), "replivol-package-"))
const source = join(work, "source")
const app = join(work, "app")
/** Replication ports of the runs, one per runtime (the README's app uses the default, 5703). */
const portBase = 15790

interface Result { readonly code: number; readonly stdout: string; readonly stderr: string }

/**
 * The environment of every child, as in a user's shell: this Node first on PATH (npm scripts put
 * node_modules/.bin, which may hold Node 22's `node`, first), no loader options, and none of the
 * variables `npm test` sets for this repository (npm_package_*, npm_lifecycle_*, the local
 * prefix); npm's other settings (the cache) stay.
 */
const childEnv = (): NodeJS.ProcessEnv => {
  const path = (process.env.PATH ?? "").split(delimiter).filter((dir) => !dir.startsWith(repoRoot))
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: [dirname(process.execPath), ...path].join(delimiter), NO_COLOR: "1" }
  delete env.NODE_OPTIONS
  for (const name of Object.keys(env)) {
    if ((name.startsWith("npm_") && !name.startsWith("npm_config_")) || name === "npm_config_local_prefix") delete env[name]
  }
  return env
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs: number): Promise<Result> =>
  new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, env: childEnv(), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (error !== null && error.killed ? `\n(killed after ${timeoutMs} ms)` : "") })
    })
  })

const show = (result: Result) => `exit ${result.code}\n--- stdout\n${result.stdout.slice(-3000)}\n--- stderr\n${result.stderr.slice(-3000)}`

/** The README's library example: the first ```js block after the marker naming this test. */
const readmeApp = (): string => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
  const marker = readme.indexOf("<!-- test/package/consumer.test.ts")
  assert.ok(marker >= 0, "README.md has no block marked for test/package/consumer.test.ts")
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(marker))
  assert.ok(block, "no ```js block after the marker in README.md")
  return block[1]!
}

/** The app with its cluster moved to `port`, so a cluster already on 5703 (npm start) does not collide. */
const appOnPort = (port: number): string => {
  const code = readmeApp()
  const call = "createLocalCluster({ nodes: 3 })"
  assert.ok(code.split(call).length === 2, `the README's app calls ${call} exactly once`)
  return code.replace(call, `createLocalCluster({ nodes: 3, port: ${port} })`)
}

let tarball: string | undefined
let installed = false

const needInstall = () => assert.ok(installed, "the package is not installed (an earlier test failed)")

/** The README app's output: the bytes it wrote, read back, and the volume healthy. */
const expectApp = (result: Result) => {
  assert.is(result.code, 0, show(result))
  assert.match(result.stdout, /^hello, replicated world healthy$/m, show(result))
}

test.after(() => rmSync(work, { recursive: true, force: true }))

test("npm pack builds dist/ (prepack) and ships the build, the docs and LICENSE; no tests, benchmarks or TypeScript sources", async () => {
  // The working tree as a publisher has it (tracked and new files, not ignored ones), without dist/;
  // outside a git checkout, everything but node_modules, dist and the local data.
  const listed = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], repoRoot, 30_000)
  if (listed.code === 0) {
    for (const file of listed.stdout.split("\0").filter((f) => f !== "" && existsSync(join(repoRoot, f)))) {
      mkdirSync(dirname(join(source, file)), { recursive: true })
      cpSync(join(repoRoot, file), join(source, file))
    }
  } else {
    const skipped = new Set(["node_modules", "dist", ".git", "data", "mnt", ".tmp"].map((dir) => join(repoRoot, dir)))
    cpSync(repoRoot, source, { recursive: true, filter: (from) => !skipped.has(from.replace(/\/$/, "")) })
  }
  symlinkSync(join(repoRoot, "node_modules"), join(source, "node_modules"))
  assert.not.ok(existsSync(join(source, "dist")), "the copy starts without a build")
  const packed = await run("npm", ["pack", "--silent", "--pack-destination", work], source, 300_000)
  assert.is(packed.code, 0, show(packed))
  const name = packed.stdout.trim().split("\n").pop()!
  tarball = join(work, name)
  assert.ok(existsSync(tarball), `npm pack wrote ${name}\n${show(packed)}`)
  const listing = await run("tar", ["-tzf", tarball], work, 30_000)
  assert.is(listing.code, 0, show(listing))
  const files = listing.stdout.split("\n").filter((f) => f !== "" && !f.endsWith("/")).map((f) => f.replace(/^package\//, ""))
  for (const needed of ["package.json", "README.md", "LICENSE", "dist/lib/index.js", "dist/lib/index.d.ts", "dist/lib/cli/bin.js", "dist/lib/platform/etcdControlStore.d.ts", "dist/lib/testing/index.d.ts", "dist/fuse/mount.d.ts"]) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`)
  }
  const unwanted = files.filter((f) => f.startsWith("test/") || f.includes("bench") || (f.endsWith(".ts") && !f.endsWith(".d.ts")) || f.startsWith("examples/"))
  assert.equal(unwanted, [], "nothing but the build and the docs")
})

test("the tarball installs into an empty project (npm ci --offline)", async () => {
  assert.ok(tarball, "no tarball (npm pack failed)")
  mkdirSync(app)
  const name = tarball.slice(work.length + 1)
  cpSync(tarball, join(app, name))
  const manifest = JSON.parse(readFileSync(join(source, "package.json"), "utf8")) as Record<string, unknown>
  const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> }
  const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`
  const packages: Record<string, unknown> = {
    "": { name: "consumer", dependencies: { replivol: `file:${name}` } },
    "node_modules/replivol": {
      version: manifest.version, resolved: `file:${name}`, integrity, license: manifest.license,
      dependencies: manifest.dependencies, optionalDependencies: manifest.optionalDependencies, bin: manifest.bin, engines: manifest.engines,
    },
  }
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== "" && entry.dev !== true) packages[path] = entry
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { replivol: `file:${name}` } }, null, 2))
  writeFileSync(join(app, "package-lock.json"), JSON.stringify({ name: "consumer", lockfileVersion: 3, requires: true, packages }, null, 2))
  const install = await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], app, 300_000)
  assert.is(install.code, 0, show(install))
  assert.ok(existsSync(join(app, "node_modules/replivol/dist/lib/index.js")), "replivol is installed")
  assert.not.ok(existsSync(join(app, "node_modules/tsx")), "no TypeScript loader is installed with it")
  assert.not.ok(existsSync(join(app, "node_modules/typescript")), "no compiler is installed with it")
  installed = true
})

test(`plain node ${process.version} (no loader) runs the README's app: write, flush, read back`, async () => {
  needInstall()
  writeFileSync(join(app, "app-node.mjs"), appOnPort(portBase))
  expectApp(await run(process.execPath, ["app-node.mjs"], app, 60_000))
})

const runs: ReadonlyArray<{ readonly runtime: Runtime; readonly args: (file: string) => ReadonlyArray<string>; readonly port: number }> = [
  { runtime: runtime("node22"), args: (file) => [file], port: portBase + 1 },
  { runtime: runtime("bun"), args: (file) => [file], port: portBase + 2 },
  { runtime: runtime("deno"), args: (file) => ["run", "-A", file], port: portBase + 3 },
]
for (const { runtime: found, args, port } of runs) {
  const title = `${found.label} runs the README's app from node_modules`
  testOn(test, found, `package: ${title}`)(title, async () => {
    if (!found.found) return
    needInstall()
    const file = `app-${found.name}.mjs`
    writeFileSync(join(app, file), appOnPort(port))
    expectApp(await run(found.path, args(file), app, 120_000))
  })
}

const tsconfig = (files: ReadonlyArray<string>) => JSON.stringify({
  compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, skipLibCheck: false, types: ["node"] },
  files,
}, null, 2)
const tsc = join(repoRoot, "node_modules/.bin/tsc")

test("a TypeScript consumer type-checks the README's app and every entry point against the declarations (skipLibCheck off)", async () => {
  needInstall()
  writeFileSync(join(app, "app.ts"), readmeApp())
  writeFileSync(join(app, "entries.ts"), [
    `import { createLocalCluster, VolumeUnavailable, type LocalClusterHandle } from "replivol"`,
    `import { layerEtcd } from "replivol/etcd"`,
    `import { runReplicationSim } from "replivol/testing"`,
    `import { mountVolumesPromise } from "replivol/fuse"`,
    `export const start = (): Promise<LocalClusterHandle> => createLocalCluster({ nodes: 3 })`,
    `export const etcd = layerEtcd({ hosts: ["http://127.0.0.1:2379"] })`,
    `export const sim = () => runReplicationSim({ seed: 1 })`,
    `export const mount = mountVolumesPromise`,
    `export const isUnavailable = (error: unknown): boolean => error instanceof VolumeUnavailable`,
    ``,
  ].join("\n"))
  writeFileSync(join(app, "tsconfig.json"), tsconfig(["app.ts", "entries.ts"]))
  const checked = await run(tsc, ["-p", "."], app, 120_000)
  assert.is(checked.code, 0, show(checked))
})

test("tsc refuses deliberate type errors, one per entry point", async () => {
  needInstall()
  const lines = [
    `import { createLocalCluster } from "replivol"`,
    `import { layerEtcd } from "replivol/etcd"`,
    `import { runReplicationSim } from "replivol/testing"`,
    `import { mountVolumesPromise } from "replivol/fuse"`,
    `const cluster = await createLocalCluster({ nodes: 3 })`,
    `await cluster.createVolume("default/db", "64 MiB")`,
    `layerEtcd({ hosts: 2379 })`,
    `runReplicationSim({ seed: "one" })`,
    `await mountVolumesPromise({ mountDir: 5 })`,
    ``,
  ]
  writeFileSync(join(app, "bad.ts"), lines.join("\n"))
  writeFileSync(join(app, "tsconfig.bad.json"), tsconfig(["bad.ts"]))
  const checked = await run(tsc, ["-p", "tsconfig.bad.json"], app, 120_000)
  assert.is.not(checked.code, 0, show(checked))
  // bad.ts(line,column): error TSnnnn — one on each of the four lines with a mistake
  const lineOf = (text: string) => lines.indexOf(text) + 1
  assert.match(checked.stdout, new RegExp(`bad\\.ts\\(${lineOf(`await cluster.createVolume("default/db", "64 MiB")`)},\\d+\\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'`), show(checked))
  for (const text of [`layerEtcd({ hosts: 2379 })`, `runReplicationSim({ seed: "one" })`, `await mountVolumesPromise({ mountDir: 5 })`]) {
    assert.match(checked.stdout, new RegExp(`bad\\.ts\\(${lineOf(text)},\\d+\\): error TS\\d+`), `${text} is refused\n${show(checked)}`)
  }
})

test("npx replivol --help runs the installed bin (compiled JavaScript, no loader)", async () => {
  needInstall()
  const bin = readFileSync(join(app, "node_modules/replivol/dist/lib/cli/bin.js"), "utf8")
  assert.ok(bin.startsWith("#!/usr/bin/env node\n"), "the bin starts with a node shebang")
  assert.not.match(bin, /["']tsx(\/[^"']*)?["']/, "the bin imports no TypeScript loader (and none is installed: see the install test)")
  const help = await run("npx", ["--offline", "replivol", "--help"], app, 60_000)
  assert.is(help.code, 0, show(help))
  assert.match(help.stdout, /Usage: replivol/, show(help))
})

test.run()
