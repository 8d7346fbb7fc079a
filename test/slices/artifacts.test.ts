// Tests of src/slices/artifact-store.ts and artifact-cache.ts: the artifact repository in the
// replicated KV (over MemoryClusterPort) and the node's local copies.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import type { Compare, KeyValue, Operation } from '../../src/kv/index.ts';
import { MemoryClusterPort, type TxnResult } from '../../src/node/cluster-port.ts';
import { LocalArtifactCache } from '../../src/slices/artifact-cache.ts';
import { packArtifact, type PackedArtifact } from '../../src/slices/artifact-package.ts';
import {
  ARTIFACT_CHUNK_BYTES_MIN,
  PUBLISH_TXN_VALUE_BYTES_MAX,
  fetchArtifact,
  getArtifactMeta,
  listArtifacts,
  parseArtifactMeta,
  publishArtifact,
} from '../../src/slices/artifact-store.ts';
import { artifactBase, artifactChunkKey, artifactChunkPrefix, artifactKey } from '../../src/slices/keys.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { EXAMPLES_DIR, noise, rawTgz, tempDir, validEntries, writeSliceDir } from './artifact-fixtures.ts';

const greeter = artifactBase('org.example', 'greeter');

/** A greeter package of `version` with `noiseBytes` of incompressible data, so it spans chunks. */
async function packGreeter(t: Parameters<typeof tempDir>[0], version = '1.0.0', noiseBytes = 5000, seed = 1): Promise<PackedArtifact> {
  const root = await tempDir(t);
  return packArtifact(await writeSliceDir(root, { version, files: { 'data.bin': noise(noiseBytes, seed) } }));
}

/** A port that records its transactions and can run a hook after each one. */
class RecordingPort extends MemoryClusterPort {
  readonly txns: { ops: readonly Operation[]; valueBytes: number; succeeded: boolean }[] = [];
  chunkRanges = 0;
  afterTxn: ((index: number) => void) | undefined;

  override async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
    const result = await super.txn(compare, success, failure);
    const valueBytes = success.reduce((sum, op) => sum + (op.type === 'put' ? op.value.length : 0), 0);
    this.txns.push({ ops: success, valueBytes, succeeded: result.succeeded });
    this.afterTxn?.(this.txns.length - 1);
    return result;
  }

  override async range(prefix: string, options: { limit?: number } = {}): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> {
    if (prefix.startsWith('artifact-chunk/')) this.chunkRanges++;
    return super.range(prefix, options);
  }

  /** Writes a key directly (as another client would). */
  put(key: string, value: string): void {
    this.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key, value } });
  }

  remove(key: string): void {
    this.kv.apply({ clientId: 0, sequence: 0, command: { type: 'delete', key } });
  }
}

// ---------------------------------------------------------------------------------------------
// Store

test('publish and fetch round-trip a package of several chunks; metadata is written last', async (t) => {
  const port = new RecordingPort();
  const packed = await packGreeter(t);
  const { meta, created } = await publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN, publishedBy: 'ops@example', nowMs: 1_700_000_000_000, expectedSha256: packed.sha256.toUpperCase() });
  t.true(created);
  t.true(meta.chunks >= 5, `chunks: ${meta.chunks}`);
  t.like(meta, { groupId: 'org.example', artifactId: 'greeter', version: '1.0.0', sha256: packed.sha256, size: packed.bytes.byteLength, chunkBytes: ARTIFACT_CHUNK_BYTES_MIN, publishedAt: 1_700_000_000_000, publishedBy: 'ops@example' });
  t.deepEqual(meta.manifest, packed.manifest);
  t.deepEqual(await fetchArtifact(port, greeter, '1.0.0'), packed.bytes);
  t.deepEqual(await getArtifactMeta(port, greeter, '1.0.0'), meta);
  t.is((await port.range(artifactChunkPrefix(greeter, '1.0.0'))).kvs.length, meta.chunks);
  const last = port.txns.at(-1)!;
  t.deepEqual(
    last.ops.map((op) => op.type === 'put' && op.key),
    [artifactKey(greeter, '1.0.0')],
  );
});

