/**
 * The gRPC implementation of `PeerTransport` (`cutover.peer.v1.Raft`): one outbound `Send` stream
 * per peer carrying batches from a bounded queue, snapshots in chunks on `SendSnapshot`, reconnect
 * with exponential back-off and full jitter, and a server side that checks who each message is
 * from and for before Raft sees it.
 *
 * Handler calls never happen inside `send()`: drops are reported on the next microtask (one
 * `onUnreachable` per peer per turn), so the node can call `send()` in the middle of a Ready.
 * Nothing reaches the handler once `stop()` has begun.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import { CutoverError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { InboundService, type InboundStats } from './inbound.ts';
import { peerServerChannelOptions, validateTransportOptions, type GrpcTransportOptions } from './options.ts';
import { PeerStream, type PeerStats } from './peer-stream.ts';
import { raftService } from './proto.ts';
import type { PeerTransport, TransportHandler } from './transport.ts';

/** A snapshot of the transport's counters: one entry per peer, and inbound traffic. */
export interface TransportStats {
  readonly peers: readonly PeerStats[];
  readonly inbound: Readonly<InboundStats>;
}

type Lifecycle = 'new' | 'running' | 'stopping' | 'stopped';

/** See the module comment. Build it, `addPeer`, `setHandler`, `start()`; `stop()` once. */
export class GrpcTransport implements PeerTransport {
  private readonly options: GrpcTransportOptions;
  private readonly log: Logger;
  private readonly inbound: InboundService;
  private readonly addresses = new Map<number, string>();
  private readonly streams = new Map<number, PeerStream>();
  private readonly unreachable = new Set<number>();
  private handler: TransportHandler | undefined;
  private lifecycle: Lifecycle = 'new';
  private ownServer: grpc.Server | undefined;
  private boundPort: number | undefined;
  private stopping: Promise<void> | undefined;

