// Fixtures of the artifact tests: temp directories, slice directories and hand-built tar archives.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { ExecutionContext } from 'ava';
import { Header, type HeaderData } from 'tar';

/** The example slices of the repository. */
export const EXAMPLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'slices', 'greeter');
export const GREETER_VERSIONS = ['1.0.0', '2.0.0', '2.1.0-bad'] as const;

/** A fresh temp directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext, label = 'cutover-artifact-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), label));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface SliceDirOptions {
  readonly version?: string;
  readonly artifactId?: string;
  /** Extra files, path → contents. */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
  /** Fields merged into slice.json. */
  readonly manifest?: Readonly<Record<string, unknown>>;
}

/** A slice directory under `root`: slice.json, index.js (a tiny greeter) and `files`. */
export async function writeSliceDir(root: string, options: SliceDirOptions = {}): Promise<string> {
  const version = options.version ?? '1.0.0';
  const dir = join(root, `${options.artifactId ?? 'greeter'}-${version}`);
  const manifest = { groupId: 'org.example', artifactId: options.artifactId ?? 'greeter', version, entry: 'index.js', methods: ['hello'], health: true, ...options.manifest };
  const files: Record<string, string | Uint8Array> = {
    'slice.json': JSON.stringify(manifest, null, 2),
    'index.js': `export default () => ({ async hello({ name }) { return { message: 'Hello, ' + name + '!', version: ${JSON.stringify(version)} }; } });\n`,
    ...options.files,
  };
  for (const [path, contents] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), contents);
  }
  return dir;
}

/** Deterministic incompressible bytes (xorshift32), so a package spans several chunks. */
export function noise(length: number, seed = 0x9e3779b9): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** One entry of a hand-built archive; `type` defaults to 'File'. */
export interface RawEntry extends HeaderData {
  readonly path: string;
  readonly data?: string | Uint8Array;
}

/**
 * A gzipped tar built header by header with tar's `Header`, so that a test can write what no
 * well-behaved packer would: absolute paths, `..`, links, devices, duplicates.
 */
export function rawTgz(entries: readonly RawEntry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const { data, ...fields } of entries) {
    const bytes = typeof data === 'string' ? Buffer.from(data) : (data ?? new Uint8Array(0));
    const header = new Header({ mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: 'File', ...fields, size: bytes.byteLength });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, bytes, new Uint8Array((512 - (bytes.byteLength % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  return new Uint8Array(gzipSync(Buffer.concat(blocks)));
}

/** A valid manifest text for hand-built archives. */
export function manifestText(fields: Readonly<Record<string, unknown>> = {}): string {
  return JSON.stringify({ groupId: 'org.example', artifactId: 'greeter', version: '1.0.0', entry: 'index.js', methods: ['hello'], ...fields });
}

/** The minimal valid archive's entries: slice.json and index.js. */
export function validEntries(): RawEntry[] {
  return [
    { path: 'slice.json', data: manifestText() },
    { path: 'index.js', data: 'export default () => ({ async hello() { return {}; } });\n' },
  ];
}
