#!/usr/bin/env node
/**
 * The published `replivol` command: package.json "bin" points at its build, dist/lib/cli/bin.js,
 * plain JavaScript that Node runs with no loader. It only loads the CLI (main.ts runs on import).
 * In the repository, lib/cli/replivol.mjs runs the TypeScript sources through tsx instead (tests).
 */
import "./main.ts"
