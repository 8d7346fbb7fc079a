import type { Command, CommandResult, Compare, KeyValue, Operation, OperationResult, WatchEvent } from '../kv/index.ts';
import { InvalidArgumentError } from '../util/errors.ts';

/** Wire shapes (proto-loader with keepCase, longs as Number, enums as String, oneofs on). */
export interface PbKeyValue {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
}
export interface PbRequestId {
  client_id: number;
  sequence: number;
}
export interface PbCompare {
  key: string;
  target: 'VALUE' | 'VERSION' | 'CREATE_REVISION' | 'MOD_REVISION' | 'EXISTS';
  operator: 'EQUAL' | 'NOT_EQUAL' | 'LESS' | 'GREATER';
  expected?: 'value' | 'number' | 'exists';
  value?: string;
  number?: number;
  exists?: boolean;
}
export interface PbOperation {
  op?: 'put' | 'delete' | 'delete_prefix' | 'get' | 'range';
  put?: { key: string; value: string } | null;
  delete?: { key: string } | null;
  delete_prefix?: { key: string } | null;
  get?: { key: string } | null;
  range?: { prefix: string; limit: number } | null;
}

export function toPbKeyValue(kv: KeyValue | undefined): PbKeyValue | null {
  if (kv === undefined) return null;
  return { key: kv.key, value: kv.value, create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version };
}

/** The client identity of a write; absent means no dedup. */
export function toIdentity(id: PbRequestId | null | undefined): { clientId: number; sequence: number } {
  return id ? { clientId: id.client_id, sequence: id.sequence } : { clientId: 0, sequence: 0 };
}

const TARGETS = { VALUE: 'value', VERSION: 'version', CREATE_REVISION: 'createRevision', MOD_REVISION: 'modRevision', EXISTS: 'exists' } as const;
const OPERATORS = { EQUAL: '=', NOT_EQUAL: '!=', LESS: '<', GREATER: '>' } as const;

export function fromPbCompare(c: PbCompare, field: string): Compare {
  const target = TARGETS[c.target];
  const op = OPERATORS[c.operator];
  if (target === undefined) throw new InvalidArgumentError(`${field}.target`, 'unknown target');
  if (op === undefined) throw new InvalidArgumentError(`${field}.operator`, 'unknown operator');
  if (c.expected === undefined) throw new InvalidArgumentError(`${field}.expected`, 'set one of value, number or exists');
  const value = c.expected === 'value' ? (c.value ?? '') : c.expected === 'number' ? (c.number ?? 0) : (c.exists ?? false);
  return { key: c.key, target, op, value };
}

export function fromPbOperation(o: PbOperation, field: string): Operation {
  switch (o.op) {
    case 'put':
      return { type: 'put', key: o.put?.key ?? '', value: o.put?.value ?? '' };
    case 'delete':
      return { type: 'delete', key: o.delete?.key ?? '' };
    case 'delete_prefix':
      return { type: 'deletePrefix', prefix: o.delete_prefix?.key ?? '' };
    case 'get':
      return { type: 'get', key: o.get?.key ?? '' };
    case 'range':
      return { type: 'range', prefix: o.range?.prefix ?? '', limit: o.range?.limit ?? 0 };
    default:
      throw new InvalidArgumentError(`${field}.op`, 'set one of put, delete, delete_prefix, get, range');
  }
}

export function toPbOperationResult(r: OperationResult): object {
  switch (r.type) {
    case 'put':
      return { put: { revision: r.revision, prev_kv: toPbKeyValue(r.prev) } };
    case 'delete':
      return { delete: { revision: r.revision, deleted: r.deleted.map(toPbKeyValue) } };
    case 'get':
      return { get: { found: r.kv !== undefined, kv: toPbKeyValue(r.kv), revision: 0 } };
    case 'range':
      return { range: { kvs: r.kvs.map(toPbKeyValue), more: r.more, revision: 0 } };
  }
}

export function toPbEvent(e: WatchEvent): object {
  return { type: e.type === 'put' ? 'PUT' : 'DELETE', revision: e.revision, kv: toPbKeyValue(e.kv), prev_kv: toPbKeyValue(e.prev) };
}

/** Narrows a command result to the variant a handler expects (a mismatch is a bug). */
export function expectResult<T extends CommandResult['type']>(result: CommandResult, type: T): Extract<CommandResult, { type: T }> {
  if (result.type !== type) throw new Error(`expected a ${type} result, got ${result.type}`);
  return result as Extract<CommandResult, { type: T }>;
}

export type { Command };
