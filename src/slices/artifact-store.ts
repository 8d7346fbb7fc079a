/**
 * The artifact repository, kept in the replicated KV store (DESIGN.md decision 3) so that every
 * node can fetch any published artifact without a separate file server.
 *
 * Layout (keys from keys.ts): an artifact version is its chunks under
 * `artifact-chunk/{base}/{version}/{index}` (base64 strings, as KV values are strings) and its
 * metadata under `artifact/{base}/{version}`. The metadata is written last, in a transaction that
 * requires it to be absent, so its presence means the version is complete, and a version, once
 * published, never changes: republishing the same bytes is an idempotent success, other bytes are
 * refused with ARTIFACT_EXISTS.
 *
 * Publishing writes the chunks in a few transactions of at most ~1 MiB of values each (Raft's
 * maxSizePerMsg), every one guarded by "metadata absent", so chunks of a published version are
 * never overwritten. A crash mid-publish leaves orphan chunks; the first chunk transaction of the
 * next attempt deletes whatever is under the chunk prefix and writes them again. Two publishers
 * racing on one unpublished version could interleave their chunks, so the metadata transaction
 * also requires every chunk to still carry the revision this publisher wrote it at; when it does
 * not, the publisher starts over (a bounded number of times, then ARTIFACT_PUBLISH_CONFLICT).
 */
import type { ClusterPort } from '../node/cluster-port.ts';
import type { Compare, Operation } from '../kv/index.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { DEFAULT_ARTIFACT_LIMITS, readArtifact, sha256Hex, type ArtifactLimits } from './artifact-package.ts';
import {
  ARTIFACT_PREFIX,
  artifactBase,
  artifactChunkKey,
  artifactChunkPrefix,
  artifactKey,
  artifactVersionsPrefix,
  compareSemVer,
  parseArtifactBase,
  parseArtifactKey,
  parseSemVer,
  type ArtifactBase,
} from './keys.ts';
import { manifestBase, parseManifest, type SliceManifest } from './manifest.ts';

/** Default largest artifact accepted by `publishArtifact`, in bytes (gzipped). */
export const ARTIFACT_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;
/** Default chunk size, in bytes before base64. */
export const ARTIFACT_CHUNK_BYTES_DEFAULT = 256 * 1024;
/** Smallest and largest chunk size accepted (the largest, in base64, stays under the 1 MiB KV value limit). */
export const ARTIFACT_CHUNK_BYTES_MIN = 1024;
export const ARTIFACT_CHUNK_BYTES_MAX = 512 * 1024;
/**
 * Most chunks of one artifact: the metadata transaction compares every chunk's revision, and a
 * transaction holds at most 128 compares and operations (DEFAULT_KV_LIMITS.txnOperationsMax).
 */
export const ARTIFACT_CHUNKS_PER_ARTIFACT_MAX = 120;
/** Base64 bytes of chunk values in one publish transaction (at least one chunk per transaction). */
export const PUBLISH_TXN_VALUE_BYTES_MAX = 1024 * 1024;
/** Publish attempts when a concurrent publisher keeps rewriting the same version's chunks. */
export const PUBLISH_ATTEMPTS_MAX = 3;
/** Longest `publishedBy`, in characters. */
export const PUBLISHED_BY_LENGTH_MAX = 256;

/** The metadata of a published artifact version, stored as JSON under `artifactKey`. */
export interface ArtifactMeta {
  readonly groupId: string;
  readonly artifactId: string;
  readonly version: string;
  /** Lower-case hex SHA-256 of the whole package. */
  readonly sha256: string;
  /** Bytes of the package (gzipped tar). */
  readonly size: number;
  /** Number of chunks: ceil(size / chunkBytes). */
  readonly chunks: number;
  /** Bytes per chunk before base64; the last chunk holds the rest. */
  readonly chunkBytes: number;
  readonly manifest: SliceManifest;
  /** Milliseconds since the Unix epoch, when the publisher passed `nowMs`. */
  readonly publishedAt?: number;
  readonly publishedBy?: string;
}

