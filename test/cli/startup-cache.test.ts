/**
 * bin/cutover.js's V8 code cache: a bundle built for this test (scripts/build-cli.mjs --out, run
 * through CUTOVER_DIST_DIR) runs `cutover cluster status` against the fixture servers with each
 * kind of cache file: none, its own, damaged (flipped byte, truncated, empty, garbage), written
 * for another build, one V8 rejects, and an unwritable cache directory. Every run must print the
 * same table and exit 0; `--debug` says what the bin made of the cache; a cache that could not be
 * used is replaced by a good one when the command ends, and the directory keeps one entry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { crc32 } from 'node:zlib';
import test from 'ava';
import { BIN, type CliResult } from './cli-harness.ts';
import { FIXED_NOW_MS, FixtureCluster } from './fixture-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The cache file's header before V8's data: magic (8), key (64 hex digits), length and CRC-32 (4 + 4). */
const HEADER_BYTES = 8 + 64 + 8;

// Inside the repository, so that the bundle resolves node_modules as dist/cli does.
const distDir = mkdtempSync(path.join(ROOT, 'dist', 'test-startup-cache-'));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cutover-code-cache-'));
let fixture: FixtureCluster;
let expected: string;

test.before(async () => {
  const build = spawnSync(process.execPath, ['scripts/build-cli.mjs', '--out', distDir], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0 || !build.stdout.includes('bundled')) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
  fixture = await FixtureCluster.start();
  const reference = await run(path.join(scratch, 'reference'), { CUTOVER_CODE_CACHE: 'off' });
  if (reference.code !== 0) throw new Error(`reference run exited ${reference.code}: ${reference.stderr}`);
  expected = reference.stdout;
});

