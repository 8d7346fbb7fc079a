import type { Message } from '../raft/index.ts';

/** What the transport hands inbound events to (the node runtime). */
export interface TransportHandler {
  /** A Raft message arrived from a peer. */
  onMessage(message: Message): void;
  /** Messages to `peer` were dropped (queue full, connection down): stop pipelining to it. */
  onUnreachable(peer: number): void;
  /** A snapshot sent to `peer` was delivered (ok) or failed. */
  onSnapshotStatus(peer: number, ok: boolean): void;
}

/**
 * Carries Raft messages between peers. `send` never blocks: each peer has a bounded queue, and a
 * full queue drops the message and reports the peer unreachable (Raft retransmits). Messages to
 * one peer are delivered in order or not at all; nothing is delivered twice by the transport.
 */
export interface PeerTransport {
  setHandler(handler: TransportHandler): void;
  send(messages: readonly Message[]): void;
  /** Adds or updates the address of a peer. */
  addPeer(id: number, address: string): void;
  removePeer(id: number): void;
  /** The address known for a peer, if any (used for NOT_LEADER hints). */
  address(id: number): string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}