/** Options of `publishArtifact`. */
export interface PublishOptions {
  /** Largest package accepted; ARTIFACT_TOO_LARGE past it. Default `ARTIFACT_BYTES_MAX_DEFAULT`. */
  readonly maxBytes?: number;
  /** Default `ARTIFACT_CHUNK_BYTES_DEFAULT`, within [ARTIFACT_CHUNK_BYTES_MIN, ARTIFACT_CHUNK_BYTES_MAX]. */
  readonly chunkBytes?: number;
  /** The SHA-256 the caller expects (hex, any case); ARTIFACT_HASH_MISMATCH when the bytes differ. */
  readonly expectedSha256?: string;
  readonly publishedBy?: string;
  /** Wall-clock time of the publish, ms since the epoch (time is a parameter, never read here). */
  readonly nowMs?: number;
  /** Bounds on the package's contents (`readArtifact`). */
  readonly limits?: ArtifactLimits;
  /** Writes added to the transaction that publishes the metadata (the audit event of the publish). */
  readonly publishWrites?: (meta: ArtifactMeta) => readonly Operation[];
}

/** The outcome of `parseArtifactMeta`: never an exception, since the value is data from the store. */
export type ParsedArtifactMeta = { readonly ok: true; readonly meta: ArtifactMeta } | { readonly ok: false; readonly reason: string };

/** What `publishArtifact` did: `created` is false for an idempotent republish of the same bytes. */
export interface PublishResult {
  /** The stored metadata (on a republish, the first publish's, with its time and publisher). */
  readonly meta: ArtifactMeta;
  readonly created: boolean;
}

/**
 * Publishes a package. Returns the stored metadata and whether this call created it. Throws ARTIFACT_TOO_LARGE, ARTIFACT_HASH_MISMATCH, INVALID_ARTIFACT,
 * INVALID_MANIFEST, ARTIFACT_EXISTS (same version, other bytes), ARTIFACT_PUBLISH_CONFLICT, or
 * INVALID_ARGUMENT for bad options; port errors (NOT_LEADER, TIMEOUT, ...) pass through.
 */
export async function publishArtifact(port: ClusterPort, bytes: Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
  const { maxBytes, chunkBytes } = publishSettings(options);
  if (bytes.byteLength > maxBytes) throw new CutoverError('ARTIFACT_TOO_LARGE', `artifact is ${bytes.byteLength} bytes; at most ${maxBytes} are accepted`);
  const sha256 = sha256Hex(bytes);
  if (options.expectedSha256 !== undefined && options.expectedSha256.toLowerCase() !== sha256) {
    throw new CutoverError('ARTIFACT_HASH_MISMATCH', `artifact sha256 is ${sha256}, expected ${options.expectedSha256}`);
  }
  const { manifest } = await readArtifact(bytes, options.limits ?? DEFAULT_ARTIFACT_LIMITS);
  const chunks = Math.ceil(bytes.byteLength / chunkBytes);
  if (chunks > ARTIFACT_CHUNKS_PER_ARTIFACT_MAX) throw new InvalidArgumentError('chunkBytes', `${chunkBytes} cuts this ${bytes.byteLength}-byte artifact into ${chunks} chunks; at most ${ARTIFACT_CHUNKS_PER_ARTIFACT_MAX} are allowed`);
  const meta: ArtifactMeta = {
    groupId: manifest.groupId,
    artifactId: manifest.artifactId,
    version: manifest.version,
    sha256,
    size: bytes.byteLength,
    chunks,
    chunkBytes,
    manifest,
    ...(options.nowMs === undefined ? {} : { publishedAt: options.nowMs }),
    ...(options.publishedBy === undefined ? {} : { publishedBy: options.publishedBy }),
  };
  for (let attempt = 1; attempt <= PUBLISH_ATTEMPTS_MAX; attempt++) {
    const existing = await publishedAlready(port, meta);
    if (existing !== undefined) return { meta: existing, created: false };
    // False when the metadata appeared meanwhile (the next check decides) or a chunk was rewritten.
    if (await writeOnce(port, meta, bytes, options.publishWrites?.(meta) ?? [])) return { meta, created: true };
  }
  const existing = await publishedAlready(port, meta);
  if (existing !== undefined) return { meta: existing, created: false };
  throw new CutoverError('ARTIFACT_PUBLISH_CONFLICT', `${formatVersion(meta)}: another publisher kept rewriting its chunks; ${PUBLISH_ATTEMPTS_MAX} attempts failed`);
}

