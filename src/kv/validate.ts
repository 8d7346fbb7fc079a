import { InvalidArgumentError } from '../util/errors.ts';
import type { Command, Compare, Operation, Request } from './types.ts';

/** Limits on what one request may carry; checked before a command is proposed. */
export interface KvLimits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  readonly txnOperationsMax: number;
  readonly rangeLimitMax: number;
}

export const DEFAULT_KV_LIMITS: KvLimits = { keyBytesMax: 4096, valueBytesMax: 1024 * 1024, txnOperationsMax: 128, rangeLimitMax: 10_000 };

const encoder = new TextEncoder();
const TARGETS = new Set(['value', 'version', 'createRevision', 'modRevision', 'exists']);
const OPS = new Set(['=', '!=', '<', '>']);

function checkKey(field: string, key: unknown, limits: KvLimits, allowEmpty = false): void {
  if (typeof key !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  if (!allowEmpty && key.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (encoder.encode(key).byteLength > limits.keyBytesMax) throw new InvalidArgumentError(field, `is longer than ${limits.keyBytesMax} bytes`);
}

function checkOperation(field: string, op: Operation, limits: KvLimits): void {
  switch (op.type) {
    case 'put':
      checkKey(`${field}.key`, op.key, limits);
      if (typeof op.value !== 'string') throw new InvalidArgumentError(`${field}.value`, 'must be a string');
      if (encoder.encode(op.value).byteLength > limits.valueBytesMax) throw new InvalidArgumentError(`${field}.value`, `is longer than ${limits.valueBytesMax} bytes`);
      return;
    case 'delete':
    case 'get':
      checkKey(`${field}.key`, op.key, limits);
      return;
    case 'deletePrefix':
      // An empty prefix would delete everything: refuse it rather than guess.
      checkKey(`${field}.prefix`, op.prefix, limits);
      return;
    case 'range':
      checkKey(`${field}.prefix`, op.prefix, limits, true);
      if (!Number.isSafeInteger(op.limit) || op.limit < 0 || op.limit > limits.rangeLimitMax) {
        throw new InvalidArgumentError(`${field}.limit`, `must be an integer in [0, ${limits.rangeLimitMax}] (0 = no limit)`);
      }
      return;
    default:
      throw new InvalidArgumentError(`${field}.type`, `unknown operation ${(op as { type: unknown }).type as string}`);
  }
}

function checkCompare(field: string, c: Compare, limits: KvLimits): void {
  checkKey(`${field}.key`, c.key, limits);
  if (!TARGETS.has(c.target)) throw new InvalidArgumentError(`${field}.target`, 'must be one of value, version, createRevision, modRevision, exists');
  if (!OPS.has(c.op)) throw new InvalidArgumentError(`${field}.op`, "must be one of '=', '!=', '<', '>'");
  const expected = c.target === 'value' ? 'string' : c.target === 'exists' ? 'boolean' : 'number';
  if (typeof c.value !== expected) throw new InvalidArgumentError(`${field}.value`, `must be a ${expected} for target ${c.target}`);
  if (c.target === 'exists' && c.op !== '=' && c.op !== '!=') throw new InvalidArgumentError(`${field}.op`, "must be '=' or '!=' for target exists");
}

/** Validates a command; throws INVALID_ARGUMENT naming the offending field. */
export function validateCommand(command: Command, limits: KvLimits = DEFAULT_KV_LIMITS): void {
  if (command.type === 'compact') {
    if (!Number.isSafeInteger(command.revision) || command.revision < 0) throw new InvalidArgumentError('revision', 'must be a non-negative integer');
    return;
  }
  if (command.type !== 'txn') {
    checkOperation('operation', command, limits);
    return;
  }
  const total = command.compare.length + command.success.length + command.failure.length;
  if (total > limits.txnOperationsMax) throw new InvalidArgumentError('txn', `has ${total} compares and operations; at most ${limits.txnOperationsMax} are allowed`);
  command.compare.forEach((c, i) => checkCompare(`compare[${i}]`, c, limits));
  command.success.forEach((op, i) => checkOperation(`success[${i}]`, op, limits));
  command.failure.forEach((op, i) => checkOperation(`failure[${i}]`, op, limits));
}

/** Validates the client identity of a request. */
export function validateRequest(request: Request, limits: KvLimits = DEFAULT_KV_LIMITS): void {
  if (!Number.isSafeInteger(request.clientId) || request.clientId < 0) throw new InvalidArgumentError('clientId', 'must be a non-negative integer');
  if (!Number.isSafeInteger(request.sequence) || request.sequence < 0) throw new InvalidArgumentError('sequence', 'must be a non-negative integer');
  validateCommand(request.command, limits);
}
