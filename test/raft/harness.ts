/**
 * A tiny synchronous test network for the Raft core (in the spirit of etcd-io/raft's `network`):
 * nodes with MemoryStorage that follow the Ready contract, message delivery until quiet, and
 * controllable drops. Deterministic: seeded jitter, FIFO delivery.
 *
 * Every Ready it processes is checked against three invariants, so every test that uses the
 * network also checks them: election safety (at most one leader per term), state-machine safety
 * (no two peers apply different entries at one index) and a commit index that never moves
 * backwards (across restarts too, since the hard state is persisted).
 */
import { RawNode, MemoryStorage, decodeConfChange, type Entry, type Message, type RaftConfig, type Ready } from '../../src/raft/index.ts';
import { SeededRandom } from '../../src/util/random.ts';

export interface TestPeer {
  readonly id: number;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: { index: number; context: string }[];
  /** Indexes of the snapshots this peer was handed in a Ready (and installed). */
  restoredSnapshots: number[];
}

export type PeerOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;

export type Invariant = 'electionSafety' | 'stateMachineSafety' | 'commitMonotonic';

/** Thrown by the network when a Raft invariant is broken; `invariant` names it. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly invariant: Invariant,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TestNetwork {
  readonly peers = new Map<number, TestPeer>();
  /** Messages that `deliver` drops: return true to drop. */
  dropIf: (m: Message) => boolean = () => false;
  /** Every message sent, in order (including dropped ones). */
  readonly sent: Message[] = [];
  /** The dropped subset of `sent`. */
  readonly dropped: Message[] = [];
  /** Called with every Ready the network processes, before any of it is handled. */
  onReady: (id: number, rd: Ready) => void = () => {};
  /** Leader of each term seen so far. */
  readonly leaders = new Map<number, number>();
  /** Highest commit index each peer has reported. */
  readonly commits = new Map<number, number>();
  /** The entry (term) applied at each index, by whichever peer applied it first. */
  private readonly appliedTerms = new Map<number, { term: number; by: number }>();
  private readonly random: SeededRandom;
  private readonly options: PeerOptions;
  private queue: Message[] = [];

  constructor(ids: readonly number[], options: PeerOptions = {}, seed = 1) {
    this.random = new SeededRandom(seed);
    this.options = options;
    for (const id of ids) this.addPeer(id, MemoryStorage.bootstrap(ids));
  }

  /**
   * A network whose peers start with the given logs (peer id -> the terms of entries 1..n), all
   * uncommitted, with `term` (default: the highest term in any log) as every peer's current term.
   */
  static withLogs(logs: Readonly<Record<number, readonly number[]>>, options: PeerOptions = {}, term?: number, seed = 1): TestNetwork {
    const net = new TestNetwork([], options, seed);
    const ids = Object.keys(logs).map(Number);
    const termNow = term ?? Math.max(0, ...Object.values(logs).flat());
    for (const id of ids) net.addPeer(id, storageWithLog(ids, logs[id]!, { term: termNow, vote: 0, commit: 0 }));
    return net;
  }

  addPeer(id: number, storage: MemoryStorage, extra: PeerOptions = {}): TestPeer {
    const node = new RawNode({ id, storage, random: this.random.fork(), ...this.options, ...extra });
    const peer: TestPeer = { id, node, storage, applied: [], readStates: [], restoredSnapshots: [] };
    this.peers.set(id, peer);
    return peer;
  }

  /** Simulates a crash and restart from what storage holds (unapplied state is rebuilt). */
  restart(id: number, extra: PeerOptions = {}): TestPeer {
    const old = this.peer(id);
    this.queue = this.queue.filter((m) => m.to !== id);
    return this.addPeer(id, old.storage, extra);
  }

  peer(id: number): TestPeer {
    const p = this.peers.get(id);
    if (p === undefined) throw new Error(`no peer ${id}`);
    return p;
  }

  /** Processes every pending Ready: queue early messages, persist, queue messages, apply, advance. */
  processReadies(): void {
    for (const peer of this.peers.values()) {
      while (peer.node.hasReady()) this.processReady(peer);
    }
  }

  private processReady(peer: TestPeer): void {
    const rd = peer.node.ready();
    this.onReady(peer.id, rd);
    for (const m of rd.earlyMessages) this.queue.push(m);
    peer.storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
    if (rd.snapshot !== undefined) peer.restoredSnapshots.push(rd.snapshot.metadata.index);
    for (const m of rd.messages) this.queue.push(m);
    for (const e of rd.committedEntries) {
      if (e.type === 'confChange') peer.node.applyConfChange(decodeConfChange(e.data));
      this.checkApplied(peer.id, e);
      peer.applied.push(e);
    }
    peer.readStates.push(...rd.readStates);
    peer.node.advance();
    this.checkStatus(peer);
  }

  private checkApplied(id: number, e: Entry): void {
    const first = this.appliedTerms.get(e.index);
    if (first === undefined) this.appliedTerms.set(e.index, { term: e.term, by: id });
    else if (first.term !== e.term) throw new InvariantViolation('stateMachineSafety', `peer ${id} applied term ${e.term} at index ${e.index}, peer ${first.by} applied term ${first.term}`);
  }

  private checkStatus(peer: TestPeer): void {
    const { role, term, commit } = peer.node.status();
    if (role === 'leader') {
      const known = this.leaders.get(term);
      if (known !== undefined && known !== peer.id) throw new InvariantViolation('electionSafety', `peers ${known} and ${peer.id} both lead term ${term}`);
      this.leaders.set(term, peer.id);
    }
    const before = this.commits.get(peer.id) ?? 0;
    if (commit < before) throw new InvariantViolation('commitMonotonic', `peer ${peer.id} commit went from ${before} to ${commit}`);
    this.commits.set(peer.id, commit);
  }

  /** Delivers messages until none are left (bounded). */
  settle(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliver(m);
    }
    throw new Error('network did not settle');
  }

  /** Delivers one message now (subject to `dropIf`), reporting snapshot delivery as a driver must. */
  deliver(m: Message): void {
    this.sent.push(m);
    const target = this.peers.get(m.to);
    const drop = this.dropIf(m) || target === undefined;
    if (drop) this.dropped.push(m);
    else target.node.step(m);
    if (m.type === 'snap') this.peers.get(m.from)?.node.reportSnapshot(m.to, !drop);
  }

  /** Processes readies and removes (without delivering) the queued messages sent by `id`. */
  take(id: number): Message[] {
    this.processReadies();
    const taken = this.queue.filter((m) => m.from === id);
    this.queue = this.queue.filter((m) => m.from !== id);
    return taken;
  }

  /** Ticks every node `n` times, settling after each tick. */
  tick(n: number, only?: readonly number[]): void {
    for (let i = 0; i < n; i++) {
      for (const peer of this.peers.values()) if (only === undefined || only.includes(peer.id)) peer.node.tick();
      this.settle();
    }
  }

  /** Makes `id` campaign and settles. */
  campaign(id: number): void {
    this.peer(id).node.campaign();
    this.settle();
  }

  /** Campaigns on `id` until it leads (a first round may only teach it the current term). */
  elect(id: number, attemptsMax = 3): void {
    for (let i = 0; i < attemptsMax; i++) {
      this.campaign(id);
      if (this.peer(id).node.status().role === 'leader') return;
    }
    throw new Error(`peer ${id} did not win an election in ${attemptsMax} attempts`);
  }

  /** Cuts every link touching `id` (both directions). */
  isolate(...ids: number[]): void {
    this.dropIf = (m) => ids.includes(m.from) || ids.includes(m.to);
  }

  /** Splits into groups; messages across groups are dropped. */
  partition(...groups: number[][]): void {
    const groupOf = new Map<number, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    this.dropIf = (m) => groupOf.get(m.from) !== groupOf.get(m.to);
  }

  heal(): void {
    this.dropIf = () => false;
  }

  leader(): number {
    let leader = 0;
    for (const p of this.peers.values()) if (p.node.status().role === 'leader') leader = p.id;
    return leader;
  }

  /** Proposes on `id` and settles; returns the proposal's index. */
  propose(id: number, text: string): number {
    const { index } = this.peer(id).node.propose(encoder.encode(text));
    this.settle();
    return index;
  }
}

