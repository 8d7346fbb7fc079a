import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveNodeSettings, type NodeSettings } from '../node/config.ts';
import type { Member } from '../node/node.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';

/** Everything `cutover node` needs, after merging file, environment and flags (in that order). */
export interface NodeConfig {
  readonly id: number;
  readonly dataDir: string;
  /** host:port serving the peer transport and the management API. */
  readonly listen: string;
  /** The initial voters, this node included. */
  readonly peers: readonly Member[];
  /** host:port of the HTTP /metrics, /healthz, /readyz endpoint; empty = off. */
  readonly metricsListen: string;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** Forward writes that reach a follower to the leader (else answer NOT_LEADER). */
  readonly forwardWrites: boolean;
  /**
   * Join an existing cluster: a new data directory starts as a learner of `peers` (the current
   * voters), and learns the real membership from the leader. Without it, a new data directory
   * bootstraps a new cluster whose voters are `peers`.
   */
  readonly join: boolean;
  readonly settings: NodeSettings;
  readonly slices: SliceConfig;
}

/** The `slices` section: artifacts, placement and invocation. */
export interface SliceConfig {
  /** Largest artifact accepted by Publish, in bytes (default 8 MiB). */
  readonly artifactBytesMax: number;
  /** A member the leader has not heard from this long has its instances re-placed (default 15 s). */
  readonly nodeDownAfterMs: number;
  /** Most instances placed on one node (default 64). */
  readonly nodeInstancesMax: number;
  /** Deadline of a call that names none (default 30 s). */
  readonly invokeTimeoutMs: number;
  /** Longest wait for a draining instance's in-flight calls (default 30 s). */
  readonly drainTimeoutMs: number;
}

export const SLICE_CONFIG_DEFAULTS: SliceConfig = {
  artifactBytesMax: 8 * 1024 * 1024,
  nodeDownAfterMs: 15_000,
  nodeInstancesMax: 64,
  invokeTimeoutMs: 30_000,
  drainTimeoutMs: 30_000,
};

const SLICE_CONFIG_BOUNDS: Record<keyof SliceConfig, readonly [number, number]> = {
  artifactBytesMax: [1024, 64 * 1024 * 1024],
  nodeDownAfterMs: [500, 24 * 60 * 60 * 1000],
  nodeInstancesMax: [1, 10_000],
  invokeTimeoutMs: [1, 24 * 60 * 60 * 1000],
  drainTimeoutMs: [0, 24 * 60 * 60 * 1000],
};

/** Validates the `slices` section; unknown keys and values out of bounds are refused by name. */
export function resolveSliceConfig(raw: unknown): SliceConfig {
  if (raw === undefined) return SLICE_CONFIG_DEFAULTS;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidArgumentError('slices', 'must be a mapping of slice settings');
  const config: Record<string, number> = { ...SLICE_CONFIG_DEFAULTS };
  for (const [key, value] of Object.entries(raw)) {
    const bounds = SLICE_CONFIG_BOUNDS[key as keyof SliceConfig];
    if (bounds === undefined) throw new InvalidArgumentError(`slices.${key}`, `is not a slice setting (known: ${Object.keys(SLICE_CONFIG_BOUNDS).join(', ')})`);
    const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < bounds[0] || n > bounds[1]) throw new InvalidArgumentError(`slices.${key}`, `must be an integer in [${bounds[0]}, ${bounds[1]}], got ${JSON.stringify(value)}`);
    config[key] = n;
  }
  return config as unknown as SliceConfig;
}

/** Raw settings as they come from any source, before validation. */
export type RawNodeConfig = Partial<Record<'id' | 'dataDir' | 'listen' | 'peers' | 'metricsListen' | 'logLevel' | 'forwardWrites' | 'join', unknown>> & { settings?: unknown; slices?: unknown };

const ENV: Record<string, keyof RawNodeConfig> = {
  CUTOVER_ID: 'id',
  CUTOVER_DATA_DIR: 'dataDir',
  CUTOVER_LISTEN: 'listen',
  CUTOVER_PEERS: 'peers',
  CUTOVER_METRICS_LISTEN: 'metricsListen',
  CUTOVER_LOG_LEVEL: 'logLevel',
  CUTOVER_FORWARD_WRITES: 'forwardWrites',
  CUTOVER_JOIN: 'join',
};
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[^\s:/]+):(\d{1,5})$/;

