#!/usr/bin/env node
// The `cutover` executable. Operator commands run the precompiled JavaScript in dist/ (built by
// `npm run build`, which `npm ci` runs as `prepare`) while it matches the sources it was built
// from; tsx compiling the TypeScript at start-up would cost each command several hundred
// milliseconds. Otherwise, and always for the commands that run nodes (`node`, `local`: long-lived,
// and they start their children from the sources), the TypeScript runs through tsx's loader.
// CUTOVER_FROM_SOURCE=1 forces the sources.
import { readFileSync, statSync } from 'node:fs';
import { URL } from 'node:url';

const root = new URL('../', import.meta.url);
const NODE_COMMANDS = new Set(['node', 'local']);
// Global flags that take a value, so that the value is not taken for the command's name.
const VALUE_FLAGS = new Set(['-e', '--endpoints', '--timeout', '-o', '--output']);

function commandName(args) {
  for (let i = 0; i < args.length; i++) {
    if (VALUE_FLAGS.has(args[i])) i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}

/** True when dist/cli/build-stamp.json exists and every source it lists has the mtime it recorded. */
function buildIsFresh() {
  try {
    const { sources } = JSON.parse(readFileSync(new URL('dist/cli/build-stamp.json', root), 'utf8'));
    return Object.entries(sources).every(([file, mtimeMs]) => statSync(new URL(file, root)).mtimeMs === mtimeMs);
  } catch {
    return false;
  }
}

const fromSource = process.env.CUTOVER_FROM_SOURCE === '1' || NODE_COMMANDS.has(commandName(process.argv.slice(2)) ?? '');
if (!fromSource && buildIsFresh()) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