export function appliedData(peer: TestPeer): string[] {
  return peer.applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => decoder.decode(e.data));
}

/** A message with every field defaulted, for stepping into a node by hand. */
export function msg(fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

/** Entries with the given terms, starting at index `first` (default 1). */
export function entries(terms: readonly number[], first = 1): Entry[] {
  return terms.map((term, i) => ({ term, index: first + i, type: 'normal' as const, data: encoder.encode(`e${first + i}`) }));
}

/** The terms of a peer's persisted log (all of it, once the network has settled). */
export function logTerms(peer: TestPeer): number[] {
  const storage = peer.storage;
  const terms: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) terms.push(storage.term(i));
  return terms;
}

/** A storage holding `terms` as its log (index 1..n), with the given membership and hard state. */
export function storageWithLog(voters: readonly number[], terms: readonly number[], hardState?: { term: number; vote: number; commit: number }): MemoryStorage {
  const storage = MemoryStorage.bootstrap(voters);
  if (terms.length > 0) storage.save({ entries: entries(terms) });
  const lastTerm = terms[terms.length - 1] ?? 0;
  storage.save({ entries: [], hardState: hardState ?? { term: lastTerm, vote: 0, commit: 0 } });
  return storage;
}

export const text = (s: string): Uint8Array => encoder.encode(s);