  /** Throws `InvalidArgumentError` naming the first bad setting (see `validateTransportOptions`). */
  constructor(options: GrpcTransportOptions) {
    validateTransportOptions(options);
    this.options = options;
    this.log = options.logger.child({ component: 'transport', nodeId: options.nodeId });
    this.inbound = new InboundService({ nodeId: options.nodeId, limits: options.limits, logger: this.log, deliver: (message) => this.deliver(message) });
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /**
   * Routes each message to its peer's queue, or a `snap` to its own stream. Never blocks and never
   * calls the handler itself. Before `start()` and after `stop()` it drops everything silently.
   */
  send(messages: readonly Message[]): void {
    if (this.lifecycle !== 'running') return;
    for (const message of messages) {
      assert(message.to !== this.options.nodeId, `send: message to self (${message.type})`);
      const stream = this.streams.get(message.to);
      if (stream === undefined) this.refuseUnknownPeer(message);
      else if (message.type === 'snap') stream.sendSnapshot(message);
      else stream.enqueue(message);
    }
  }

  private refuseUnknownPeer(message: Message): void {
    this.log.debug({ to: message.to, type: message.type }, 'no address for peer; message dropped');
    if (message.type === 'snap') queueMicrotask(() => this.reportSnapshot(message.to, false));
    else this.reportUnreachable(message.to);
  }

  /**
   * Adds or updates the address of a peer. A new address replaces the peer's stream. Our own id
   * is recorded (for `address(id)`) but gets no stream.
   */
  addPeer(id: number, address: string): void {
    if (this.addresses.get(id) === address) return;
    this.addresses.set(id, address);
    if (id === this.options.nodeId) return;
    this.closeStream(id);
    const stream = new PeerStream({
      peer: id,
      address,
      transport: this.options,
      logger: this.log.child({ peer: id, address }),
      onUnreachable: () => this.reportUnreachable(id),
      onSnapshotStatus: (ok) => this.reportSnapshot(id, ok),
    });
    this.streams.set(id, stream);
  }

  removePeer(id: number): void {
    this.addresses.delete(id);
    this.closeStream(id);
  }

  private closeStream(id: number): void {
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    this.streams.delete(id);
    void stream.close(this.options.timeouts.stopGraceMs);
  }

  address(id: number): string | undefined {
    return this.addresses.get(id);
  }

  /** Serves inbound traffic: binds its own server, or adds the service to the shared one. */
  async start(): Promise<void> {
    assert(this.lifecycle === 'new', 'GrpcTransport.start() called twice');
    assert(this.handler !== undefined, 'GrpcTransport.setHandler() must be called before start()');
    const { listen } = this.options;
    if (typeof listen === 'string') await this.listenOwn(listen);
    else listen.server.addService(raftService, this.inbound.implementation());
    this.lifecycle = 'running';
    this.log.info({ listen: this.boundAddress() ?? 'shared server', peers: [...this.streams.keys()] }, 'peer transport started');
  }

  private async listenOwn(listen: string): Promise<void> {
    const server = new grpc.Server(peerServerChannelOptions(this.options));
    server.addService(raftService, this.inbound.implementation());
    this.ownServer = server;
    // Insecure credentials: peers talk over loopback for now. Node-to-node TLS (mTLS) is to come.
    this.boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (error, port) => {
        if (error === null) return resolve(port);
        server.forceShutdown();
        this.lifecycle = 'stopped';
        reject(new CutoverError('TRANSPORT_LISTEN_FAILED', `peer transport cannot listen on ${listen}: ${error.message}`, { cause: error }));
      });
    });
  }

  /** `host:port` actually bound (the real port when `listen` asked for port 0); undefined when not serving its own server. */
  boundAddress(): string | undefined {
    const { listen } = this.options;
    if (typeof listen !== 'string' || this.boundPort === undefined) return undefined;
    return `${listen.slice(0, listen.lastIndexOf(':'))}:${this.boundPort}`;
  }

  /**
   * Ends inbound streams, closes outbound streams and shuts the server down, each bounded by
   * `timeouts.stopGraceMs` before it is forced. Idempotent. A shared server is left running, with
   * the Raft service removed.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.lifecycle = 'stopping';
    this.inbound.close();
    const streams = [...this.streams.values()];
    this.streams.clear();
    const graceMs = this.options.timeouts.stopGraceMs;
    await Promise.all([...streams.map((stream) => stream.close(graceMs)), this.shutdownServer(graceMs)]);
    this.lifecycle = 'stopped';
    this.log.info({}, 'peer transport stopped');
  }

  private shutdownServer(graceMs: number): Promise<void> {
    const { listen } = this.options;
    if (typeof listen !== 'string') {
      listen.server.removeService(raftService);
      return Promise.resolve();
    }
    const server = this.ownServer;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.options.clock.schedule(graceMs, () => {
        this.log.warn({ graceMs }, 'peer server did not shut down in time; forcing it');
        server.forceShutdown();
        resolve();
      });
      server.tryShutdown(() => {
        cancel();
        resolve();
      });
    });
  }

  /** Counters per peer and for inbound traffic (a copy). */
  stats(): TransportStats {
    return { peers: [...this.streams.values()].map((stream) => stream.stats()), inbound: { ...this.inbound.stats } };
  }

  /** Messages queued per peer: the node's peer queue depth gauge. */
  queueDepths(): ReadonlyMap<number, number> {
    return new Map([...this.streams].map(([peer, stream]) => [peer, stream.stats().queueDepth]));
  }

  private deliver(message: Message): void {
    if (this.lifecycle === 'running') this.handler?.onMessage(message);
  }

  /** Coalesces reports per peer and hands them over on the next microtask. */
  private reportUnreachable(peer: number): void {
    if (this.unreachable.size === 0) queueMicrotask(() => this.flushUnreachable());
    this.unreachable.add(peer);
  }

  private flushUnreachable(): void {
    const peers = [...this.unreachable];
    this.unreachable.clear();
    if (this.lifecycle !== 'running') return;
    for (const peer of peers) this.handler?.onUnreachable(peer);
  }

  private reportSnapshot(peer: number, ok: boolean): void {
    if (this.lifecycle === 'running') this.handler?.onSnapshotStatus(peer, ok);
  }
}
