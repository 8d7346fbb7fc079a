/**
 * The simulated network between nodes. Each message gets its own delay (a minimum plus an
 * exponential tail plus rare spikes), so messages between two nodes reorder. Faults: loss,
 * duplication, partitions (any set of blocked directed links, checked when a message is sent and
 * again when it arrives) and clogged links (messages are held, then released when the link
 * unclogs). Whether the receiver is up is the receiver's business: a crashed node drops what it gets.
 */
import { assert } from '../src/util/assert.ts';
import type { SeededRandom } from '../src/util/random.ts';
import type { Message } from '../src/raft/types.ts';
import type { EventQueue } from './events.ts';
import type { SimOptions } from './options.ts';
import type { Trace } from './trace.ts';

/** Message counts, for the run summary. */
export interface NetworkStats {
  sent: number;
  /** Delivered to a running node. */
  delivered: number;
  lost: number;
  partitioned: number;
  duplicated: number;
  clogged: number;
}

/** The delay model shared by node-to-node and client links. */
export class LinkDelay {
  constructor(
    private readonly random: SeededRandom,
    private readonly options: SimOptions,
  ) {}

  /** One message's delay in ms. */
  draw(): number {
    const { latencyMinMs, latencyMeanMs, latencySpikeRate, latencySpikeMaxMs } = this.options;
    let delayMs = latencyMinMs - latencyMeanMs * Math.log(1 - this.random.nextFloat());
    if (latencySpikeRate > 0 && this.random.nextFloat() < latencySpikeRate) delayMs += this.random.nextFloat() * latencySpikeMaxMs;
    return delayMs;
  }
}

/** Node-to-node links with faults. Node ids are 1..nodeCount. */
export class SimNetwork {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, partitioned: 0, duplicated: 0, clogged: 0 };
  private readonly blocked: boolean[];
  /** Messages held on a clogged link, by link; a link is clogged while it has an entry. */
  private readonly held = new Map<number, Message[]>();
  private faultsEnabled = true;
  private readonly delay: LinkDelay;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: SimOptions,
    private readonly trace: Trace,
    /** Hands a message to its receiver; false when the receiver is down (the message is lost). */
    private readonly deliver: (message: Message) => boolean,
    /**
     * Told of every message that will never arrive: `unreachable` when a transport would see the
     * send fail (partition, receiver down), `lost` when it vanished silently.
     */
    private readonly undelivered: (message: Message, why: 'unreachable' | 'lost') => void,
  ) {
    this.blocked = new Array<boolean>((options.nodes + 1) * (options.nodes + 1)).fill(false);
    this.delay = new LinkDelay(random, options);
  }

  /** Sends `message` from `message.from` to `message.to`. */
  send(message: Message): void {
    assert(message.from !== message.to, `network: message to self ${message.type} ${message.from}`);
    this.stats.sent++;
    const link = this.link(message.from, message.to);
    if (this.blocked[link] === true) {
      this.stats.partitioned++;
      this.undelivered(message, 'unreachable');
      return;
    }
    const held = this.held.get(link);
    if (held !== undefined) {
      this.stats.clogged++;
      held.push(message);
      return;
    }
    if (this.faultsEnabled && this.random.nextFloat() < this.options.lossRate) {
      this.stats.lost++;
      this.trace.record(this.queue.nowMs, message.from, 'lose', message);
      this.undelivered(message, 'lost');
      return;
    }
    this.schedule(message);
    if (this.faultsEnabled && this.random.nextFloat() < this.options.duplicateRate) {
      this.stats.duplicated++;
      this.schedule(message);
    }
  }

  /** Blocks every directed link in `links` ([from, to] pairs) until `heal()`. */
  partition(links: readonly (readonly [number, number])[], description: string): void {
    this.blocked.fill(false);
    for (const [from, to] of links) this.blocked[this.link(from, to)] = true;
    this.trace.record(this.queue.nowMs, 0, 'partition', description);
  }

  /** Removes every partition. */
  heal(): void {
    this.blocked.fill(false);
    this.trace.record(this.queue.nowMs, 0, 'heal');
  }

  /** Holds messages on the link from `from` to `to` until `unclog`. */
  clog(from: number, to: number): void {
    const link = this.link(from, to);
    if (!this.held.has(link)) this.held.set(link, []);
    this.trace.record(this.queue.nowMs, 0, 'clog', `${from}->${to}`);
  }

  /** Releases a clogged link: its held messages leave now, each with a fresh delay. */
  unclog(from: number, to: number): void {
    const link = this.link(from, to);
    const held = this.held.get(link);
    if (held === undefined) return;
    this.held.delete(link);
    this.trace.record(this.queue.nowMs, 0, 'unclog', `${from}->${to} released=${held.length}`);
    for (const message of held) this.schedule(message);
  }

  /**
   * Whether a message from `from` to `to` would leave now: not partitioned, not clogged. For
   * scenarios that carry their own traffic over these links (cluster-sim/updates).
   */
  linkUp(from: number, to: number): boolean {
    const link = this.link(from, to);
    return this.blocked[link] !== true && !this.held.has(link);
  }

  /** False once `healAll()` has stopped loss and duplication. */
  get faulty(): boolean {
    return this.faultsEnabled;
  }

  /** Heals partitions, unclogs every link and stops loss and duplication (the liveness phase). */
  healAll(): void {
    this.heal();
    for (const link of [...this.held.keys()]) this.unclog(Math.floor(link / (this.options.nodes + 1)), link % (this.options.nodes + 1));
    this.faultsEnabled = false;
  }

  private schedule(message: Message): void {
    this.queue.after(this.delay.draw(), () => {
      if (this.blocked[this.link(message.from, message.to)] === true) {
        this.stats.partitioned++;
        this.undelivered(message, 'unreachable');
        return;
      }
      if (this.deliver(message)) this.stats.delivered++;
      else this.undelivered(message, 'unreachable');
    });
  }

  private link(from: number, to: number): number {
    assert(from >= 1 && from <= this.options.nodes && to >= 1 && to <= this.options.nodes, `network: bad link ${from}->${to}`);
    return from * (this.options.nodes + 1) + to;
  }
}

