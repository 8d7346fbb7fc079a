/**
 * A tiny synchronous test network for the Raft core (in the spirit of etcd-io/raft's `network`):
 * nodes with MemoryStorage that follow the Ready contract, message delivery until quiet, and
 * controllable drops. Deterministic: seeded jitter, FIFO delivery.
 */
import { RawNode, MemoryStorage, decodeConfChange, type Entry, type Message, type RaftConfig } from '../../src/raft/index.ts';
import { SeededRandom } from '../../src/util/random.ts';

export interface TestPeer {
  readonly id: number;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: { index: number; context: string }[];
}

export type PeerOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;

export class TestNetwork {
  readonly peers = new Map<number, TestPeer>();
  /** Messages that `deliver` drops: return true to drop. */
  dropIf: (m: Message) => boolean = () => false;
  /** Every message sent, in order (including dropped ones). */
  readonly sent: Message[] = [];
  private readonly random: SeededRandom;
  private readonly options: PeerOptions;
  private queue: Message[] = [];

  constructor(ids: readonly number[], options: PeerOptions = {}, seed = 1) {
    this.random = new SeededRandom(seed);
    this.options = options;
    for (const id of ids) this.addPeer(id, MemoryStorage.bootstrap(ids));
  }

  addPeer(id: number, storage: MemoryStorage, extra: PeerOptions = {}): TestPeer {
    const node = new RawNode({ id, storage, random: this.random.fork(), ...this.options, ...extra });
    const peer: TestPeer = { id, node, storage, applied: [], readStates: [] };
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

  /** Processes every pending Ready once: persist, queue messages, apply, advance. */
  processReadies(): void {
    for (const peer of this.peers.values()) {
      while (peer.node.hasReady()) {
        const rd = peer.node.ready();
        peer.storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
        for (const m of rd.messages) this.queue.push(m);
        for (const e of rd.committedEntries) {
          if (e.type === 'confChange') peer.node.applyConfChange(decodeConfChange(e.data));
          peer.applied.push(e);
        }
        peer.readStates.push(...rd.readStates);
        peer.node.advance();
      }
    }
  }

  /** Delivers messages until none are left (bounded). */
  settle(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        this.sent.push(m);
        if (this.dropIf(m)) continue;
        this.peers.get(m.to)?.node.step(m);
      }
    }
    throw new Error('network did not settle');
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

  /** Cuts every link touching `id` (both directions). */
  isolate(id: number): void {
    this.dropIf = (m) => m.from === id || m.to === id;
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
    const { index } = this.peer(id).node.propose(new TextEncoder().encode(text));
    this.settle();
    return index;
  }
}

export function appliedData(peer: TestPeer): string[] {
  return peer.applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
}
