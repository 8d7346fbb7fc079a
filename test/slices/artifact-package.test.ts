// Tests of src/slices/artifact-package.ts: deterministic packing and refusing unsafe packages.
import { chmod, cp, mkdir, readFile, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { create as tarCreate, Parser, type ReadEntry } from 'tar';
import { DEFAULT_ARTIFACT_LIMITS, packArtifact, readArtifact, sha256Hex, unpackArtifact } from '../../src/slices/artifact-package.ts';
import { EXAMPLES_DIR, GREETER_VERSIONS, manifestText, noise, rawTgz, tempDir, validEntries, writeSliceDir, type RawEntry } from './artifact-fixtures.ts';

/** The headers of a package, as tar's parser reads them. */
async function headers(bytes: Uint8Array): Promise<{ path: string; mode: number | undefined; uid: number | undefined; gid: number | undefined; mtime: number | undefined; type: string }[]> {
  const found: { path: string; mode: number | undefined; uid: number | undefined; gid: number | undefined; mtime: number | undefined; type: string }[] = [];
  const parser = new Parser();
  parser.on('entry', (entry: ReadEntry) => {
    found.push({ path: entry.path, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime?.getTime(), type: entry.type });
    entry.resume();
  });
  await new Promise<void>((resolve) => {
    parser.on('end', () => resolve());
    parser.end(Buffer.from(bytes));
  });
  return found;
}

test('packing a directory is deterministic: same bytes whatever the mtimes and modes', async (t) => {
  const root = await tempDir(t);
  const dir = await writeSliceDir(root, { files: { 'lib/util.js': 'export const x = 1;\n', 'b.txt': 'b', 'a.txt': 'a', [`deep/${'n'.repeat(120)}/x.js`]: 'long path' } });
  const first = await packArtifact(dir);
  const second = await packArtifact(dir);
  t.is(first.sha256, second.sha256);
  t.deepEqual(first.bytes, second.bytes);
  t.is(first.sha256, sha256Hex(first.bytes));
  t.is(first.manifest.version, '1.0.0');

  // A copy with other timestamps and permissions packs to the same bytes.
  const copy = join(root, 'copy');
  await cp(dir, copy, { recursive: true });
  await utimes(join(copy, 'index.js'), new Date(1_000_000), new Date(2_000_000));
  await chmod(join(copy, 'a.txt'), 0o755);
  t.is((await packArtifact(copy)).sha256, first.sha256);

  const entries = await headers(first.bytes);
  t.deepEqual(
    entries.map((e) => e.path),
    ['a.txt', 'b.txt', `deep/${'n'.repeat(120)}/x.js`, 'index.js', 'lib/util.js', 'slice.json'],
  );
  for (const entry of entries) t.like(entry, { mode: 0o644, uid: 0, gid: 0, mtime: 0, type: 'File' });
});

test('a packed directory unpacks to the same files', async (t) => {
  const root = await tempDir(t);
  const data = noise(3000);
  const dir = await writeSliceDir(root, { files: { 'lib/data.bin': data } });
  const packed = await packArtifact(dir);
  const dest = join(root, 'out');
  const contents = await unpackArtifact(packed.bytes, dest);
  t.deepEqual(contents.manifest, packed.manifest);
  t.deepEqual(new Uint8Array(await readFile(join(dest, 'lib', 'data.bin'))), data);
  t.is(await readFile(join(dest, 'slice.json'), 'utf8'), await readFile(join(dir, 'slice.json'), 'utf8'));
  t.deepEqual((await readdir(dest)).sort(), ['index.js', 'lib', 'slice.json']);
});

test('a .tgz made by tar from a directory is accepted as is', async (t) => {
  const root = await tempDir(t);
  const dir = await writeSliceDir(root);
  const file = join(root, 'greeter.tgz');
  // `tar czf greeter.tgz -C dir .`: every path starts with ./ and the root directory is an entry.
  await tarCreate({ gzip: true, file, cwd: dir }, ['.']);
  const packed = await packArtifact(file);
  t.deepEqual(packed.bytes, new Uint8Array(await readFile(file)));
  t.is(packed.manifest.artifactId, 'greeter');
  const contents = await readArtifact(packed.bytes);
  t.deepEqual(
    contents.files.map((f) => f.path),
    ['index.js', 'slice.json'],
  );
});

test('each example greeter version packs, with the manifest it documents', async (t) => {
  for (const version of GREETER_VERSIONS) {
    const packed = await packArtifact(join(EXAMPLES_DIR, version));
    t.like(packed.manifest, { groupId: 'org.example', artifactId: 'greeter', version, entry: 'index.js', methods: ['hello'], health: true });
    t.is(packed.manifest.minCompatibleVersion, version === '1.0.0' ? undefined : '1.0.0');
    t.is((await packArtifact(join(EXAMPLES_DIR, version))).sha256, packed.sha256);
  }
});

test('packing refuses directories without slice.json, with symlinks, or past the limits', async (t) => {
  const root = await tempDir(t);
  const empty = join(root, 'empty');
  await mkdir(empty);
  await writeFile(join(empty, 'index.js'), 'export default () => ({});\n');
  await t.throwsAsync(packArtifact(empty), { code: 'INVALID_ARTIFACT' });

  const linked = await writeSliceDir(root, { version: '1.0.1' });
  await symlink('/etc/passwd', join(linked, 'passwd'));
  await t.throwsAsync(packArtifact(linked), { code: 'INVALID_ARTIFACT' });

  const big = await writeSliceDir(root, { version: '1.0.2', files: { 'data.bin': noise(4096) } });
  await t.throwsAsync(packArtifact(big, { ...DEFAULT_ARTIFACT_LIMITS, unpackedBytesMax: 2048 }), { code: 'ARTIFACT_TOO_LARGE' });
  await t.throwsAsync(packArtifact(big, { ...DEFAULT_ARTIFACT_LIMITS, entriesMax: 2 }), { code: 'ARTIFACT_TOO_LARGE' });

  const badManifest = await writeSliceDir(root, { version: '1.0.3', manifest: { methods: ['start'] } });
  await t.throwsAsync(packArtifact(badManifest), { code: 'INVALID_MANIFEST' });

  const missingEntry = await writeSliceDir(root, { version: '1.0.4', manifest: { entry: 'main.js' } });
  await t.throwsAsync(packArtifact(missingEntry), { code: 'INVALID_ARTIFACT' });

  await writeFile(join(root, 'notes.txt'), 'not a package');
  await t.throwsAsync(packArtifact(join(root, 'notes.txt')), { code: 'INVALID_ARTIFACT' });
  await t.throwsAsync(packArtifact(join(root, 'missing')), { code: 'INVALID_ARTIFACT' });
});

test('the hand-built valid archive is accepted (the refusals below differ from it in one way)', async (t) => {
  const contents = await readArtifact(rawTgz(validEntries()));
  t.is(contents.manifest.entry, 'index.js');
});

const unsafe: readonly [string, RawEntry[]][] = [
  ['an absolute path', [...validEntries(), { path: '/tmp/evil.js', data: 'x' }]],
  ['a .. path', [...validEntries(), { path: '../evil.js', data: 'x' }]],
  ['a .. segment inside', [...validEntries(), { path: 'lib/../../evil.js', data: 'x' }]],
  ['a symlink', [...validEntries(), { path: 'link', type: 'SymbolicLink', linkpath: '/etc/passwd' }]],
  ['a hard link', [...validEntries(), { path: 'hard', type: 'Link', linkpath: 'index.js' }]],
  ['a character device', [...validEntries(), { path: 'dev', type: 'CharacterDevice' }]],
  ['a block device', [...validEntries(), { path: 'blk', type: 'BlockDevice' }]],
  ['a FIFO', [...validEntries(), { path: 'fifo', type: 'FIFO' }]],
  ['a duplicate path', [...validEntries(), { path: 'index.js', data: 'export default 2;' }]],
  ['a file where a directory must be', [...validEntries(), { path: 'lib', data: 'x' }, { path: 'lib/a.js', data: 'y' }]],
  ['a backslash path', [...validEntries(), { path: 'lib\\a.js', data: 'x' }]],
  ['no slice.json', validEntries().filter((e) => e.path !== 'slice.json')],
  ['slice.json below the root', [{ path: 'pkg/slice.json', data: manifestText() }, { path: 'index.js', data: 'x' }]],
  ['no entry module', validEntries().filter((e) => e.path !== 'index.js')],
];

for (const [title, entries] of unsafe) {
  test(`refused before anything is written: ${title}`, async (t) => {
    const bytes = rawTgz(entries);
    await t.throwsAsync(readArtifact(bytes), { code: 'INVALID_ARTIFACT' });
    const dest = join(await tempDir(t), 'out');
    await t.throwsAsync(unpackArtifact(bytes, dest), { code: 'INVALID_ARTIFACT' });
    await t.throwsAsync(readdir(dest), { code: 'ENOENT' });
  });
}

test('refused: not gzip, truncated, nested compression, garbage tar, bad manifest', async (t) => {
  const tarBytes = gzipSync(Buffer.from('x'.repeat(2048)));
  await t.throwsAsync(readArtifact(new TextEncoder().encode('plain text, not a package')), { code: 'INVALID_ARTIFACT' });
  const valid = rawTgz(validEntries());
  await t.throwsAsync(readArtifact(valid.subarray(0, valid.byteLength - 20)), { code: 'INVALID_ARTIFACT' });
  await t.throwsAsync(readArtifact(new Uint8Array(gzipSync(valid))), { code: 'INVALID_ARTIFACT' });
  await t.throwsAsync(readArtifact(new Uint8Array(tarBytes)), { code: 'INVALID_ARTIFACT' });
  await t.throwsAsync(readArtifact(rawTgz([{ path: 'slice.json', data: '{"groupId": 1}' }, { path: 'index.js', data: 'x' }])), { code: 'INVALID_MANIFEST' });
  await t.throwsAsync(readArtifact(rawTgz([{ path: 'slice.json', data: new Uint8Array([0xff, 0xfe]) }])), { code: 'INVALID_ARTIFACT' });
});

test('refused: too many entries, too many unpacked bytes, a decompression bomb', async (t) => {
  const limits = { ...DEFAULT_ARTIFACT_LIMITS, entriesMax: 4, unpackedBytesMax: 64 * 1024 };
  const many = [...validEntries(), ...Array.from({ length: 3 }, (_, i) => ({ path: `f${i}.txt`, data: 'x' }))];
  await t.throwsAsync(readArtifact(rawTgz(many), limits), { code: 'INVALID_ARTIFACT' });
  await t.throwsAsync(readArtifact(rawTgz([...validEntries(), { path: 'big.bin', data: noise(65 * 1024) }]), limits), { code: 'INVALID_ARTIFACT' });
  // 16 MiB of zeros compress to a few KiB; inflating stops at the bound instead of at the end.
  const bomb = rawTgz([...validEntries(), { path: 'zeros.bin', data: new Uint8Array(16 * 1024 * 1024) }]);
  t.true(bomb.byteLength < 64 * 1024);
  await t.throwsAsync(readArtifact(bomb, limits), { code: 'INVALID_ARTIFACT', message: /unpacks to more than/ });
});

test('unpacking refuses a destination that is not empty', async (t) => {
  const dest = await tempDir(t);
  await writeFile(join(dest, 'existing'), 'x');
  await t.throwsAsync(unpackArtifact(rawTgz(validEntries()), dest), { code: 'INVALID_ARGUMENT' });
});