test.after.always(() => {
  fixture?.stop();
  rmSync(distDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** `cutover cluster status --debug` through the bin, on the test's bundle, with `cacheDir`. */
function run(cacheDir: string, env: Record<string, string> = {}, args = ['cluster', 'status', '--debug']): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, CUTOVER_DIST_DIR: distDir, CUTOVER_CACHE_DIR: cacheDir, CUTOVER_ENDPOINTS: fixture.endpoints, CUTOVER_NOW_MS: String(FIXED_NOW_MS), NO_COLOR: '1', TZ: 'UTC', COLUMNS: '80', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** What the bin said about the cache: used, none, damaged, rejected or off. */
function cacheVerdict(result: CliResult): string {
  return /^cutover: code cache (\w+)/m.exec(result.stderr)?.[1] ?? `no verdict in: ${result.stderr}`;
}

/** The cache files in `cacheDir`. */
function entries(cacheDir: string): string[] {
  try {
    return readdirSync(path.join(cacheDir, 'code')).map((name) => path.join(cacheDir, 'code', name));
  } catch {
    return [];
  }
}

/** A cache dir with a good entry (after one run), and that entry's path. */
async function warmed(name: string): Promise<{ cacheDir: string; file: string }> {
  const cacheDir = path.join(scratch, name);
  const first = await run(cacheDir);
  if (first.code !== 0 || cacheVerdict(first) !== 'none') throw new Error(`first run: ${first.code} ${first.stderr}`);
  const [file, ...more] = entries(cacheDir);
  if (file === undefined || more.length > 0) throw new Error(`expected one entry, found ${entries(cacheDir).join(', ')}`);
  return { cacheDir, file };
}

/** Runs with a damaged or foreign entry in place: same output, the given verdict, then a good entry. */
async function expectRecovery(t: import('ava').ExecutionContext, cacheDir: string, verdict: string): Promise<void> {
  const result = await run(cacheDir);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, expected);
  t.is(cacheVerdict(result), verdict);
  const again = await run(cacheDir);
  t.is(again.stdout, expected);
  t.is(cacheVerdict(again), 'used', 'the entry was rewritten when the command ended');
  t.is(entries(cacheDir).length, 1);
}

test.serial('a missing cache is written when the command ends, then used', async (t) => {
  const { cacheDir, file } = await warmed('fresh');
  t.true(statSync(file).size > HEADER_BYTES);
  t.regex(path.basename(file), /^main-[0-9a-f]{16}\.bin$/);
  for (let i = 0; i < 2; i++) {
    const result = await run(cacheDir);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, expected);
    t.is(cacheVerdict(result), 'used');
  }
});

test.serial('a flipped byte in V8\'s data is caught by the CRC: compiled from source, rewritten', async (t) => {
  const { cacheDir, file } = await warmed('flipped');
  const bytes = readFileSync(file);
  for (const at of [HEADER_BYTES + 20, Math.floor((HEADER_BYTES + bytes.length) / 2), bytes.length - 1]) bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
  await expectRecovery(t, cacheDir, 'damaged');
});

test.serial('truncated, empty and garbage files are damaged, not fatal', async (t) => {
  for (const [name, damage] of [
    ['truncated', (bytes: Buffer) => bytes.subarray(0, bytes.length - 1000)],
    ['header-only', (bytes: Buffer) => bytes.subarray(0, HEADER_BYTES - 3)],
    ['empty', () => Buffer.alloc(0)],
    ['garbage', (bytes: Buffer) => Buffer.alloc(bytes.length, 0x5a)],
  ] as const) {
    const { cacheDir, file } = await warmed(name);
    writeFileSync(file, damage(readFileSync(file)));
    await expectRecovery(t, cacheDir, 'damaged');
  }
});

test.serial('an entry whose key is not this bundle\'s (another build or node) is not used', async (t) => {
  const { cacheDir, file } = await warmed('foreign-key');
  const bytes = readFileSync(file);
  bytes.write('0'.repeat(64), 8, 'latin1');
  writeFileSync(file, bytes);
  await expectRecovery(t, cacheDir, 'none');
});

test.serial('data that passes our checks but that V8 rejects (compiled for another script) is ignored and replaced', async (t) => {
  const { cacheDir, file } = await warmed('rejected');
  const header = Buffer.from(readFileSync(file).subarray(0, HEADER_BYTES));
  const foreign = new vm.Script('function other() { return 42; } other();').createCachedData();
  header.writeUInt32LE(foreign.length, 8 + 64);
  header.writeUInt32LE(crc32(foreign), 8 + 64 + 4);
  writeFileSync(file, Buffer.concat([header, foreign]));
  await expectRecovery(t, cacheDir, 'rejected');
});

test.serial('a changed bundle (another mtime) gets a new entry; the old one is removed', async (t) => {
  const { cacheDir, file } = await warmed('rebuilt');
  const stray = path.join(cacheDir, 'code', 'main-0123456789abcdef.bin');
  writeFileSync(stray, 'left by an older build');
  const bundle = path.join(distDir, 'main.js');
  const { atime, mtime } = statSync(bundle);
  utimesSync(bundle, atime, new Date(mtime.getTime() + 1000));
  try {
    const result = await run(cacheDir);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, expected);
    t.is(cacheVerdict(result), 'none');
    const after = entries(cacheDir);
    t.is(after.length, 1, after.join(', '));
    t.not(after[0], file);
    t.is(cacheVerdict(await run(cacheDir)), 'used');
  } finally {
    utimesSync(bundle, atime, mtime);
  }
});

test.serial('an unwritable cache directory costs speed only', async (t) => {
  const blocker = path.join(scratch, 'not-a-directory');
  writeFileSync(blocker, 'a file where the cache directory would be');
  for (let i = 0; i < 2; i++) {
    const result = await run(blocker);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, expected);
    t.is(cacheVerdict(result), 'none');
  }
  const quiet = await run(blocker, {}, ['cluster', 'status']);
  t.is(quiet.code, 0);
  t.is(quiet.stdout, expected);
  t.is(quiet.stderr, '', 'nothing on stderr without --debug');
});

test.serial('CUTOVER_CODE_CACHE=off and CUTOVER_CACHE_DIR=off write nothing', async (t) => {
  const cacheDir = path.join(scratch, 'off');
  for (const env of [{ CUTOVER_CODE_CACHE: 'off' }, {}]) {
    const result = await run(Object.keys(env).length === 0 ? 'off' : cacheDir, env);
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, expected);
    t.is(cacheVerdict(result), 'off');
  }
  t.deepEqual(entries(cacheDir), []);
});
