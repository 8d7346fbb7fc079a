/**
 * Slice artifact packages: a gzipped tar with `slice.json` at its root and the module it names.
 *
 * `packArtifact` builds one from a directory, deterministically: entries sorted by path, every
 * header with mtime 0, uid/gid 0, no user or group names and mode 0644, so the same directory
 * packs to the same bytes and the same sha256 (for one zlib version; Node pins it). Only regular
 * files are packed; empty directories are not kept.
 *
 * Reading a package (`readArtifact`, `unpackArtifact`, `packArtifact` of a `.tgz`) treats it as
 * hostile input: the gzip stream is inflated with a hard output bound (no decompression bombs),
 * and the tar may hold only regular files and directories, with relative paths free of `..`, no
 * duplicate or conflicting paths, at most `entriesMax` entries and `unpackedBytesMax` bytes. The
 * whole package is checked in memory before a single file is written.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import { assert } from '../util/assert.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { MANIFEST_FILE, parseManifestJson, relativePathProblem, type SliceManifest } from './manifest.ts';

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

/** Bounds on one package; `DEFAULT_ARTIFACT_LIMITS` unless the caller passes others. */
export interface ArtifactLimits {
  /** Entries (files and directories) in the tar. */
  readonly entriesMax: number;
  /** Sum of the sizes of the files once unpacked. */
  readonly unpackedBytesMax: number;
  /** Size of the gzipped package read from a `.tgz` file. */
  readonly packedBytesMax: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { entriesMax: 1024, unpackedBytesMax: 64 * 1024 * 1024, packedBytesMax: 64 * 1024 * 1024 };

/** Largest `slice.json` read, in bytes. */
export const MANIFEST_BYTES_MAX = 64 * 1024;

const BLOCK_BYTES = 512;
const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;
const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);

/** A package is malformed or unsafe (code INVALID_ARTIFACT). */
export class InvalidArtifactError extends CutoverError {
  override readonly name = 'InvalidArtifactError';
  constructor(problem: string, options?: { cause?: unknown }) {
    super('INVALID_ARTIFACT', `artifact package: ${problem}`, options);
  }
}

/** One regular file of a package. */
export interface ArtifactFile {
  /** Relative, `/`-separated, validated by `relativePathProblem`. */
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** The checked contents of a package. */
export interface ArtifactContents {
  readonly manifest: SliceManifest;
  /** Sorted by path. */
  readonly files: readonly ArtifactFile[];
  /** Directories the tar names explicitly, sorted (parents of files are implied). */
  readonly directories: readonly string[];
}

/** A package ready to publish. */
export interface PackedArtifact {
  /** The gzipped tar. */
  readonly bytes: Uint8Array;
  readonly manifest: SliceManifest;
  /** Lower-case hex SHA-256 of `bytes`. */
  readonly sha256: string;
}

/** Lower-case hex SHA-256. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Packs a directory (deterministically) or checks and returns an existing `.tgz`/`.tar.gz` file
 * as is. Throws INVALID_ARTIFACT (unsafe or malformed package, symlink or special file in the
 * directory), INVALID_MANIFEST (bad `slice.json`) or ARTIFACT_TOO_LARGE (past `limits`).
 */
export async function packArtifact(path: string, limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS): Promise<PackedArtifact> {
  const info = await stat(path).catch((error: unknown) => {
    throw new InvalidArtifactError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  });
  let bytes: Uint8Array;
  if (info.isDirectory()) {
    bytes = await packDirectory(path, limits);
  } else if (info.isFile() && /\.(?:tgz|tar\.gz)$/.test(path)) {
    if (info.size > limits.packedBytesMax) throw new CutoverError('ARTIFACT_TOO_LARGE', `artifact package ${path} is ${info.size} bytes; at most ${limits.packedBytesMax} are accepted`);
    bytes = new Uint8Array(await readFile(path));
  } else {
    throw new InvalidArtifactError(`${path} must be a directory or a .tgz file`);
  }
  // A package we just built is read back through the same checks as one from outside.
  const { manifest } = await readArtifact(bytes, limits);
  return { bytes, manifest, sha256: sha256Hex(bytes) };
}

async function packDirectory(root: string, limits: ArtifactLimits): Promise<Uint8Array> {
  const paths = (await listFiles(root, '', limits)).sort(compareText);
  const blocks: Uint8Array[] = [];
  let unpackedBytes = 0;
  for (const path of paths) {
    const data = await readFile(join(root, ...path.split('/')));
    unpackedBytes += data.byteLength;
    if (unpackedBytes > limits.unpackedBytesMax) throw new CutoverError('ARTIFACT_TOO_LARGE', `directory ${root} holds more than ${limits.unpackedBytesMax} bytes`);
    blocks.push(...tarFileEntry(path, data));
  }
  blocks.push(new Uint8Array(2 * BLOCK_BYTES)); // end of archive: two zero blocks
  return new Uint8Array(await gzip(Buffer.concat(blocks), { level: 9 }));
}

/** Relative paths of the regular files under `dir`; refuses links and special files. */
async function listFiles(root: string, prefix: string, limits: ArtifactLimits, found: string[] = []): Promise<string[]> {
  const entries: Dirent[] = await readdir(prefix === '' ? root : join(root, ...prefix.split('/')), { withFileTypes: true });
  for (const entry of entries) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    const problem = relativePathProblem(path);
    if (problem !== undefined) throw new InvalidArtifactError(`path ${JSON.stringify(path)} ${problem}`);
    if (entry.isDirectory()) {
      await listFiles(root, path, limits, found);
    } else if (entry.isFile()) {
      found.push(path);
      if (found.length > limits.entriesMax) throw new CutoverError('ARTIFACT_TOO_LARGE', `directory ${root} holds more than ${limits.entriesMax} files`);
    } else {
      throw new InvalidArtifactError(`${path} is not a regular file or directory (symlinks, devices and sockets are not packed)`);
    }
  }
  return found;
}