test('chunks go in transactions of at most ~1 MiB of values', async (t) => {
  const port = new RecordingPort();
  // 700 KiB of noise: three 256 KiB chunks, two per transaction (three would pass 1 MiB of base64).
  const packed = await packGreeter(t, '1.0.0', 700 * 1024);
  const { meta } = await publishArtifact(port, packed.bytes);
  t.is(meta.chunks, 3);
  t.is(port.txns.length, 3);
  for (const txn of port.txns) t.true(txn.valueBytes <= PUBLISH_TXN_VALUE_BYTES_MAX, `${txn.valueBytes} bytes`);
  t.deepEqual(await fetchArtifact(port, greeter, '1.0.0'), packed.bytes);
});

test('too large, hash mismatch and bad packages are refused and write nothing', async (t) => {
  const port = new RecordingPort();
  const packed = await packGreeter(t);
  await t.throwsAsync(publishArtifact(port, packed.bytes, { maxBytes: packed.bytes.byteLength - 1 }), { code: 'ARTIFACT_TOO_LARGE' });
  await t.throwsAsync(publishArtifact(port, packed.bytes, { expectedSha256: '0'.repeat(64) }), { code: 'ARTIFACT_HASH_MISMATCH' });
  await t.throwsAsync(publishArtifact(port, new TextEncoder().encode('not a tgz')), { code: 'INVALID_ARTIFACT' });
  const badManifest = rawTgz([{ path: 'slice.json', data: '{"groupId":"org.example"}' }, { path: 'index.js', data: 'x' }]);
  await t.throwsAsync(publishArtifact(port, badManifest), { code: 'INVALID_MANIFEST' });
  await t.throwsAsync(publishArtifact(port, packed.bytes, { chunkBytes: 10 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(publishArtifact(port, packed.bytes, { expectedSha256: 'abc' }), { code: 'INVALID_ARGUMENT' });
  // 5 KiB of noise in 1 KiB chunks fits; 130 KiB would need more chunks than one artifact may have.
  const wide = await packGreeter(t, '1.0.1', 130 * 1024);
  await t.throwsAsync(publishArtifact(port, wide.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN }), { code: 'INVALID_ARGUMENT' });
  t.is(port.txns.length, 0);
  t.is(port.revision(), 0);
});

test('versions are immutable: republishing the same bytes is idempotent, other bytes are refused', async (t) => {
  const port = new RecordingPort();
  const original = await packGreeter(t, '1.0.0', 5000, 1);
  const other = await packGreeter(t, '1.0.0', 5000, 2);
  t.not(original.sha256, other.sha256);
  const { meta } = await publishArtifact(port, original.bytes, { nowMs: 1 });
  const revision = port.revision();

  // The stored metadata comes back (with its first publish time); nothing is written.
  t.deepEqual(await publishArtifact(port, original.bytes, { nowMs: 2 }), { meta, created: false });
  t.is(port.revision(), revision);

  await t.throwsAsync(publishArtifact(port, other.bytes), { code: 'ARTIFACT_EXISTS' });
  t.is(port.revision(), revision);
  t.deepEqual(await fetchArtifact(port, greeter, '1.0.0'), original.bytes);
});

test('a retry after a crash mid-publish replaces the orphan chunks', async (t) => {
  const port = new RecordingPort();
  const packed = await packGreeter(t);
  // A crashed attempt with other bytes and more chunks left these behind, without metadata.
  for (let i = 0; i < 9; i++) port.put(artifactChunkKey(greeter, '1.0.0', i), Buffer.from(`orphan ${i}`).toString('base64'));
  await t.throwsAsync(fetchArtifact(port, greeter, '1.0.0'), { code: 'ARTIFACT_NOT_FOUND' });
  const { meta } = await publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
  t.true(meta.chunks < 9);
  t.is((await port.range(artifactChunkPrefix(greeter, '1.0.0'))).kvs.length, meta.chunks);
  t.deepEqual(await fetchArtifact(port, greeter, '1.0.0'), packed.bytes);
});

test('a chunk rewritten by a racing publisher makes the publish start over', async (t) => {
  const port = new RecordingPort();
  const packed = await packGreeter(t);
  let raced = false;
  port.afterTxn = () => {
    if (raced) return;
    raced = true;
    port.put(artifactChunkKey(greeter, '1.0.0', 0), Buffer.from('the other publisher').toString('base64'));
  };
  await publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
  t.true(port.txns.some((txn) => !txn.succeeded));
  t.deepEqual(await fetchArtifact(port, greeter, '1.0.0'), packed.bytes);
});

test('a publisher that keeps losing the race gives up with ARTIFACT_PUBLISH_CONFLICT, publishing nothing', async (t) => {
  const port = new RecordingPort();
  const packed = await packGreeter(t);
  port.afterTxn = () => port.put(artifactChunkKey(greeter, '1.0.0', 0), Buffer.from('the other publisher').toString('base64'));
  await t.throwsAsync(publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN }), { code: 'ARTIFACT_PUBLISH_CONFLICT' });
  t.is(await getArtifactMeta(port, greeter, '1.0.0'), undefined);
});

