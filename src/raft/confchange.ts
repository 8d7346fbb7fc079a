import { CutoverError } from '../util/errors.ts';
import type { ConfChange } from './types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TYPES: ReadonlySet<string> = new Set(['addNode', 'addLearner', 'removeNode']);

/** Serialises a membership change for a `confChange` log entry. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: change.type, nodeId: change.nodeId, ...(change.context !== undefined ? { context: change.context } : {}) }));
}

/** Parses a `confChange` entry's data; throws `CutoverError` CONF_CHANGE_CORRUPT on bad data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new CutoverError('CONF_CHANGE_CORRUPT', 'membership change entry is not valid JSON', { cause });
  }
  const record = parsed as { type?: unknown; nodeId?: unknown; context?: unknown };
  if (typeof record.type !== 'string' || !TYPES.has(record.type) || !Number.isInteger(record.nodeId) || (record.nodeId as number) <= 0) {
    throw new CutoverError('CONF_CHANGE_CORRUPT', `membership change entry is malformed: ${decoder.decode(data)}`);
  }
  if (record.context !== undefined && typeof record.context !== 'string') throw new CutoverError('CONF_CHANGE_CORRUPT', 'membership change context must be a string');
  const change = { type: record.type as ConfChange['type'], nodeId: record.nodeId as number };
  return record.context === undefined ? change : { ...change, context: record.context };
}