/** Header (with a pax header first when the path does not fit ustar), data and padding. */
function tarFileEntry(path: string, data: Uint8Array): Uint8Array[] {
  const fixed = { path, mode: 0o644, uid: 0, gid: 0, size: data.byteLength, mtime: new Date(0), uname: '', gname: '' };
  const header = new Header({ ...fixed, type: 'File' });
  const block = Buffer.alloc(BLOCK_BYTES);
  const needPax = header.encode(block, 0);
  const padding = new Uint8Array((BLOCK_BYTES - (data.byteLength % BLOCK_BYTES)) % BLOCK_BYTES);
  return needPax ? [new Pax({ path, mtime: new Date(0) }).encode(), block, data, padding] : [block, data, padding];
}

/**
 * Checks a package in memory and returns its manifest and files. Throws INVALID_ARTIFACT for an
 * unsafe or malformed package (not gzip, bad tar, links, devices, absolute or `..` paths,
 * duplicates, too many entries or bytes, no `slice.json`, entry module missing) and
 * INVALID_MANIFEST for a bad `slice.json`.
 */
export async function readArtifact(bytes: Uint8Array, limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS): Promise<ArtifactContents> {
  if (!startsWith(bytes, GZIP_MAGIC)) throw new InvalidArtifactError('is not gzip-compressed (expected a .tgz)');
  const tar = await inflate(bytes, limits);
  if (startsWith(tar, GZIP_MAGIC) || startsWith(tar, ZSTD_MAGIC)) throw new InvalidArtifactError('holds a compressed stream inside the gzip stream; expected a plain tar');
  const { files, directories } = await parseTar(tar, limits);
  checkLayout(files, directories);
  const manifestFile = files.find((f) => f.path === MANIFEST_FILE);
  if (manifestFile === undefined) throw new InvalidArtifactError(`has no ${MANIFEST_FILE} at its root`);
  if (manifestFile.bytes.byteLength > MANIFEST_BYTES_MAX) throw new InvalidArtifactError(`${MANIFEST_FILE} is larger than ${MANIFEST_BYTES_MAX} bytes`);
  const manifest = parseManifestJson(decodeUtf8(manifestFile.bytes));
  if (!files.some((f) => f.path === manifest.entry)) throw new InvalidArtifactError(`has no file ${JSON.stringify(manifest.entry)}, the entry that ${MANIFEST_FILE} names`);
  return { manifest, files: files.sort((a, b) => compareText(a.path, b.path)), directories: directories.sort(compareText) };
}

