#!/usr/bin/env node
// The `cutover` executable. Operator commands run the precompiled bundle dist/cli/main.js (built
// by `npm run build`, which `npm ci` runs as `prepare`) while it matches the sources it was built
// from; tsx compiling the TypeScript at start-up would cost each command several hundred
// milliseconds. Otherwise, and always for the commands that run nodes (`node`, `local`: long-lived,
// and they start their children from the sources), the TypeScript runs through tsx's loader.
// CUTOVER_FROM_SOURCE=1 forces the sources. CUTOVER_DIST_DIR=<dir> runs the bundle in <dir>
// without the freshness check (tests and benchmarks that build their own).
//
// The bundle runs through vm.Script with a V8 code cache (see runBundle): compiling ~1.6 MB of
// JavaScript is a large part of a command's start-up, and V8 can skip it with the code it compiled
// on an earlier run. Node 20 has no module.enableCompileCache (Node 22 does).
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import vm from 'node:vm';
import { crc32 } from 'node:zlib';

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

/** The build stamp of `distDir` (see scripts/build-cli.mjs), or undefined when there is none. */
function readStamp(distDir) {
  try {
    const stamp = JSON.parse(readFileSync(path.join(distDir, 'build-stamp.json'), 'utf8'));
    return typeof stamp?.bundle?.sha256 === 'string' && typeof stamp.sources === 'object' ? stamp : undefined;
  } catch {
    return undefined;
  }
}

/** True when every source the stamp lists has the mtime it recorded. */
function isFresh(stamp) {
  try {
    return Object.entries(stamp.sources).every(([file, mtimeMs]) => statSync(new URL(file, root)).mtimeMs === mtimeMs);
  } catch {
    return false;
  }
}

// ---- The code cache ------------------------------------------------------------------------
//
// One file per user: <cache dir>/code/main-<key>.bin, where the cache directory is the reflection
// cache's (src/cli/client/descriptor-cache.ts: $CUTOVER_CACHE_DIR, else $XDG_CACHE_HOME/cutover,
// else ~/.cache/cutover). The key names the bundle (its sha256 from the stamp, its size and
// mtime, so a hand-edited bundle is a new key) and the runtime (node version, architecture), so a
// rebuilt bundle or another node never picks up code compiled for something else.
//
// File layout: MAGIC (8 bytes), the key (64 ASCII hex digits), the payload's length (uint32 LE)
// and CRC-32 (uint32 LE), then V8's cached data. V8 checks only that its data fits the V8 version
// and flags (the payload's own checksum is verified in debug builds only), so a corrupted file
// could hand V8 garbage: the length and CRC are checked first, and any mismatch means no cache.
// Data that V8 rejects (other flags, a source it does not fit) is also no cache. With no cache
// the bundle is compiled from source, and the cache is written again when the command exits:
// atomically (a temporary file renamed over), replacing every other entry in the directory (one
// file, under 2 MB, per user), and ignoring any failure (a read-only home costs speed only).
//
// CUTOVER_CODE_CACHE=off or CUTOVER_CACHE_DIR=off turns it off.

const MAGIC = Buffer.from('CUTCC\u0000\u0001\u0000', 'latin1');
const KEY_BYTES = 64;
const HEADER_BYTES = MAGIC.length + KEY_BYTES + 8;
/** Largest payload accepted (V8's data for this bundle is ~1 MB). */
const PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;

function codeCacheDirectory(env) {
  const explicit = env.CUTOVER_CACHE_DIR;
  if (explicit === 'off' || env.CUTOVER_CODE_CACHE === 'off') return undefined;
  if (explicit !== undefined && explicit !== '') return path.join(explicit, 'code');
  const xdg = env.XDG_CACHE_HOME;
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.cache'), 'cutover', 'code');
}

function cacheKey(stamp, bundleFile) {
  const { size, mtimeMs } = statSync(bundleFile);
  return createHash('sha256').update(JSON.stringify([stamp.bundle.sha256, size, mtimeMs, process.version, process.arch, process.versions.v8])).digest('hex');
}

/**
 * The cache file for `key`: `{ payload }` when it is whole, else `{ why }`: 'none' (no file, or
 * one of another bundle or runtime) or 'damaged' (wrong magic, length or CRC).
 */
