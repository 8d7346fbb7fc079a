// Precompiles the operator CLI into dist/cli/ (npm run build; npm ci runs it as `prepare`).
//
//   node scripts/build-cli.mjs [--out <dir>]      (default dist/cli; tests build into their own)
//
// Why: tsx compiling TypeScript at start-up costs an operator command several hundred
// milliseconds, and loading ~150 separate modules (grpc-js and protobufjs are ~120 CommonJS files)
// costs tens more; one esbuild bundle starts in about a third of the CPU time of tsx
// (docs/benchmarks.md, "CLI").
//
// The bundle is one CommonJS file, main.js (with a package.json that says so), not ES modules:
// bin/cutover.js compiles it with vm.Script, which can reuse V8's compiled code from an earlier
// run (a code cache; Node 20 has no module.enableCompileCache), and vm.Script takes scripts, not
// modules. Code that only some commands need (tar, yaml, protobufjs' descriptor decoder) is in the
// file but wrapped by esbuild in functions that run on first use, and V8 compiles a function only
// when it first runs, so a command that does not need it pays for little more than its bytes.
//
// bin/cutover.js runs the bundle only while build-stamp.json matches the mtimes of the sources in
// it, and the TypeScript through tsx otherwise, so a stale or missing build is slower, never
// wrong. The stamp also carries the bundle's sha256, which keys the code cache. The node runtime
// (`cutover node`, `cutover local`) is left out of the bundle: the bin always runs those from the
// sources.
//
// Type errors do not stop the build (`npm test` type-checks). Any failure leaves no stamp and
// exits 0 with a warning: an install must not fail because the CLI could not be precompiled.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function warn(message) {
  console.warn(`build-cli: ${message}; bin/cutover.js will run the TypeScript sources through tsx`);
  process.exit(0);
}

function outDirectory(argv) {
  if (argv.length === 0) return path.join(root, 'dist', 'cli');
  if (argv.length === 2 && argv[0] === '--out' && argv[1] !== '') return path.resolve(argv[1]);
  console.error('usage: node scripts/build-cli.mjs [--out <dir>]');
  process.exit(2);
}
const out = outDirectory(process.argv.slice(2));

/** The modules that run nodes stay out of the bundle (see above): imports of them stay as they are. */
const nodeRuntimeFromSource = {
  name: 'node-runtime-from-source',
  setup(build) {
    build.onResolve({ filter: /^\.\/(local-cluster|node-command|node-config)\.ts$/ }, (args) => ({ path: pathToFileURL(path.join(args.resolveDir, args.path)).href, external: true }));
  },
};

/**
 * Node modules that the bundle's dependencies require when they load but use only on paths an
 * operator command does not take: commander's child_process (executable subcommands) and grpc-js'
 * http (HTTP CONNECT proxies). Loading them cost ~10 ms of each command's start-up here, so each
 * is replaced by an object that loads the real module on first use of any of its members.
 */
const LAZY_BUILTINS = ['child_process', 'http'];
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter }, (args) => (args.namespace === 'lazy-builtin' ? undefined : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: `let loaded;
const load = () => (loaded ??= require('node:${args.path}'));
module.exports = new Proxy({}, {
  get: (_target, key) => load()[key],
  has: (_target, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_target, key) => {
    const descriptor = Object.getOwnPropertyDescriptor(load(), key);
    return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
  },
});
`,
    }));
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
    outfile: path.join(out, 'main.js'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // CommonJS has no import.meta: the sources' import.meta.url becomes the bundle's own file URL.
    define: { 'import.meta.url': '__cutoverImportMetaUrl' },
    banner: { js: "var __cutoverImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins: [nodeRuntimeFromSource, lazyBuiltins],
    metafile: true,
    charset: 'ascii',
    logLevel: 'warning',
  });
} catch (error) {
  warn(`esbuild failed: ${error instanceof Error ? error.message : String(error)}`);
}

// main.js is CommonJS although the project's package.json says "type": "module".
writeFileSync(path.join(out, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
// The stamp: every source in the bundle, with its mtime when it was built, and the bundle's hash.
const sources = {};
for (const input of Object.keys(result.metafile.inputs).filter((file) => file.startsWith('src/')).sort()) sources[input] = statSync(path.join(root, input)).mtimeMs;
const bundle = readFileSync(path.join(out, 'main.js'));
mkdirSync(out, { recursive: true });
// esbuild writes ASCII (charset: 'ascii', its default, escapes the rest); the bin reads an ASCII
// bundle as latin1, several times faster than decoding UTF-8.
const ascii = bundle.every((byte) => byte < 0x80);
writeFileSync(path.join(out, 'build-stamp.json'), `${JSON.stringify({ bundle: { file: 'main.js', sha256: createHash('sha256').update(bundle).digest('hex'), bytes: bundle.length, ascii }, sources }, null, 1)}\n`);
console.log(`build-cli: bundled ${Object.keys(sources).length} sources and their dependencies into ${path.relative(root, out) || '.'}/main.js (${(bundle.length / 1024).toFixed(0)} KiB)`);
