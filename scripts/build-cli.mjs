// Precompiles the operator CLI into dist/cli/ (npm run build; npm ci runs it as `prepare`).
//
// Why: tsx compiling TypeScript at start-up costs an operator command several hundred milliseconds,
// and loading ~150 separate modules (grpc-js and protobufjs are ~120 CommonJS files) costs tens more;
// one esbuild bundle, split only where the CLI loads code lazily, starts in about a third of the
// CPU time of tsx (docs/benchmarks.md, "CLI").
//
// bin/cutover.js runs dist/ only while dist/build-stamp.json matches the mtimes of the sources in
// the bundle, and the TypeScript through tsx otherwise, so a stale or missing build is slower,
// never wrong. The node runtime (`cutover node`, `cutover local`) is left out of the bundle: the bin
// always runs those from the sources.
//
// Type errors do not stop the build (`npm test` type-checks). Any failure leaves no stamp and
// exits 0 with a warning: an install must not fail because the CLI could not be precompiled.
import { rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'cli');

function warn(message) {
  console.warn(`build-cli: ${message}; bin/cutover.js will run the TypeScript sources through tsx`);
  process.exit(0);
}

/** The modules that run nodes stay out of the bundle (see above): imports of them stay as they are. */
const nodeRuntimeFromSource = {
  name: 'node-runtime-from-source',
  setup(build) {
    build.onResolve({ filter: /^\.\/(local-cluster|node-command|node-config)\.ts$/ }, (args) => ({ path: pathToFileURL(path.join(args.resolveDir, args.path)).href, external: true }));
  },
};

rmSync(out, { recursive: true, force: true });
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  warn('esbuild is not installed (an install without dev dependencies)');
}
let result;
try {
  result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/cli/main.ts'],
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'chunks/[name]-[hash]',
    // Bundled CommonJS modules call require(); ESM has none, so each chunk gets one.
    banner: { js: "import { createRequire as __cutoverCreateRequire } from 'node:module'; const require = __cutoverCreateRequire(import.meta.url);" },
    plugins: [nodeRuntimeFromSource],
    metafile: true,
    logLevel: 'warning',
  });
} catch (error) {
  warn(`esbuild failed: ${error instanceof Error ? error.message : String(error)}`);
}

// The stamp: every source in the bundle, with its mtime when it was built.
const sources = {};
for (const input of Object.keys(result.metafile.inputs).filter((file) => file.startsWith('src/')).sort()) sources[input] = statSync(path.join(root, input)).mtimeMs;
writeFileSync(path.join(out, 'build-stamp.json'), `${JSON.stringify({ sources }, null, 1)}\n`);
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`build-cli: bundled ${Object.keys(sources).length} sources and their dependencies into dist/cli/ (${(bytes / 1024).toFixed(0)} KiB)`);
