/**
 * Clients of the simulated cluster. Each client runs one register operation at a time (put, get
 * or compare-and-set on one of a few keys) against whichever node it believes leads, follows
 * NOT_LEADER hints, retries on timeout with the same client id and sequence (so a write applies
 * once), and gives up after a deadline. Every operation goes into the history for the
 * linearizability checker: call time, and return time or +Infinity when no answer came.
 */
import type { SeededRandom } from '../src/util/random.ts';
import type { HistoryOp } from './checkers/linearizability.ts';
import type { RegisterInput, RegisterOutput } from './checkers/register-model.ts';
import type { EventQueue } from './events.ts';
import { LinkDelay } from './network.ts';
import type { SimOptions } from './options.ts';
import type { Trace } from './trace.ts';

/** A client's request to a node. `attempt` counts sends of the same operation. */
export interface ClientRequest {
  readonly clientId: number;
  readonly sequence: number;
  readonly attempt: number;
  readonly key: string;
  readonly input: RegisterInput;
}

/** A node's answer: a result, a redirect (leaderId 0 = none known), or "try again". */
export type ClientReply = { kind: 'ok'; output: RegisterOutput } | { kind: 'notLeader'; leaderId: number } | { kind: 'retry' };

/** Operation counts, for the run summary. */
export interface WorkloadStats {
  started: number;
  completed: number;
  gaveUp: number;
  attempts: number;
}

type RecordedOp = { -readonly [K in keyof HistoryOp<RegisterInput, RegisterOutput>]: HistoryOp<RegisterInput, RegisterOutput>[K] };

interface Operation {
  readonly record: RecordedOp;
  readonly sequence: number;
  readonly deadlineMs: number;
  attempt: number;
}

interface Client {
  readonly id: number;
  leaderGuess: number;
  sequence: number;
  operation: Operation | undefined;
  /** Operations given up in a row: the client backs off before the next one. */
  giveUpsInRow: number;
  /** The last value this client saw per key: what its compare-and-sets expect. */
  readonly lastSeen: Map<string, string | null>;
}

/** Waits before re-sending after a "no leader" or "retry" answer, so clients do not spin. */
const RETRY_BACKOFF_MS = 20;
/**
 * After giving up, a client waits 100 ms · 2^(give-ups in a row), at most this long, like a real
 * client backing off from an unavailable service. It also keeps the number of unanswered writes
 * (each may take effect at any later time, which the linearizability search pays for) in check.
 */
const GIVE_UP_BACKOFF_MS_MAX = 3_000;

/** All clients, their links to the nodes, and the history they record. */
export class Workload {
  readonly stats: WorkloadStats = { started: 0, completed: 0, gaveUp: 0, attempts: 0 };
  private readonly history: RecordedOp[] = [];
  private readonly clients: Client[];
  private readonly delay: LinkDelay;
  private lossless = false;
  private progressAfterHeal = { sinceMs: Number.POSITIVE_INFINITY, operations: 0, writes: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: SimOptions,
    private readonly trace: Trace,
    private readonly deliverRequest: (nodeId: number, request: ClientRequest) => void,
  ) {
    this.delay = new LinkDelay(random, options);
    this.clients = Array.from({ length: options.clients }, (_, i) => ({ id: i + 1, leaderGuess: 0, sequence: 0, operation: undefined, giveUpsInRow: 0, lastSeen: new Map() }));
  }

  /** Starts every client. */
  start(): void {
    for (const client of this.clients) this.queue.after(this.random.nextFloat() * 10, () => this.startOperation(client));
  }

  /** The liveness phase: client links stop losing messages; progress is counted from `sinceMs`. */
  heal(sinceMs: number): void {
    this.lossless = true;
    this.progressAfterHeal = { sinceMs, operations: 0, writes: 0 };
  }

  /** Operations called at or after the heal that completed, and how many of them were writes. */
  progressSinceHeal(): { operations: number; writes: number } {
    return { operations: this.progressAfterHeal.operations, writes: this.progressAfterHeal.writes };
  }

  /** A node answers `request`; the reply travels back over the client's link. */
  reply(nodeId: number, request: ClientRequest, reply: ClientReply): void {
    if (!this.lossless && this.random.nextFloat() < this.options.clientLossRate) return;
    this.queue.after(this.delay.draw(), () => this.handleReply(nodeId, request, reply));
  }

  /** The history for the checker. Reads that never got an answer are left out: they changed nothing. */
  finalHistory(): HistoryOp<RegisterInput, RegisterOutput>[] {
    return this.history.filter((op) => op.output !== undefined || op.input.kind !== 'get');
  }

  private startOperation(client: Client): void {
    client.sequence++;
    const key = `k${this.random.nextInt(0, this.options.keys)}`;
    const input = this.drawInput(client, key);
    const record: RecordedOp = { id: this.history.length, clientId: client.id, key, input, output: undefined, call: toMicroseconds(this.queue.nowMs), ret: Number.POSITIVE_INFINITY };
    this.history.push(record);
    this.stats.started++;
    client.operation = { record, sequence: client.sequence, deadlineMs: this.queue.nowMs + this.options.operationDeadlineMs, attempt: 0 };
    this.sendAttempt(client, client.operation);
  }

