/**
 * The reflection cache: what one endpoint's reflection said, so that the next command needs one
 * reflection round trip (to check it) instead of a full discovery and a descriptor decode.
 *
 * An entry is keyed by endpoint and holds the sha256 of every FileDescriptorProto the server sent,
 * the services it listed, and the protobufjs JSON of the schema. The hashes stand for the server's
 * API version: before an entry is used, the server is asked for the file of the service the
 * command needs, and the entry counts only if every file it sends hashes to one the entry knows.
 * So a node upgraded in place is noticed on the next command, and nothing goes stale by time.
 *
 * The cache is an optimisation: an unreadable or unwritable cache is ignored.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type protobuf from 'protobufjs';

/** Bump when the entry layout changes; entries of other formats are ignored. */
const FORMAT = 1;

/** One endpoint's cached reflection. */
export interface CachedSchema {
  readonly format: number;
  readonly endpoint: string;
  /** sha256 (hex) of each FileDescriptorProto as the server sent it. */
  readonly fileHashes: readonly string[];
  readonly services: readonly string[];
  readonly root: protobuf.INamespace;
}

/**
 * Where entries live: `$CUTOVER_CACHE_DIR`, else `$XDG_CACHE_HOME/cutover`, else
 * `~/.cache/cutover`. `CUTOVER_CACHE_DIR=off` turns the cache off (undefined).
 */
export function cacheDirectory(env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env.CUTOVER_CACHE_DIR;
  if (explicit === 'off') return undefined;
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env.XDG_CACHE_HOME;
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.cache'), 'cutover');
}

/** Hex sha256 of one FileDescriptorProto. */
export function fileHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function entryPath(directory: string, endpoint: string): string {
  return path.join(directory, 'reflection', `${endpoint.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
}

/** The entry for `endpoint`, or undefined when there is none or it cannot be read. */
export function readCachedSchema(directory: string, endpoint: string): CachedSchema | undefined {
  try {
    const entry = JSON.parse(readFileSync(entryPath(directory, endpoint), 'utf8')) as Partial<CachedSchema>;
    const usable = entry.format === FORMAT && entry.endpoint === endpoint && Array.isArray(entry.fileHashes) && Array.isArray(entry.services) && typeof entry.root === 'object';
    return usable ? (entry as CachedSchema) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the entry for `endpoint` atomically (temp file, then rename); failures are ignored. */
export function writeCachedSchema(directory: string, entry: Omit<CachedSchema, 'format'>): void {
  const file = entryPath(directory, entry.endpoint);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(temp, JSON.stringify({ format: FORMAT, ...entry }));
    renameSync(temp, file);
  } catch {
    // A read-only home or a full disk costs the next command a discovery, nothing else.
  }
}
