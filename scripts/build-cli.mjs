// Precompiles the CLI to dist/ (npm run build; npm ci runs it as `prepare`), because tsx compiling
// TypeScript at start-up costs an operator command several hundred milliseconds (docs/benchmarks.md,
// "CLI"). bin/cutover.js runs dist/ only while dist/build-stamp.json matches the sources' mtimes,
// and the TypeScript through tsx otherwise, so a stale or missing build is slower, never wrong.
//
// Type errors do not stop the build (`noCheck`; `npm test` type-checks). Any failure leaves no
// stamp and exits 0 with a warning: an install must not fail because the CLI could not be
// precompiled.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const stampFile = path.join(dist, 'build-stamp.json');

function warn(message) {
  console.warn(`build-cli: ${message}; bin/cutover.js will run the TypeScript sources through tsx`);
  process.exit(0);
}

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? jsFiles(full) : entry.name.endsWith('.js') ? [full] : [];
  });
}

rmSync(dist, { recursive: true, force: true });
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  warn('typescript is not installed (an install without dev dependencies)');
}
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (result.status !== 0) warn(`tsc exited with ${result.status ?? result.signal}`);

// The stamp: every source that was compiled, with its mtime when it was.
const sources = {};
for (const file of jsFiles(dist)) {
  const source = path.relative(root, path.join(root, 'src', path.relative(dist, file))).replace(/\.js$/, '.ts').split(path.sep).join('/');
  if (!existsSync(path.join(root, source))) warn(`no source for ${path.relative(root, file)}`);
  sources[source] = statSync(path.join(root, source)).mtimeMs;
}
writeFileSync(stampFile, `${JSON.stringify({ sources }, null, 1)}\n`);
console.log(`build-cli: compiled ${Object.keys(sources).length} modules to dist/`);