  private drawInput(client: Client, key: string): RegisterInput {
    const { getWeight, putWeight, casWeight } = this.options;
    const draw = this.random.nextFloat() * (getWeight + putWeight + casWeight);
    const value = `c${client.id}s${client.sequence}`;
    if (draw < getWeight) return { kind: 'get' };
    if (draw < getWeight + putWeight) return { kind: 'put', value };
    const expected = this.random.nextFloat() < 0.2 ? null : (client.lastSeen.get(key) ?? null);
    return { kind: 'cas', expected, value };
  }

  private sendAttempt(client: Client, operation: Operation): void {
    operation.attempt++;
    this.stats.attempts++;
    const staleReadVariant = this.options.unsafe === 'stale-read' && operation.record.input.kind === 'get';
    const target = client.leaderGuess !== 0 && !staleReadVariant ? client.leaderGuess : this.random.nextInt(1, this.options.nodes + 1);
    const request: ClientRequest = { clientId: client.id, sequence: operation.sequence, attempt: operation.attempt, key: operation.record.key, input: operation.record.input };
    if (this.lossless || this.random.nextFloat() >= this.options.clientLossRate) {
      this.queue.after(this.delay.draw(), () => this.deliverRequest(target, request));
    }
    const attempt = operation.attempt;
    this.queue.after(this.options.requestTimeoutMs, () => {
      if (client.operation !== operation || operation.attempt !== attempt) return;
      client.leaderGuess = 0; // the guess did not answer: try someone else
      this.retry(client, operation, 0);
    });
  }

  private retry(client: Client, operation: Operation, delayMs: number): void {
    if (this.queue.nowMs >= operation.deadlineMs) {
      this.giveUp(client, operation);
      return;
    }
    const attempt = operation.attempt;
    this.queue.after(delayMs, () => {
      if (client.operation === operation && operation.attempt === attempt) this.sendAttempt(client, operation);
    });
  }

  private handleReply(nodeId: number, request: ClientRequest, reply: ClientReply): void {
    const client = this.clients[request.clientId - 1]!;
    const operation = client.operation;
    if (operation === undefined || operation.sequence !== request.sequence) return; // an old operation's answer
    if (reply.kind === 'ok') {
      if (request.input.kind !== 'get') client.leaderGuess = nodeId;
      this.complete(client, operation, reply.output);
      return;
    }
    if (request.attempt !== operation.attempt) return; // a newer attempt is already out
    if (reply.kind === 'notLeader' && reply.leaderId !== 0 && reply.leaderId !== nodeId) {
      client.leaderGuess = reply.leaderId;
      this.retry(client, operation, 0);
    } else {
      client.leaderGuess = reply.kind === 'retry' ? nodeId : 0;
      this.retry(client, operation, RETRY_BACKOFF_MS);
    }
  }

  private complete(client: Client, operation: Operation, output: RegisterOutput): void {
    const record = operation.record;
    record.output = output;
    record.ret = toMicroseconds(this.queue.nowMs);
    this.stats.completed++;
    if (output.kind === 'get') client.lastSeen.set(record.key, output.value);
    if (record.input.kind !== 'get' && (output.kind === 'put' || (output.kind === 'cas' && output.ok))) client.lastSeen.set(record.key, record.input.value);
    if (record.call >= this.progressAfterHeal.sinceMs) {
      this.progressAfterHeal.operations++;
      if (record.input.kind !== 'get') this.progressAfterHeal.writes++;
    }
    client.giveUpsInRow = 0;
    this.trace.record(this.queue.nowMs, 0, 'client-ok', `c${client.id} #${record.id} ${record.key} ${describe(record.input)} -> ${describeOutput(output)}`);
    this.next(client);
  }

  private giveUp(client: Client, operation: Operation): void {
    this.stats.gaveUp++;
    this.trace.record(this.queue.nowMs, 0, 'client-give-up', `c${client.id} #${operation.record.id} ${operation.record.key} ${describe(operation.record.input)}`);
    client.giveUpsInRow++;
    this.next(client);
  }

  private next(client: Client): void {
    client.operation = undefined;
    const backoffMs = client.giveUpsInRow === 0 ? 0 : Math.min(GIVE_UP_BACKOFF_MS_MAX, 100 * 2 ** client.giveUpsInRow);
    this.queue.after(backoffMs + this.random.nextFloat() * this.options.thinkMsMax, () => this.startOperation(client));
  }
}

/**
 * History times are kept to the microsecond so failure traces stay readable. Rounding can only
 * turn "A returned before B was called" into a tie, which the checker treats as concurrent: it
 * may hide an ordering, never invent one.
 */
function toMicroseconds(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function describe(input: RegisterInput): string {
  if (input.kind === 'get') return 'get';
  if (input.kind === 'put') return `put ${input.value}`;
  return `cas ${String(input.expected)}=>${input.value}`;
}

function describeOutput(output: RegisterOutput): string {
  if (output.kind === 'get') return String(output.value);
  if (output.kind === 'cas') return output.ok ? 'ok' : 'failed';
  return 'ok';
}
