/**
 * The node runtime's `PeerTransport` on the simulated network. Each incarnation of a node gets its
 * own transport; the hub routes what the network delivers to the receiver's current one, and
 * reports failures to the incarnation that sent the message, the way the gRPC transport does:
 * never from inside `send()` (a drop is reported on the next microtask, one `onUnreachable` per
 * peer per turn), a snapshot's outcome always (delivered or not), an append's loss only when a
 * transport would see it (the peer unreachable: partitioned or down), never a silent loss.
 *
 * The simulated network is harsher than the transport contract: it reorders and duplicates
 * messages, which Raft must (and does) tolerate anyway.
 */
import { assert } from '../../src/util/assert.ts';
import type { Message } from '../../src/raft/index.ts';
import type { PeerTransport, TransportHandler } from '../../src/transport/transport.ts';
import type { InvariantChecker } from '../checkers/invariants.ts';
import type { EventQueue } from '../events.ts';
import type { SimNetwork } from '../network.ts';
import type { Trace } from '../trace.ts';

/** The address the simulator gives node `id`. */
export function simAddress(id: number): string {
  return `sim://${id}`;
}

/** Routes messages between the nodes' current transports over one `SimNetwork`. */
export class TransportHub {
  private network: SimNetwork | undefined;
  private readonly current = new Map<number, SimTransport>();
  /** Which incarnation sent each message in flight, so a failure reaches the sender, not its successor. */
  private readonly senders = new WeakMap<Message, SimTransport>();

  constructor(
    private readonly queue: EventQueue,
    private readonly trace: Trace,
    private readonly checker: InvariantChecker,
  ) {}

  /** Connects the network (it is built with this hub's `deliver` and `undelivered`). */
  connect(network: SimNetwork): void {
    this.network = network;
  }

  /** A transport for a new incarnation of node `nodeId`; it replaces the previous one. */
  open(nodeId: number, onZombie: (what: string) => void): SimTransport {
    const transport = new SimTransport(nodeId, this, onZombie);
    this.current.set(nodeId, transport);
    return transport;
  }

  /** The network hands `message` to its receiver; false when no running node takes it. */
  deliver(message: Message): boolean {
    const receiver = this.current.get(message.to);
    if (receiver === undefined || !receiver.running) return false;
    this.trace.record(this.queue.nowMs, message.to, 'recv', message);
    receiver.receive(message);
    if (message.type === 'snap') this.senders.get(message)?.reportSnapshot(message.to, true);
    return true;
  }

  /** The network will never deliver `message` (see SimNetwork for `why`). */
  undelivered(message: Message, why: 'unreachable' | 'lost'): void {
    const sender = this.senders.get(message);
    if (sender === undefined) return;
    if (message.type === 'snap') sender.reportSnapshot(message.to, false);
    else if (why === 'unreachable') sender.reportUnreachable(message.to);
  }

  /** @internal A transport sends `message`. */
  send(sender: SimTransport, message: Message): void {
    assert(this.network !== undefined, 'TransportHub: send before connect');
    this.checker.onMessage(message);
    this.senders.set(message, sender);
    this.network.send(message);
  }
}

/** One incarnation's transport. Killed with its node: it then neither sends nor receives. */
export class SimTransport implements PeerTransport {
  running = false;
  private alive = true;
  private handler: TransportHandler | undefined;
  private readonly addresses = new Map<number, string>();
  private readonly unreachable = new Set<number>();

  constructor(
    private readonly nodeId: number,
    private readonly hub: TransportHub,
    private readonly onZombie: (what: string) => void,
  ) {}

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /** Like the gRPC transport: nothing before `start()` or after `stop()`; unknown peers are refused. */
  send(messages: readonly Message[]): void {
    if (!this.alive) this.onZombie(`sent ${messages.length} message(s)`);
    if (!this.running) return;
    for (const message of messages) {
      assert(message.to !== this.nodeId, `send: message to self (${message.type})`);
      if (!this.addresses.has(message.to)) {
        if (message.type === 'snap') this.reportSnapshot(message.to, false);
        else this.reportUnreachable(message.to);
        continue;
      }
      this.hub.send(this, message);
    }
  }

  addPeer(id: number, address: string): void {
    this.addresses.set(id, address);
  }

  removePeer(id: number): void {
    this.addresses.delete(id);
  }

  address(id: number): string | undefined {
    return this.addresses.get(id);
  }

  async start(): Promise<void> {
    if (!this.alive) this.onZombie('started its transport');
    this.running = this.alive;
  }

  async stop(): Promise<void> {
    this.running = false;
  }

  /** The node crashed: drop everything, report nothing. */
  kill(): void {
    this.alive = false;
    this.running = false;
  }

  /** @internal */
  receive(message: Message): void {
    this.handler?.onMessage(message);
  }

  /** @internal Coalesced per peer and handed over on the next microtask, never inside `send()`. */
  reportUnreachable(peer: number): void {
    if (this.unreachable.size === 0) queueMicrotask(() => this.flushUnreachable());
    this.unreachable.add(peer);
  }

  /** @internal Handed over on the next microtask. */
  reportSnapshot(peer: number, ok: boolean): void {
    queueMicrotask(() => {
      if (this.running) this.handler?.onSnapshotStatus(peer, ok);
    });
  }

  private flushUnreachable(): void {
    const peers = [...this.unreachable];
    this.unreachable.clear();
    if (!this.running) return;
    for (const peer of peers) this.handler?.onUnreachable(peer);
  }
}