/**
 * The shapes of partition the fault scheduler picks from: one node cut off both ways, a minority
 * and a majority side, one node that can receive but not send (or send but not receive), and a
 * single one-way link.
 */
export const PARTITION_KINDS = ['isolate', 'split', 'one-way-out', 'one-way-in', 'single-link'] as const;
export type PartitionKind = (typeof PARTITION_KINDS)[number];

/** Builds the blocked links of a partition of kind `kind` over nodes 1..nodeCount. */
export function partitionLinks(kind: PartitionKind, nodeCount: number, random: SeededRandom): { links: [number, number][]; description: string } {
  const ids = Array.from({ length: nodeCount }, (_, i) => i + 1);
  const victim = random.nextInt(1, nodeCount + 1);
  const others = ids.filter((id) => id !== victim);
  switch (kind) {
    case 'isolate':
      return { links: others.flatMap((id): [number, number][] => [[victim, id], [id, victim]]), description: `isolate ${victim}` };
    case 'one-way-out':
      return { links: others.map((id): [number, number] => [victim, id]), description: `one-way ${victim}->* blocked` };
    case 'one-way-in':
      return { links: others.map((id): [number, number] => [id, victim]), description: `one-way *->${victim} blocked` };
    case 'single-link': {
      const to = others[random.nextInt(0, others.length)]!;
      return { links: [[victim, to]], description: `link ${victim}->${to} blocked` };
    }
    case 'split': {
      // A minority and a majority side (with 5 nodes the minority has one or two members).
      const shuffled = shuffle(ids, random);
      const minoritySize = random.nextInt(1, Math.floor((nodeCount - 1) / 2) + 1);
      const minority = shuffled.slice(0, minoritySize);
      const majority = shuffled.slice(minoritySize);
      const links = minority.flatMap((a) => majority.flatMap((b): [number, number][] => [[a, b], [b, a]]));
      return { links, description: `split {${minority.join(',')}}|{${majority.join(',')}}` };
    }
  }
}

/** A Fisher-Yates shuffled copy of `values`. */
export function shuffle<T>(values: readonly T[], random: SeededRandom): T[] {
  const copy = [...values];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.nextInt(0, i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