test('a publisher that finds the version published meanwhile stops: same bytes succeed, other bytes are refused', async (t) => {
  const packed = await packGreeter(t);
  const other = await packGreeter(t, '1.0.0', 5000, 3);
  for (const [rivalBytes, outcome] of [[packed.bytes, 'published'], [other.bytes, 'ARTIFACT_EXISTS']] as const) {
    // Another publisher completes the same version right after our first chunk transaction.
    const rival = new MemoryClusterPort();
    const { meta: rivalMeta } = await publishArtifact(rival, rivalBytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN, nowMs: 5 });
    const port = new RecordingPort();
    port.afterTxn = (index) => {
      if (index === 0) port.put(artifactKey(greeter, '1.0.0'), JSON.stringify(rivalMeta));
    };
    const publishing = publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN, nowMs: 6 });
    if (outcome === 'published') t.deepEqual(await publishing, { meta: rivalMeta, created: false });
    else await t.throwsAsync(publishing, { code: outcome });
    // Only the first chunk transaction ran; the guard kept us from writing over a published version.
    t.is(port.txns.filter((txn) => txn.succeeded).length, 1);
  }
});

test('fetch detects corrupt, missing and undecodable chunks and a wrong size', async (t) => {
  const packed = await packGreeter(t);
  const publish = async (): Promise<RecordingPort> => {
    const port = new RecordingPort();
    await publishArtifact(port, packed.bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
    return port;
  };
  const chunk1 = artifactChunkKey(greeter, '1.0.0', 1);

  const flipped = await publish();
  const bytes = Buffer.from((await flipped.get(chunk1))!.value, 'base64');
  bytes[7] = bytes[7]! ^ 0xff;
  flipped.put(chunk1, bytes.toString('base64'));
  await t.throwsAsync(fetchArtifact(flipped, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT', message: /sha256/ });

  const missing = await publish();
  missing.remove(chunk1);
  await t.throwsAsync(fetchArtifact(missing, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT' });

  const undecodable = await publish();
  undecodable.put(chunk1, '!!!not base64!!!');
  await t.throwsAsync(fetchArtifact(undecodable, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT' });

  const short = await publish();
  short.put(chunk1, bytes.subarray(0, 100).toString('base64'));
  await t.throwsAsync(fetchArtifact(short, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT' });

  const badMeta = await publish();
  badMeta.put(artifactKey(greeter, '1.0.0'), '{"groupId": 3}');
  await t.throwsAsync(fetchArtifact(badMeta, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT' });

  await t.throwsAsync(fetchArtifact(new MemoryClusterPort(), greeter, '1.0.0'), { code: 'ARTIFACT_NOT_FOUND' });
});

test('parseArtifactMeta returns a reason for bad stored data and never throws', async (t) => {
  const port = new RecordingPort();
  const { meta } = await publishArtifact(port, (await packGreeter(t)).bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
  t.deepEqual(parseArtifactMeta(JSON.stringify(meta)), { ok: true, meta });
  const broken: unknown[] = [
    'not json',
    '[]',
    'null',
    { ...meta, groupId: 'a b' },
    { ...meta, version: '1' },
    { ...meta, sha256: 'ABC' },
    { ...meta, size: -1 },
    { ...meta, chunks: meta.chunks + 1 },
    { ...meta, chunkBytes: 0 },
    { ...meta, publishedAt: 'yesterday' },
    { ...meta, publishedBy: 7 },
    { ...meta, manifest: { ...meta.manifest, methods: [] } },
    { ...meta, manifest: { ...meta.manifest, version: '9.9.9' } },
    { ...meta, manifest: undefined },
  ];
  for (const value of broken) {
    const parsed = parseArtifactMeta(typeof value === 'string' ? value : JSON.stringify(value));
    t.false(parsed.ok, JSON.stringify(value));
    if (!parsed.ok) t.true(parsed.reason.length > 0);
  }
});

test('listArtifacts sorts by base then SemVer and skips (and reports) unreadable entries', async (t) => {
  const port = new RecordingPort();
  for (const version of ['2.0.0', '10.0.0', '1.0.0', '2.1.0-bad', '2.1.0']) await publishArtifact(port, (await packGreeter(t, version, 100)).bytes);
  const root = await tempDir(t);
  const billing = await packArtifact(await writeSliceDir(root, { artifactId: 'billing', version: '3.0.0' }));
  await publishArtifact(port, billing.bytes);
  port.put(artifactKey(greeter, '9.0.0'), 'garbage');
  port.put(artifactKey(greeter, '9.0.1'), JSON.stringify((await getArtifactMeta(port, greeter, '1.0.0'))!));

  const invalid: string[] = [];
  const all = await listArtifacts(port, undefined, { onInvalid: (key) => invalid.push(key) });
  t.deepEqual(
    all.map((m) => `${m.artifactId}:${m.version}`),
    ['billing:3.0.0', 'greeter:1.0.0', 'greeter:2.0.0', 'greeter:2.1.0-bad', 'greeter:2.1.0', 'greeter:10.0.0'],
  );
  t.deepEqual(invalid, [artifactKey(greeter, '9.0.0'), artifactKey(greeter, '9.0.1')]);
  t.deepEqual(
    (await listArtifacts(port, artifactBase('org.example', 'billing'))).map((m) => m.version),
    ['3.0.0'],
  );
  t.deepEqual(await listArtifacts(port, artifactBase('org.example', 'nothing')), []);
});

// ---------------------------------------------------------------------------------------------
// Local cache

const context = (version: string) => ({ nodeId: 1, instanceId: 'i1', groupId: 'org.example', artifactId: 'greeter', version, logger: silentLogger });

interface GreeterInstance {
  hello(request: { name: string }): Promise<{ message: string; version: string }>;
  health(): Promise<{ healthy: boolean }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function loadGreeter(entryUrl: string, version: string): Promise<GreeterInstance> {
  const module = (await import(entryUrl)) as { default: (c: ReturnType<typeof context>) => GreeterInstance };
  return module.default(context(version));
}

test('ensure fetches, unpacks and verifies a version; its entry module loads', async (t) => {
  const port = new RecordingPort();
  const packed = await packArtifact(join(EXAMPLES_DIR, '1.0.0'));
  await publishArtifact(port, packed.bytes);
  const root = await tempDir(t);
  const cache = new LocalArtifactCache(root);
  const local = await cache.ensure(port, greeter, '1.0.0');
  t.is(local.sha256, packed.sha256);
  t.deepEqual(local.manifest, packed.manifest);
  t.is(local.dir, join(cache.versionDir(greeter, '1.0.0'), 'files'));
  t.true(local.entryUrl.startsWith('file://') && local.entryUrl.endsWith('/org.example/greeter/1.0.0/files/index.js'));
  t.is(await readFile(join(local.dir, 'index.js'), 'utf8'), await readFile(join(EXAMPLES_DIR, '1.0.0', 'index.js'), 'utf8'));

  const instance = await loadGreeter(local.entryUrl, '1.0.0');
  await instance.start();
  t.deepEqual(await instance.hello({ name: 'Ada' }), { message: 'Hello, Ada!', version: '1.0.0' });
  t.deepEqual(await instance.health(), { healthy: true });
  await instance.stop();
  await t.throwsAsync(cache.ensure(port, greeter, '3.0.0'), { code: 'ARTIFACT_NOT_FOUND' });
});

test('a verified local copy is reused without fetching; a damaged one is fetched again', async (t) => {
  const port = new RecordingPort();
  await publishArtifact(port, (await packGreeter(t)).bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
  const root = await tempDir(t);
  const first = await new LocalArtifactCache(root).ensure(port, greeter, '1.0.0');
  t.is(port.chunkRanges, 1);

  // A new cache over the same directory (a restarted node) trusts the verified copy.
  t.deepEqual(await new LocalArtifactCache(root).ensure(port, greeter, '1.0.0'), first);
  t.is(port.chunkRanges, 1);

  const damages: [string, () => Promise<void>][] = [
    ['edited module', () => writeFile(join(first.dir, 'index.js'), 'export default () => { throw new Error("tampered"); };\n')],
    ['deleted file', () => rm(join(first.dir, 'data.bin'))],
    ['deleted marker', () => rm(join(first.dir, '..', 'artifact.json'))],
    ['stale marker', () => writeFile(join(first.dir, '..', 'artifact.json'), JSON.stringify({ sha256: '0'.repeat(64), files: [] }))],
    ['garbage marker', () => writeFile(join(first.dir, '..', 'artifact.json'), '{')],
    ['deleted package.json', () => rm(join(first.dir, '..', 'package.json'))],
  ];
  for (const [title, damage] of damages) {
    await damage();
    const before = port.chunkRanges;
    const again = await new LocalArtifactCache(root).ensure(port, greeter, '1.0.0');
    t.is(port.chunkRanges, before + 1, title);
    t.deepEqual(again, first, title);
    t.is(await readFile(join(again.dir, 'index.js'), 'utf8'), await readFile(join(first.dir, 'index.js'), 'utf8'), title);
  }
  // The replaced copies and work directories are gone.
  t.deepEqual(await readdir(join(root, '.staging')), []);
});

test('concurrent ensure calls for one version share one fetch', async (t) => {
  const port = new RecordingPort();
  await publishArtifact(port, (await packGreeter(t)).bytes);
  const cache = new LocalArtifactCache(await tempDir(t));
  const results = await Promise.all([cache.ensure(port, greeter, '1.0.0'), cache.ensure(port, greeter, '1.0.0'), cache.ensure(port, greeter, '1.0.0')]);
  t.is(port.chunkRanges, 1);
  t.deepEqual(results[1], results[0]);
  t.deepEqual(results[2], results[0]);
});

test('a corrupt artifact in the store is never unpacked', async (t) => {
  const port = new RecordingPort();
  await publishArtifact(port, (await packGreeter(t)).bytes, { chunkBytes: ARTIFACT_CHUNK_BYTES_MIN });
  port.put(artifactChunkKey(greeter, '1.0.0', 0), Buffer.alloc(ARTIFACT_CHUNK_BYTES_MIN).toString('base64'));
  const cache = new LocalArtifactCache(await tempDir(t));
  await t.throwsAsync(cache.ensure(port, greeter, '1.0.0'), { code: 'ARTIFACT_CORRUPT' });
  await t.throwsAsync(readFile(join(cache.versionDir(greeter, '1.0.0'), 'artifact.json')), { code: 'ENOENT' });
});

test('each example version lives in its own directory and loads as its own module', async (t) => {
  const port = new RecordingPort();
  for (const version of ['1.0.0', '2.0.0', '2.1.0-bad']) await publishArtifact(port, (await packArtifact(join(EXAMPLES_DIR, version))).bytes);
  const cache = new LocalArtifactCache(await tempDir(t));
  const [v1, v2, bad] = await Promise.all(['1.0.0', '2.0.0', '2.1.0-bad'].map((version) => cache.ensure(port, greeter, version)));
  t.is(new Set([v1!.entryUrl, v2!.entryUrl, bad!.entryUrl]).size, 3);
  const one = await loadGreeter(v1!.entryUrl, '1.0.0');
  const two = await loadGreeter(v2!.entryUrl, '2.0.0');
  t.like(await one.hello({ name: 'Ada' }), { message: 'Hello, Ada!', version: '1.0.0' });
  const answer = await two.hello({ name: 'Ada' });
  t.is(answer.version, '2.0.0');
  t.not(answer.message, 'Hello, Ada!');

  // 2.1.0-bad: every 5th call of an instance fails (the calls run at once: each takes 300 ms).
  const broken = await loadGreeter(bad!.entryUrl, '2.1.0-bad');
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => broken.hello({ name: 'Ada' })));
  t.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected'],
  );
  t.deepEqual(await broken.health(), { healthy: true });
});

test('hand-built minimal package publishes and caches (no data file needed)', async (t) => {
  const port = new RecordingPort();
  await publishArtifact(port, rawTgz(validEntries()));
  const local = await new LocalArtifactCache(await tempDir(t)).ensure(port, greeter, '1.0.0');
  t.deepEqual(local.manifest.methods, ['hello']);
});