/** Reads a JSON or YAML config file (by extension; YAML otherwise). */
export function readConfigFile(file: string): RawNodeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CutoverError('CONFIG_UNREADABLE', `cannot read config file ${file}: ${(cause as Error).message}`, { cause });
  }
  try {
    const parsed: unknown = path.extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level must be a mapping');
    return parsed as RawNodeConfig;
  } catch (cause) {
    throw new CutoverError('CONFIG_INVALID', `config file ${file} is not valid: ${(cause as Error).message}`, { cause });
  }
}

/** The settings found in CUTOVER_* environment variables. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawNodeConfig {
  const raw: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined && env[name] !== '') raw[key] = env[name];
  return raw;
}

function checkHostPort(field: string, value: unknown): string {
  if (typeof value !== 'string' || !HOST_PORT.test(value)) throw new InvalidArgumentError(field, `must be host:port, got ${JSON.stringify(value)}`);
  const port = Number(HOST_PORT.exec(value)![2]);
  if (port > 65535) throw new InvalidArgumentError(field, `port ${port} is out of range`);
  return value;
}

function checkId(field: string, value: unknown): number {
  const id = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  return id;
}

/** Parses `1=host:port,2=host:port` (or a list of {id, address}). */
export function parsePeers(value: unknown): Member[] {
  const items = typeof value === 'string' ? value.split(',').filter((s) => s.trim() !== '') : value;
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('peers', 'must list the initial members as id=host:port,…');
  const peers = items.map((item: unknown, i) => {
    if (typeof item === 'string') {
      const [id, address, ...rest] = item.trim().split('=');
      if (rest.length > 0 || address === undefined) throw new InvalidArgumentError(`peers[${i}]`, `must be id=host:port, got "${item}"`);
      return { id: checkId(`peers[${i}].id`, id), address: checkHostPort(`peers[${i}].address`, address) };
    }
    const record = item as { id?: unknown; address?: unknown };
    return { id: checkId(`peers[${i}].id`, record.id), address: checkHostPort(`peers[${i}].address`, record.address) };
  });
  if (new Set(peers.map((p) => p.id)).size !== peers.length) throw new InvalidArgumentError('peers', 'lists the same id twice');
  return peers;
}

function checkBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidArgumentError(field, `must be true or false, got ${JSON.stringify(value)}`);
}

/** Merges sources (later wins) and validates; errors name the setting. */
export function resolveNodeConfig(...sources: RawNodeConfig[]): NodeConfig {
  const raw: RawNodeConfig = Object.assign({}, ...sources.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined))));
  const id = checkId('id', raw.id);
  if (typeof raw.dataDir !== 'string' || raw.dataDir === '') throw new InvalidArgumentError('dataDir', 'must be a directory path');
  const listen = checkHostPort('listen', raw.listen);
  const peers = raw.peers === undefined ? [{ id, address: listen }] : parsePeers(raw.peers);
  const join = checkBoolean('join', raw.join, false);
  if (!peers.some((p) => p.id === id)) throw new InvalidArgumentError('peers', `must include this node (id ${id}) with its address`);
  if (join && peers.length < 2) throw new InvalidArgumentError('peers', 'must list the current voters of the cluster to join, besides this node');
  const metricsListen = raw.metricsListen === undefined || raw.metricsListen === '' ? '' : checkHostPort('metricsListen', raw.metricsListen);
  const logLevel = raw.logLevel ?? 'info';
  if (typeof logLevel !== 'string' || !LOG_LEVELS.has(logLevel)) throw new InvalidArgumentError('logLevel', `must be one of ${[...LOG_LEVELS].join(', ')}`);
  if (raw.settings !== undefined && (typeof raw.settings !== 'object' || raw.settings === null)) throw new InvalidArgumentError('settings', 'must be a mapping of node settings');
  const settings = resolveNodeSettings((raw.settings ?? {}) as Partial<NodeSettings>);
  const slices = resolveSliceConfig(raw.slices);
  return { id, dataDir: raw.dataDir, listen, peers, metricsListen, logLevel: logLevel as NodeConfig['logLevel'], forwardWrites: checkBoolean('forwardWrites', raw.forwardWrites, true), join, settings, slices };
}
