/**
 * The node's local copies of artifacts (on a node: `{dataDir}/slices`), so that slice code is
 * imported from disk, fetched from the replicated store at most once per version.
 *
 * Layout, one directory per version so that each version's entry module has its own URL and a
 * dynamic import loads one module copy per version:
 *
 *   {root}/{groupId}/{artifactId}/{version}/files/...      the unpacked artifact
 *   {root}/{groupId}/{artifactId}/{version}/package.json   {"type":"module"}: `.js` files are ESM
 *                                                          unless the artifact says otherwise
 *   {root}/{groupId}/{artifactId}/{version}/artifact.json  marker: sha256 and every file's hash
 *   {root}/.staging/                                       work directories, cleared at first use
 *
 * A version directory only ever appears whole: it is assembled under `.staging` and renamed into
 * place. A local copy is reused only when its marker names the sha256 of the KV metadata and every
 * file still has the size and hash the marker records; anything else (a damaged, partial or stale
 * copy) is replaced by a fresh fetch.
 */
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ClusterPort } from '../node/cluster-port.ts';
import { CutoverError } from '../util/errors.ts';
import { DEFAULT_ARTIFACT_LIMITS, sha256Hex, unpackArtifact, type ArtifactLimits } from './artifact-package.ts';
import { fetchArtifactBytes, getArtifactMeta, type ArtifactMeta } from './artifact-store.ts';
import { requireSemVer, splitArtifactBase, type ArtifactBase } from './keys.ts';
import { relativePathProblem, type SliceManifest } from './manifest.ts';

const FILES_DIR = 'files';
const MARKER_FILE = 'artifact.json';
const PACKAGE_FILE = 'package.json';
const PACKAGE_JSON = '{"type":"module"}\n';
const STAGING_DIR = '.staging';
/** Largest marker read back; ours are far smaller (one line per file, at most entriesMax files). */
const MARKER_BYTES_MAX = 1024 * 1024;

/** A verified local copy of one artifact version. */
export interface CachedArtifact {
  /** The directory holding the artifact's files (`slice.json` at its root). */
  readonly dir: string;
  readonly manifest: SliceManifest;
  /** `file:` URL of the entry module, for `import()`. */
  readonly entryUrl: string;
  readonly sha256: string;
}

interface Marker {
  readonly sha256: string;
  readonly files: readonly { readonly path: string; readonly size: number; readonly sha256: string }[];
}

/** Local artifact copies under one directory. One instance per directory and process. */
export class LocalArtifactCache {
  private readonly inFlight = new Map<string, Promise<CachedArtifact>>();
  private staging: Promise<string> | undefined;

  constructor(
    readonly rootDir: string,
    private readonly limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS,
  ) {}