function readCodeCache(file, key) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch {
    return { why: 'none' };
  }
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { why: 'damaged' };
  if (bytes.toString('latin1', MAGIC.length, MAGIC.length + KEY_BYTES) !== key) return { why: 'none' };
  const length = bytes.readUInt32LE(MAGIC.length + KEY_BYTES);
  const checksum = bytes.readUInt32LE(MAGIC.length + KEY_BYTES + 4);
  const payload = bytes.subarray(HEADER_BYTES);
  if (length === 0 || length > PAYLOAD_BYTES_MAX || payload.length !== length || crc32(payload) !== checksum) return { why: 'damaged' };
  return { payload };
}

/** Writes V8's data for `script` to the cache file atomically, removes the directory's other entries; ignores failures. */
function writeCodeCache(directory, file, key, script) {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const payload = script.createCachedData();
    if (payload.length === 0 || payload.length > PAYLOAD_BYTES_MAX) return;
    mkdirSync(directory, { recursive: true });
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.write(key, MAGIC.length, 'latin1');
    header.writeUInt32LE(payload.length, MAGIC.length + KEY_BYTES);
    header.writeUInt32LE(crc32(payload), MAGIC.length + KEY_BYTES + 4);
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, header);
      writeSync(fd, payload);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
    for (const name of readdirSync(directory)) {
      if (name !== path.basename(file) && /^main-[0-9a-f]+\.bin$/.test(name)) rmSync(path.join(directory, name), { force: true });
    }
  } catch {
    try {
      rmSync(temp, { force: true });
    } catch {
      // The directory is not there or not a directory: there is no temporary file either.
    }
  }
}

/** The bundle's text, or undefined when it cannot be read (the sources run instead). */
function readBundle(file, stamp) {
  try {
    // Text that is all ASCII reads the same as latin1, which Node decodes without validating UTF-8.
    // The stamp says whether the bundle was ASCII when built; a bundle changed since (another size)
    // is read as UTF-8.
    const ascii = stamp.bundle.ascii === true && statSync(file).size === stamp.bundle.bytes;
    return readFileSync(file, ascii ? 'latin1' : 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Runs the CommonJS bundle `bundleFile` the way Node would run it as a module (exports, require,
 * module, __filename, __dirname), compiled with the code cache when there is a usable one.
 */
function runBundle(stamp, bundleFile, source) {
  const debug = process.argv.includes('--debug');
  const directory = codeCacheDirectory(process.env);
  const key = directory === undefined ? undefined : cacheKey(stamp, bundleFile);
  const file = key === undefined ? undefined : path.join(directory, `main-${key.slice(0, 16)}.bin`);
  const cache = file === undefined ? { why: 'off' } : readCodeCache(file, key);
  const cachedData = cache.payload;
  const wrapper = `(function (exports, require, module, __filename, __dirname) { ${source}\n})`;
  const script = new vm.Script(wrapper, { filename: bundleFile, ...(cachedData === undefined ? {} : { cachedData }) });
  const used = cachedData !== undefined && !script.cachedDataRejected;
  if (debug) console.error(`cutover: code cache ${used ? 'used' : cachedData === undefined ? cache.why : 'rejected'}${file === undefined ? '' : ` (${file})`}`);
  if (file !== undefined && !used) {
    // After the command, so that V8's data includes the functions the command compiled as it ran.
    process.once('exit', () => writeCodeCache(directory, file, key, script));
  }
  const module = { exports: {}, filename: bundleFile, id: bundleFile, loaded: false };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
}

const distDir = process.env.CUTOVER_DIST_DIR ? path.resolve(process.env.CUTOVER_DIST_DIR) : fileURLToPath(new URL('dist/cli/', root));
const fromSource = process.env.CUTOVER_FROM_SOURCE === '1' || NODE_COMMANDS.has(commandName(process.argv.slice(2)) ?? '');
const stamp = fromSource ? undefined : readStamp(distDir);
const bundleFile = stamp === undefined ? undefined : path.join(distDir, stamp.bundle.file);
const bundleSource = bundleFile !== undefined && (process.env.CUTOVER_DIST_DIR || isFresh(stamp)) ? readBundle(bundleFile, stamp) : undefined;
if (bundleSource !== undefined) {
  runBundle(stamp, bundleFile, bundleSource);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
