/**
 * The event trace of one run: a bounded ring of the most recent events (printed when a checker
 * fires) and a running digest of every event (two runs of one seed must end with equal digests).
 * Events are stored unformatted and turned into text only when someone reads them, because most
 * runs never print a line.
 */
import type { Message } from '../src/raft/types.ts';

/** What a trace event carries besides its kind: a message, a short text, or nothing. */
export type TraceDetail = Message | string | undefined;

interface TraceEvent {
  atMs: number;
  node: number;
  kind: string;
  detail: TraceDetail;
}

/** Recent events and a digest of all of them. */
export class Trace {
  private readonly ring: TraceEvent[] = [];
  private ringNext = 0;
  private digestValue = 0x811c9dc5;
  private count = 0;

  /**
   * @param capacity how many recent events to keep (a limit, so a long run stays small)
   * @param sink when set, every event is formatted and passed to it as it happens (--verbose)
   */
  constructor(
    private readonly capacity: number,
    private readonly sink?: (line: string) => void,
  ) {}

  /** Records one event at `atMs` on `node` (0 for the simulator itself). */
  record(atMs: number, node: number, kind: string, detail?: TraceDetail): void {
    this.count++;
    this.digestValue = mixDigest(this.digestValue, atMs, node, kind, detail);
    const event = { atMs, node, kind, detail };
    if (this.ring.length < this.capacity) this.ring.push(event);
    else this.ring[this.ringNext] = event;
    this.ringNext = (this.ringNext + 1) % this.capacity;
    if (this.sink !== undefined) this.sink(formatEvent(event));
  }

  /** A hex digest of every event recorded so far (time, node, kind and detail). */
  get digest(): string {
    return (this.digestValue >>> 0).toString(16).padStart(8, '0');
  }

  get eventCount(): number {
    return this.count;
  }

  /** The last `limit` events, oldest first, formatted one per line. */
  last(limit: number): string[] {
    const ordered = this.ring.length < this.capacity ? this.ring : [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)];
    return ordered.slice(Math.max(0, ordered.length - limit)).map(formatEvent);
  }
}

/** A one-line description of a Raft message, for traces. */
export function describeMessage(message: Message): string {
  let text = `${message.type} ${message.from}->${message.to} term=${message.term}`;
  if (message.type === 'app' || message.type === 'appResp' || message.type === 'vote' || message.type === 'preVote') {
    text += ` index=${message.index} logTerm=${message.logTerm}`;
  }
  if (message.entries.length > 0) text += ` entries=${message.entries[0]!.index}..${message.entries[message.entries.length - 1]!.index}`;
  if (message.commit > 0) text += ` commit=${message.commit}`;
  if (message.reject) text += ` reject hint=${message.rejectHint}`;
  if (message.snapshot !== undefined) text += ` snapshot=${message.snapshot.metadata.index}@${message.snapshot.metadata.term}`;
  if (message.context !== undefined && message.context !== '') text += ` ctx=${message.context}`;
  return text;
}

function formatEvent(event: TraceEvent): string {
  const where = event.node === 0 ? 'sim' : `n${event.node}`;
  const detail = event.detail === undefined ? '' : typeof event.detail === 'string' ? ` ${event.detail}` : ` ${describeMessage(event.detail)}`;
  return `${event.atMs.toFixed(3).padStart(10)}ms ${where.padEnd(3)} ${event.kind}${detail}`;
}

const FNV_PRIME = 0x01000193;

function mixNumber(hash: number, value: number): number {
  let h = hash;
  h = Math.imul(h ^ (value & 0xffff), FNV_PRIME);
  h = Math.imul(h ^ ((value >>> 16) & 0xffff), FNV_PRIME);
  return h;
}

function mixString(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

function mixDigest(hash: number, atMs: number, node: number, kind: string, detail: TraceDetail): number {
  let h = mixNumber(hash, Math.round(atMs * 1000) >>> 0);
  h = mixNumber(h, node);
  h = mixString(h, kind);
  if (typeof detail === 'string') return mixString(h, detail);
  if (detail === undefined) return h;
  h = mixString(h, detail.type);
  h = mixNumber(h, detail.from * 16 + detail.to);
  h = mixNumber(h, detail.term);
  h = mixNumber(h, detail.index);
  h = mixNumber(h, detail.commit);
  return mixNumber(h, detail.entries.length);
}
