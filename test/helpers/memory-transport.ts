import type { Message } from '../../src/raft/index.ts';
import type { PeerTransport, TransportHandler } from '../../src/transport/transport.ts';

/** An in-process network of transports: delivery is synchronous-ish (next microtask), FIFO. */
export class MemoryHub {
  readonly transports = new Map<number, MemoryTransport>();
  /** Links that drop messages: `${from}->${to}`. */
  readonly cut = new Set<string>();

  transport(id: number): MemoryTransport {
    const t = new MemoryTransport(id, this);
    this.transports.set(id, t);
    return t;
  }

  isolate(id: number): void {
    for (const other of this.transports.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`)) return;
    const target = this.transports.get(m.to);
    if (target === undefined || !target.running) return;
    void Promise.resolve().then(() => target.receive(m));
  }
}

export class MemoryTransport implements PeerTransport {
  running = false;
  private handler: TransportHandler | undefined;
  private readonly peers = new Map<number, string>();

  constructor(
    readonly id: number,
    private readonly hub: MemoryHub,
  ) {}

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }
  send(messages: readonly Message[]): void {
    for (const m of messages) {
      this.hub.deliver(m);
      if (m.type === 'snap') this.handler?.onSnapshotStatus(m.to, !this.hub.cut.has(`${m.from}->${m.to}`));
    }
  }
  receive(m: Message): void {
    if (this.running) this.handler?.onMessage(m);
  }
  addPeer(id: number, address: string): void {
    this.peers.set(id, address);
  }
  removePeer(id: number): void {
    this.peers.delete(id);
  }
  address(id: number): string | undefined {
    return this.peers.get(id);
  }
  async start(): Promise<void> {
    this.running = true;
  }
  async stop(): Promise<void> {
    this.running = false;
  }
}
