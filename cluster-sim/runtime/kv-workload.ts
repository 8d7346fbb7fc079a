/**
 * The node target's client operations on the KV store: what a client draws (put, get, delete, and
 * compare-and-set as a txn), and how a node serves one through the node runtime's own API
 * (`propose` with the client's id and sequence, so a retried write applies once, and `get`
 * through ReadIndex). Answers and errors become the workload's replies.
 */
import { assert } from '../../src/util/assert.ts';
import type { Command, CommandResult, Compare } from '../../src/kv/index.ts';
import type { CutoverNode } from '../../src/node/node.ts';
import type { KvInput, KvOutput } from '../checkers/kv-model.ts';
import type { ClientReply, ClientRequest, OperationSpec } from '../workload.ts';

/** The KV operations, drawn by the seed's weights. */
export const kvOperations: OperationSpec<KvInput, KvOutput> = {
  draw(random, options, clientId, sequence, lastSeen) {
    const { getWeight, putWeight, casWeight, deleteWeight } = options;
    const draw = random.nextFloat() * (getWeight + putWeight + casWeight + deleteWeight);
    const value = `c${clientId}s${sequence}`;
    if (draw < getWeight) return { kind: 'get' };
    if (draw < getWeight + putWeight) return { kind: 'put', value };
    if (draw < getWeight + putWeight + casWeight) return { kind: 'cas', expected: random.nextFloat() < 0.2 ? null : lastSeen, value };
    return { kind: 'delete' };
  },
  isRead: (input) => input.kind === 'get',
  learn(input, output) {
    if (output.kind === 'get') return output.value;
    if (input.kind === 'put' || (input.kind === 'cas' && output.kind === 'cas' && output.succeeded)) return input.value;
    if (input.kind === 'delete') return null;
    return undefined;
  },
  describe(input) {
    if (input.kind === 'get' || input.kind === 'delete') return input.kind;
    if (input.kind === 'put') return `put ${input.value}`;
    return `cas ${String(input.expected)}=>${input.value}`;
  },
  describeOutput(output) {
    switch (output.kind) {
      case 'get':
        return `${String(output.value)} v${output.version}`;
      case 'put':
        return `ok prev=${String(output.prev)}`;
      case 'cas':
        return output.succeeded ? 'ok' : 'failed';
      case 'delete':
        return output.deleted ? 'deleted' : 'absent';
    }
  },
};

/**
 * Serves `request` on `node`. Gets are linearizable (ReadIndex), or serializable (local, possibly
 * stale) when `serializableGets` (the stale-read variant).
 */
export async function serveKv(node: CutoverNode, request: ClientRequest<KvInput>, serializableGets: boolean): Promise<KvOutput> {
  const { key, input } = request;
  if (input.kind === 'get') {
    const { kv } = await node.get(key, { serializable: serializableGets });
    return { kind: 'get', value: kv?.value ?? null, version: kv?.version ?? 0 };
  }
  const result = await node.propose(commandFor(key, input), { clientId: request.clientId, sequence: request.sequence });
  return outputFor(input, result);
}

/** The KV command of a write. A cas on "absent" compares existence: a missing key has no value to compare. */
function commandFor(key: string, input: Exclude<KvInput, { kind: 'get' }>): Command {
  switch (input.kind) {
    case 'put':
      return { type: 'put', key, value: input.value };
    case 'delete':
      return { type: 'delete', key };
    case 'cas': {
      const compare: Compare = input.expected === null ? { key, target: 'exists', op: '=', value: false } : { key, target: 'value', op: '=', value: input.expected };
      return { type: 'txn', compare: [compare], success: [{ type: 'put', key, value: input.value }], failure: [] };
    }
  }
}

function outputFor(input: Exclude<KvInput, { kind: 'get' }>, result: CommandResult): KvOutput {
  switch (input.kind) {
    case 'put':
      assert(result.type === 'put', `kv: put answered ${result.type}`);
      return { kind: 'put', prev: result.prev?.value ?? null };
    case 'delete':
      assert(result.type === 'delete', `kv: delete answered ${result.type}`);
      return { kind: 'delete', deleted: result.deleted.length > 0 };
    case 'cas':
      assert(result.type === 'txn', `kv: txn answered ${result.type}`);
      return { kind: 'cas', succeeded: result.succeeded };
  }
}

/**
 * Error codes a client retries on at the same node (after a short back-off). A write retried after
 * one of them applies at most once: the KV store deduplicates by client id and sequence.
 * REQUEST_STALE answers a late copy of an operation its client has already finished (the store
 * refuses it), so the workload drops that answer as an old operation's.
 */
const RETRY_CODES: ReadonlySet<string> = new Set(['PROPOSAL_DROPPED', 'OUTCOME_UNKNOWN', 'REQUEST_STALE']);
/**
 * Error codes after which a client tries another node, as it does when a node stays silent: the
 * node is stopping, or could not get the request done in time (it may be cut off from the
 * leader, or be a member removed while cut off, which keeps forwarding to a stale leader).
 */
const ELSEWHERE_CODES: ReadonlySet<string> = new Set(['NODE_STOPPED', 'TIMEOUT']);

/**
 * The reply for an error from `serveKv`, or undefined when the error is not one the node runtime
 * may answer in operation (a bug: the caller reports it).
 */
export function replyForError(error: unknown): ClientReply<KvOutput> | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (code === 'NOT_LEADER') return { kind: 'notLeader', leaderId: (error as { leaderId: number }).leaderId };
  if (ELSEWHERE_CODES.has(code)) return { kind: 'unavailable' };
  if (RETRY_CODES.has(code)) return { kind: 'retry' };
  return undefined;
}