function publishSettings(options: PublishOptions): { maxBytes: number; chunkBytes: number } {
  const maxBytes = options.maxBytes ?? ARTIFACT_BYTES_MAX_DEFAULT;
  const chunkBytes = options.chunkBytes ?? ARTIFACT_CHUNK_BYTES_DEFAULT;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new InvalidArgumentError('maxBytes', `must be a positive integer, got ${String(maxBytes)}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < ARTIFACT_CHUNK_BYTES_MIN || chunkBytes > ARTIFACT_CHUNK_BYTES_MAX) {
    throw new InvalidArgumentError('chunkBytes', `must be an integer in [${ARTIFACT_CHUNK_BYTES_MIN}, ${ARTIFACT_CHUNK_BYTES_MAX}], got ${String(chunkBytes)}`);
  }
  if (options.expectedSha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(options.expectedSha256)) {
    throw new InvalidArgumentError('expectedSha256', `must be 64 hexadecimal digits, got ${JSON.stringify(options.expectedSha256)}`);
  }
  if (options.nowMs !== undefined && (!Number.isSafeInteger(options.nowMs) || options.nowMs < 0)) throw new InvalidArgumentError('nowMs', `must be a non-negative integer, got ${String(options.nowMs)}`);
  if (options.publishedBy !== undefined && options.publishedBy.length > PUBLISHED_BY_LENGTH_MAX) throw new InvalidArgumentError('publishedBy', `must be at most ${PUBLISHED_BY_LENGTH_MAX} characters`);
  return { maxBytes, chunkBytes };
}

/** The stored metadata when this exact package is published; ARTIFACT_EXISTS for other bytes. */
async function publishedAlready(port: ClusterPort, meta: ArtifactMeta): Promise<ArtifactMeta | undefined> {
  const existing = await getArtifactMeta(port, manifestBase(meta.manifest), meta.version);
  if (existing === undefined) return undefined;
  if (existing.sha256 !== meta.sha256) throw new CutoverError('ARTIFACT_EXISTS', `${formatVersion(meta)} is already published with sha256 ${existing.sha256}; versions are immutable, publish a new version`);
  return existing;
}

/**
 * One attempt: chunk transactions, then the metadata. True when this attempt published the
 * version; false when the metadata appeared meanwhile or a chunk changed under us.
 */
async function writeOnce(port: ClusterPort, meta: ArtifactMeta, bytes: Uint8Array, extra: readonly Operation[]): Promise<boolean> {
  const base = manifestBase(meta.manifest);
  const metaKey = artifactKey(base, meta.version);
  const unpublished: Compare = { key: metaKey, target: 'exists', op: '=', value: false };
  const writtenAt: number[] = [];
  for (const group of chunkGroups(meta)) {
    const puts: Operation[] = group.map((index) => ({ type: 'put', key: artifactChunkKey(base, meta.version, index), value: chunkBase64(bytes, meta, index) }));
    // The first transaction clears orphans of an earlier attempt (perhaps with other chunk sizes).
    const clear: Operation[] = group[0] === 0 ? [{ type: 'deletePrefix', prefix: artifactChunkPrefix(base, meta.version) }] : [];
    const result = await port.txn([unpublished], [...clear, ...puts]);
    if (!result.succeeded) return false;
    for (const index of group) writtenAt[index] = result.revision;
  }
  const unchanged: Compare[] = writtenAt.map((revision, index) => ({ key: artifactChunkKey(base, meta.version, index), target: 'modRevision', op: '=', value: revision }));
  const result = await port.txn([unpublished, ...unchanged], [{ type: 'put', key: metaKey, value: JSON.stringify(meta) }, ...extra]);
  return result.succeeded;
}

/** Chunk indexes grouped so each group's base64 values fit PUBLISH_TXN_VALUE_BYTES_MAX. */
function chunkGroups(meta: ArtifactMeta): number[][] {
  const encodedBytes = Math.ceil(meta.chunkBytes / 3) * 4;
  const perGroup = Math.max(1, Math.floor(PUBLISH_TXN_VALUE_BYTES_MAX / encodedBytes));
  const groups: number[][] = [];
  for (let first = 0; first < meta.chunks; first += perGroup) {
    groups.push(Array.from({ length: Math.min(perGroup, meta.chunks - first) }, (_, i) => first + i));
  }
  return groups;
}

function chunkBase64(bytes: Uint8Array, meta: ArtifactMeta, index: number): string {
  const start = index * meta.chunkBytes;
  const end = Math.min(start + meta.chunkBytes, bytes.byteLength);
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('base64');
}

/**
 * The metadata of one version; `undefined` when it is not published. Throws ARTIFACT_CORRUPT
 * when the stored value is unreadable or belongs to another key.
 */
export async function getArtifactMeta(port: ClusterPort, base: ArtifactBase, version: string): Promise<ArtifactMeta | undefined> {
  const key = artifactKey(base, version);
  const kv = await port.get(key);
  if (kv === undefined) return undefined;
  const parsed = parseArtifactMeta(kv.value);
  if (!parsed.ok) throw new CutoverError('ARTIFACT_CORRUPT', `${key}: ${parsed.reason}`);
  const mismatch = keyMismatch(parsed.meta, base, version);
  if (mismatch !== undefined) throw new CutoverError('ARTIFACT_CORRUPT', `${key}: ${mismatch}`);
  return parsed.meta;
}

/**
 * Fetches a published version's package and verifies it against its metadata (chunk count, chunk
 * sizes, total size, sha256). Throws ARTIFACT_NOT_FOUND or ARTIFACT_CORRUPT.
 */
export async function fetchArtifact(port: ClusterPort, base: ArtifactBase, version: string): Promise<Uint8Array> {
  const meta = await getArtifactMeta(port, base, version);
  if (meta === undefined) throw new CutoverError('ARTIFACT_NOT_FOUND', `artifact ${base}:${version} is not published`);
  return fetchArtifactBytes(port, meta);
}

/** Like `fetchArtifact`, for metadata already read. Throws ARTIFACT_CORRUPT. */
export async function fetchArtifactBytes(port: ClusterPort, meta: ArtifactMeta): Promise<Uint8Array> {
  const base = manifestBase(meta.manifest);
  const corrupt = (problem: string): CutoverError => new CutoverError('ARTIFACT_CORRUPT', `artifact ${formatVersion(meta)}: ${problem}`);
  // Chunk keys sort by index; entries past `chunks` would be orphans and are not read.
  const { kvs } = await port.range(artifactChunkPrefix(base, meta.version), { limit: meta.chunks });
  if (kvs.length !== meta.chunks) throw corrupt(`has ${kvs.length} of its ${meta.chunks} chunks`);
  const bytes = new Uint8Array(meta.size);
  kvs.forEach((kv, index) => {
    if (kv.key !== artifactChunkKey(base, meta.version, index)) throw corrupt(`chunk ${index} is missing`);
    const expectedBytes = Math.min(meta.chunkBytes, meta.size - index * meta.chunkBytes);
    const chunk = decodeBase64(kv.value);
    if (chunk === undefined) throw corrupt(`chunk ${index} is not valid base64`);
    if (chunk.byteLength !== expectedBytes) throw corrupt(`chunk ${index} holds ${chunk.byteLength} bytes, expected ${expectedBytes}`);
    bytes.set(chunk, index * meta.chunkBytes);
  });
  const sha256 = sha256Hex(bytes);
  if (sha256 !== meta.sha256) throw corrupt(`sha256 is ${sha256}, the metadata says ${meta.sha256}`);
  return bytes;
}

function decodeBase64(text: string): Uint8Array | undefined {
  // Buffer.from skips characters outside the alphabet; stored chunks must be canonical base64.
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : undefined;
}

/**
 * Published versions, sorted by base, then SemVer precedence (then version text). With `base`,
 * only that artifact's versions. Stored entries that cannot be read are skipped and reported to
 * `onInvalid`, so one bad value never hides the rest.
 */
export async function listArtifacts(port: ClusterPort, base?: ArtifactBase, options: { onInvalid?: (key: string, reason: string) => void } = {}): Promise<ArtifactMeta[]> {
  const { kvs } = await port.range(base === undefined ? ARTIFACT_PREFIX : artifactVersionsPrefix(base));
  const found: { meta: ArtifactMeta; base: string }[] = [];
  for (const kv of kvs) {
    const key = parseArtifactKey(kv.key);
    const parsed = parseArtifactMeta(kv.value);
    const reason = !parsed.ok ? parsed.reason : key === undefined ? 'not an artifact key' : keyMismatch(parsed.meta, key.base, key.version.text);
    if (!parsed.ok || reason !== undefined) {
      options.onInvalid?.(kv.key, reason ?? 'unreadable metadata');
      continue;
    }
    found.push({ meta: parsed.meta, base: `${parsed.meta.groupId}:${parsed.meta.artifactId}` });
  }
  return found.sort((a, b) => compareMetas(a.base, a.meta, b.base, b.meta)).map((f) => f.meta);
}

function compareMetas(baseA: string, a: ArtifactMeta, baseB: string, b: ArtifactMeta): number {
  if (baseA !== baseB) return baseA < baseB ? -1 : 1;
  const order = compareSemVer(parseSemVer(a.version)!, parseSemVer(b.version)!);
  if (order !== 0) return order;
  return a.version < b.version ? -1 : a.version > b.version ? 1 : 0;
}

function keyMismatch(meta: ArtifactMeta, base: string, version: string): string | undefined {
  const metaBase = `${meta.groupId}:${meta.artifactId}`;
  return metaBase === base && meta.version === version ? undefined : `metadata describes ${metaBase}:${meta.version}, stored under ${base}:${version}`;
}

/** Reads stored metadata; a reason instead of an exception for anything malformed. */
export function parseArtifactMeta(value: string): ParsedArtifactMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return { ok: false, reason: 'metadata is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'metadata is not a JSON object' };
  const fields = raw as Record<string, unknown>;
  const { groupId, artifactId, version, sha256, size, chunks, chunkBytes, publishedAt, publishedBy } = fields;
  if (typeof groupId !== 'string' || typeof artifactId !== 'string' || parseArtifactBase(`${groupId}:${artifactId}`) === undefined) return { ok: false, reason: 'groupId or artifactId is malformed' };
  if (typeof version !== 'string' || parseSemVer(version) === undefined) return { ok: false, reason: 'version is not a semantic version' };
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return { ok: false, reason: 'sha256 is not 64 lower-case hex digits' };
  if (!isPositiveInteger(size) || !isPositiveInteger(chunkBytes) || !isPositiveInteger(chunks)) return { ok: false, reason: 'size, chunks and chunkBytes must be positive integers' };
  if (chunks !== Math.ceil(size / chunkBytes) || chunks > ARTIFACT_CHUNKS_PER_ARTIFACT_MAX) return { ok: false, reason: `chunks ${chunks} does not fit size ${size} and chunkBytes ${chunkBytes}` };
  if (publishedAt !== undefined && (!Number.isSafeInteger(publishedAt) || (publishedAt as number) < 0)) return { ok: false, reason: 'publishedAt must be a non-negative integer' };
  if (publishedBy !== undefined && typeof publishedBy !== 'string') return { ok: false, reason: 'publishedBy must be a string' };
  let manifest: SliceManifest;
  try {
    manifest = parseManifest(fields['manifest']);
  } catch (error) {
    return { ok: false, reason: `manifest: ${(error as Error).message}` };
  }
  if (manifest.groupId !== groupId || manifest.artifactId !== artifactId || manifest.version !== version) return { ok: false, reason: 'manifest names another artifact version' };
  const meta: ArtifactMeta = {
    groupId,
    artifactId,
    version,
    sha256,
    size,
    chunks,
    chunkBytes,
    manifest,
    ...(publishedAt === undefined ? {} : { publishedAt: publishedAt as number }),
    ...(publishedBy === undefined ? {} : { publishedBy }),
  };
  return { ok: true, meta };
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function formatVersion(meta: ArtifactMeta): string {
  return `${artifactBase(meta.groupId, meta.artifactId)}:${meta.version}`;
}
