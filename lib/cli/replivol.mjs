#!/usr/bin/env node
// `replivol` launcher (package.json "bin"): registers tsx in this Node process and runs
// lib/cli/main.ts, so it works from any directory and signals reach the CLI directly.
// Under Bun or Deno run lib/cli/main.ts itself.
import { register } from "tsx/esm/api"

register()
await import(new URL("./main.ts", import.meta.url).href)