async function inflate(bytes: Uint8Array, limits: ArtifactLimits): Promise<Buffer> {
  // Every entry costs at most a pax header, its body, a header and padding: five blocks for the
  // paths we accept. Past this bound the package is refused whatever it claims to hold.
  const tarBytesMax = limits.unpackedBytesMax + (limits.entriesMax * 5 + 2) * BLOCK_BYTES + 20 * BLOCK_BYTES;
  try {
    return await gunzip(bytes, { maxOutputLength: tarBytesMax });
  } catch (error) {
    const tooLarge = (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
    throw new InvalidArtifactError(tooLarge ? `unpacks to more than ${tarBytesMax} bytes of tar` : `is not a valid gzip stream (${(error as Error).message})`, { cause: error });
  }
}

interface ParsedTar {
  files: ArtifactFile[];
  directories: string[];
}

/** Runs tar's parser over the whole buffer; the first problem refuses the package. */
function parseTar(tar: Buffer, limits: ArtifactLimits): Promise<ParsedTar> {
  const parsed: ParsedTar = { files: [], directories: [] };
  let problem: string | undefined;
  let entries = 0;
  let unpackedBytes = 0;
  const refuse = (text: string): void => {
    problem ??= text;
  };
  const parser = new Parser({ strict: true, zstd: false });
  parser.on('ignoredEntry', (entry: ReadEntry) => refuse(`entry ${JSON.stringify(entry.path)} has an unsupported type ${entry.type}`));
  parser.on('entry', (entry: ReadEntry) => {
    entries++;
    unpackedBytes += entry.size;
    if (entries > limits.entriesMax) refuse(`has more than ${limits.entriesMax} entries`);
    if (unpackedBytes > limits.unpackedBytesMax) refuse(`unpacks to more than ${limits.unpackedBytesMax} bytes`);
    const path = problem === undefined ? acceptEntry(entry, refuse) : undefined;
    if (path === undefined || entry.type === 'Directory') {
      if (path !== undefined) parsed.directories.push(path);
      entry.resume();
      return;
    }
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () => parsed.files.push({ path, bytes: new Uint8Array(Buffer.concat(chunks)) }));
  });
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      if (error !== undefined) reject(new InvalidArtifactError(`is not a valid tar (${(error as Error).message})`, { cause: error }));
      else if (problem !== undefined) reject(new InvalidArtifactError(problem));
      else resolvePromise(parsed);
    };
    parser.on('error', (error: unknown) => settle(error));
    parser.on('end', () => settle());
    parser.on('close', () => settle());
    parser.end(tar);
  });
}

/** The normalised path of a file or directory entry, or `undefined` after refusing it. */
function acceptEntry(entry: ReadEntry, refuse: (problem: string) => void): string | undefined {
  const isDirectory = entry.type === 'Directory';
  if (!isDirectory && !FILE_TYPES.has(entry.type)) {
    refuse(`entry ${JSON.stringify(entry.path)} is a ${entry.type}; only regular files and directories are allowed`);
    return undefined;
  }
  // Archives made with `tar -C dir .` name everything `./...` and the root `./`.
  let path = entry.path;
  while (path.startsWith('./')) path = path.slice(2);
  if (isDirectory) path = path.replace(/\/+$/, '');
  if (isDirectory && (path === '' || path === '.')) return undefined;
  const problem = relativePathProblem(path);
  if (problem !== undefined) {
    refuse(`entry path ${JSON.stringify(entry.path)} ${problem}`);
    return undefined;
  }
  return path;
}

/** No path twice, and no file where a directory must be (`a` and `a/b`). */
function checkLayout(files: readonly ArtifactFile[], directories: readonly string[]): void {
  const filePaths = new Set<string>();
  for (const file of files) {
    if (filePaths.has(file.path)) throw new InvalidArtifactError(`names ${JSON.stringify(file.path)} twice`);
    filePaths.add(file.path);
  }
  const directoryPaths = new Set(directories);
  for (const path of filePaths) {
    for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1)) directoryPaths.add(path.slice(0, slash));
  }
  for (const path of directoryPaths) {
    if (filePaths.has(path)) throw new InvalidArtifactError(`names ${JSON.stringify(path)} both as a file and as a directory`);
  }
}

/**
 * Checks a package like `readArtifact`, then writes its files under `destDir`, which must not
 * exist or be empty. Nothing is written when the package is refused. Files get mode 0644,
 * directories 0755, whatever the tar says.
 */
export async function unpackArtifact(bytes: Uint8Array, destDir: string, limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS): Promise<ArtifactContents> {
  const contents = await readArtifact(bytes, limits);
  const root = resolve(destDir);
  const existing = await readdir(root).catch((error: unknown) => {
    if ((error as { code?: unknown }).code === 'ENOENT') return [];
    throw error;
  });
  if (existing.length > 0) throw new InvalidArgumentError('destDir', `${root} must be empty or not exist`);
  await mkdir(root, { recursive: true, mode: 0o755 });
  for (const directory of contents.directories) await mkdir(inside(root, directory), { recursive: true, mode: 0o755 });
  for (const file of contents.files) {
    const target = inside(root, file.path);
    await mkdir(resolve(target, '..'), { recursive: true, mode: 0o755 });
    // 'wx': never follow or replace something already there.
    await writeFile(target, file.bytes, { flag: 'wx', mode: 0o644 });
  }
  return contents;
}

function inside(root: string, path: string): string {
  const target = resolve(root, ...path.split('/'));
  assert(target.startsWith(root + sep), `unpackArtifact: ${path} resolves outside ${root}`);
  return target;
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.byteLength >= magic.length && magic.every((b, i) => bytes[i] === b);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new InvalidArtifactError(`${MANIFEST_FILE} is not valid UTF-8`, { cause: error });
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