  /**
   * A verified local copy of a published version, fetched and unpacked when there is none. Calls
   * for the same version while one is under way share it. Throws ARTIFACT_NOT_FOUND,
   * ARTIFACT_CORRUPT, INVALID_ARTIFACT, INVALID_ARGUMENT (bad version) and file-system errors.
   */
  ensure(port: ClusterPort, base: ArtifactBase, version: string): Promise<CachedArtifact> {
    const key = `${base}:${requireSemVer(version).text}`;
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      pending = this.load(port, base, version).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** The directory of one version (whether or not it is present). */
  versionDir(base: ArtifactBase, version: string): string {
    const { groupId, artifactId } = splitArtifactBase(base);
    // groupId, artifactId and SemVer text never contain '/' or a '..' segment (keys.ts).
    return join(this.rootDir, groupId, artifactId, requireSemVer(version).text);
  }

  /** Removes a version's local copy (the instance manager calls it once no instance uses it). */
  async evict(base: ArtifactBase, version: string): Promise<void> {
    await this.inFlight.get(`${base}:${requireSemVer(version).text}`)?.catch(() => undefined);
    await rm(this.versionDir(base, version), { recursive: true, force: true });
  }

  private async load(port: ClusterPort, base: ArtifactBase, version: string): Promise<CachedArtifact> {
    const meta = await getArtifactMeta(port, base, version);
    if (meta === undefined) throw new CutoverError('ARTIFACT_NOT_FOUND', `artifact ${base}:${version} is not published`);
    const dir = this.versionDir(base, version);
    if (!(await isVerifiedCopy(dir, meta))) {
      const bytes = await fetchArtifactBytes(port, meta);
      await this.install(dir, bytes, meta);
    }
    const filesDir = join(dir, FILES_DIR);
    return { dir: filesDir, manifest: meta.manifest, entryUrl: pathToFileURL(join(filesDir, ...meta.manifest.entry.split('/'))).href, sha256: meta.sha256 };
  }

  /** Unpacks into a staging directory, writes the marker last, then renames it into place. */
  private async install(dir: string, bytes: Uint8Array, meta: ArtifactMeta): Promise<void> {
    const work = await mkdtemp(join(await this.stagingDir(), `${meta.artifactId}@${meta.version}-`));
    try {
      const contents = await unpackArtifact(bytes, join(work, FILES_DIR), this.limits);
      // The bytes match the metadata's sha256, so a different manifest means forged metadata.
      if (JSON.stringify(contents.manifest) !== JSON.stringify(meta.manifest)) {
        throw new CutoverError('ARTIFACT_CORRUPT', `artifact ${meta.groupId}:${meta.artifactId}:${meta.version}: the metadata's manifest differs from the package's slice.json`);
      }
      const marker: Marker = { sha256: meta.sha256, files: contents.files.map((f) => ({ path: f.path, size: f.bytes.byteLength, sha256: sha256Hex(f.bytes) })) };
      await writeFile(join(work, PACKAGE_FILE), PACKAGE_JSON, { mode: 0o644 });
      await writeFile(join(work, MARKER_FILE), JSON.stringify(marker), { mode: 0o644 });
      await mkdir(join(dir, '..'), { recursive: true });
      await replaceDirectory(work, dir, await this.stagingDir());
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** `{root}/.staging`, emptied once per cache: leftovers of a crashed process are garbage. */
  private stagingDir(): Promise<string> {
    this.staging ??= (async () => {
      const path = join(this.rootDir, STAGING_DIR);
      await rm(path, { recursive: true, force: true });
      await mkdir(path, { recursive: true });
      return path;
    })();
    return this.staging;
  }
}

/** Renames `from` to `to`; an existing `to` (a damaged copy) is moved aside first, then removed. */
async function replaceDirectory(from: string, to: string, staging: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
  const aside = await mkdtemp(join(staging, 'replaced-'));
  await rename(to, join(aside, 'old'));
  await rename(from, to);
  await rm(aside, { recursive: true, force: true });
}

/** True when `dir` holds a complete copy of exactly `meta`'s package. */
async function isVerifiedCopy(dir: string, meta: ArtifactMeta): Promise<boolean> {
  const marker = await readMarker(join(dir, MARKER_FILE));
  if (marker === undefined || marker.sha256 !== meta.sha256) return false;
  if (!marker.files.some((f) => f.path === meta.manifest.entry)) return false;
  if ((await readOptional(join(dir, PACKAGE_FILE)))?.toString('utf8') !== PACKAGE_JSON) return false;
  for (const file of marker.files) {
    const bytes = await readOptional(join(dir, FILES_DIR, ...file.path.split('/')));
    if (bytes === undefined || bytes.byteLength !== file.size || sha256Hex(bytes) !== file.sha256) return false;
  }
  return true;
}

async function readMarker(path: string): Promise<Marker | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile() || info.size > MARKER_BYTES_MAX) return undefined;
  const bytes = await readOptional(path);
  try {
    const marker = JSON.parse(bytes?.toString('utf8') ?? '') as Partial<Marker>;
    if (typeof marker.sha256 !== 'string' || !Array.isArray(marker.files)) return undefined;
    const wellFormed = marker.files.every((f) => typeof f?.path === 'string' && typeof f.size === 'number' && typeof f.sha256 === 'string');
    // Paths come from our own unpack; a marker naming '..' or '/x' was not written by us.
    return wellFormed && marker.files.every((f) => relativePathProblem(f.path) === undefined) ? (marker as Marker) : undefined;
  } catch {
    return undefined;
  }
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}
