import { KvStore, type Command, type CommandResult, type Compare, type KeyValue, type Operation, type WatchListener } from '../kv/index.ts';
import { NotLeaderError } from '../util/errors.ts';
import type { CutoverNode, MemberActivity } from './node.ts';

export type { MemberActivity } from './node.ts';

/** The result of a transaction proposed through the port. */
export type TxnResult = Extract<CommandResult, { type: 'txn' }>;

/**
 * The one narrow interface through which `updates/`, `invoker/`, `slices/` and `health/` talk to
 * the cluster (DESIGN.md), so they run unchanged on a real node, on the simulator and against
 * `MemoryClusterPort` in unit tests. Writes go through the Raft log; reads are linearizable unless
 * `serializable`; watches see this node's applied state.
 */
export interface ClusterPort {
  readonly nodeId: number;
  /** Proposes a transaction; the promise settles once it is applied (errors carry `code`). */
  txn(compare: readonly Compare[], success: readonly Operation[], failure?: readonly Operation[]): Promise<TxnResult>;
  get(key: string, options?: { serializable?: boolean }): Promise<KeyValue | undefined>;
  range(prefix: string, options?: { limit?: number; serializable?: boolean }): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }>;
  /** Watches a prefix from a revision (0 = from now); returns a cancel function. */
  watch(prefix: string, fromRevision: number, listener: WatchListener): () => void;
  /** The revision of this node's applied state. */
  revision(): number;
  isLeader(): boolean;
  /** The current Raft term (a controller stamps its decisions with it). */
  term(): number;
  /** Called with (leaderId, term) whenever the known leader changes; returns an unsubscribe. */
  onLeaderChange(listener: (leader: number, term: number) => void): () => void;
  /**
   * The current voters and learners with their addresses, and how long this node has heard
   * nothing from each. Only the leader's silences mean anything (see `CutoverNode.memberActivity`).
   */
  members(): MemberActivity[];
}

function asTxn(result: CommandResult): TxnResult {
  if (result.type !== 'txn') throw new Error(`expected a txn result, got ${result.type}`);
  return result;
}

/** The port over a real (or simulated) node. */
export function nodeClusterPort(node: CutoverNode): ClusterPort {
  return {
    nodeId: node.id,
    txn: async (compare, success, failure = []) => asTxn(await node.propose({ type: 'txn', compare, success, failure })),
    get: async (key, options = {}) => (await node.get(key, options)).kv,
    range: (prefix, options = {}) => node.range(prefix, options.limit ?? 0, options.serializable === true ? { serializable: true } : {}),
    watch: (prefix, fromRevision, listener) => node.watch(prefix, fromRevision, listener),
    revision: () => node.kv.revision(),
    isLeader: () => node.isLeader(),
    term: () => node.status().term,
    onLeaderChange: (listener) => node.onLeaderChange(listener),
    members: () => node.memberActivity(),
  };
}

/**
 * An in-memory single-node "cluster" for unit tests of the layers above: one KvStore, writes
 * applied at once, leadership switchable by the test.
 */
export class MemoryClusterPort implements ClusterPort {
  readonly kv = new KvStore();
  private leader: boolean;
  private currentTerm = 1;
  private readonly listeners = new Set<(leader: number, term: number) => void>();
  private memberList: MemberActivity[];

  constructor(
    readonly nodeId = 1,
    leader = true,
  ) {
    this.leader = leader;
    this.memberList = [{ id: nodeId, address: `127.0.0.1:${7000 + nodeId}`, voter: true, silentForMs: 0 }];
  }

  async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
    if (!this.leader) throw new NotLeaderError(0);
    return asTxn(this.apply({ type: 'txn', compare, success, failure }));
  }

  private apply(command: Command): CommandResult {
    const outcome = this.kv.apply({ clientId: 0, sequence: 0, command });
    if (!outcome.ok) throw Object.assign(new Error(outcome.message), { code: outcome.code });
    return outcome.result;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    return this.kv.get(key);
  }

  async range(prefix: string, options: { limit?: number } = {}): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> {
    return { ...this.kv.range(prefix, options.limit ?? 0), revision: this.kv.revision() };
  }

  watch(prefix: string, fromRevision: number, listener: WatchListener): () => void {
    return this.kv.watch(prefix, fromRevision, listener);
  }

  revision(): number {
    return this.kv.revision();
  }

  isLeader(): boolean {
    return this.leader;
  }

  term(): number {
    return this.currentTerm;
  }

  onLeaderChange(listener: (leader: number, term: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  members(): MemberActivity[] {
    return this.memberList;
  }

  /** Test control: the members and silences that `members()` reports. */
  setMembers(members: readonly MemberActivity[]): void {
    this.memberList = [...members];
  }

  /** Test control: gain or lose leadership (a new term either way). */
  setLeader(leader: boolean): void {
    this.leader = leader;
    this.currentTerm++;
    for (const l of this.listeners) l(leader ? this.nodeId : 0, this.currentTerm);
  }
}
