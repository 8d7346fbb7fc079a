/**
 * Clients of the simulated cluster. Each client runs one operation at a time (a read or a write
 * on one of a few keys; an `OperationSpec` says which operations there are: the register's for
 * the raft target, the KV store's for the node target) against whichever node it believes leads,
 * follows NOT_LEADER hints, retries on timeout with the same client id and sequence (so a write
 * applies once), and gives up after a deadline. Every operation goes into the history for the
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
export interface ClientRequest<I = RegisterInput> {
  readonly clientId: number;
  readonly sequence: number;
  readonly attempt: number;
  readonly key: string;
  readonly input: I;
}

/**
 * A node's answer: a result, a redirect (leaderId 0 = none known), "try again" (here), or
 * "unavailable" (this node could not serve it in time: try another one, as after silence).
 */
export type ClientReply<O = RegisterOutput> = { kind: 'ok'; output: O } | { kind: 'notLeader'; leaderId: number } | { kind: 'retry' } | { kind: 'unavailable' };

/** The operations clients run: how to draw one, and what a client learns from its answer. */
export interface OperationSpec<I, O> {
  /**
   * The input of `clientId`'s operation number `sequence` on `key`, drawn from `random`;
   * `lastSeen` is the value the client last saw there (null = absent), for compare-and-sets.
   */
  draw(random: SeededRandom, options: SimOptions, clientId: number, sequence: number, lastSeen: string | null): I;
  /** A read changes nothing: it never counts as a write, and an unanswered one leaves the history. */
  isRead(input: I): boolean;
  /** The value the key holds right after `input` answered `output` (null = absent), or undefined if the answer does not tell. */
  learn(input: I, output: O): string | null | undefined;
  /** Short texts for trace lines. */
  describe(input: I): string;
  describeOutput(output: O): string;
}

/** Operation counts, for the run summary. */
export interface WorkloadStats {
  started: number;
  completed: number;
  gaveUp: number;
  attempts: number;
}

type RecordedOp<I, O> = { -readonly [K in keyof HistoryOp<I, O>]: HistoryOp<I, O>[K] };

interface Operation<I, O> {
  readonly record: RecordedOp<I, O>;
  readonly sequence: number;
  readonly deadlineMs: number;
  attempt: number;
}

interface Client<I, O> {
  readonly id: number;
  leaderGuess: number;
  sequence: number;
  operation: Operation<I, O> | undefined;
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
export class Workload<I = RegisterInput, O = RegisterOutput> {
  readonly stats: WorkloadStats = { started: 0, completed: 0, gaveUp: 0, attempts: 0 };
  private readonly history: RecordedOp<I, O>[] = [];
  private readonly clients: Client<I, O>[];
  private readonly delay: LinkDelay;
  private lossless = false;
  private progressAfterHeal = { sinceMs: Number.POSITIVE_INFINITY, operations: 0, writes: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: SimOptions,
    private readonly trace: Trace,
    private readonly deliverRequest: (nodeId: number, request: ClientRequest<I>) => void,
    private readonly spec: OperationSpec<I, O>,
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
  reply(nodeId: number, request: ClientRequest<I>, reply: ClientReply<O>): void {
    if (!this.lossless && this.random.nextFloat() < this.options.clientLossRate) return;
    this.queue.after(this.delay.draw(), () => this.handleReply(nodeId, request, reply));
  }

  /** The history for the checker. Reads that never got an answer are left out: they changed nothing. */
  finalHistory(): HistoryOp<I, O>[] {
    return this.history.filter((op) => op.output !== undefined || !this.spec.isRead(op.input));
  }

  private startOperation(client: Client<I, O>): void {
    client.sequence++;
    const key = `k${this.random.nextInt(0, this.options.keys)}`;
    const input = this.spec.draw(this.random, this.options, client.id, client.sequence, client.lastSeen.get(key) ?? null);
    const record: RecordedOp<I, O> = { id: this.history.length, clientId: client.id, key, input, output: undefined, call: toMicroseconds(this.queue.nowMs), ret: Number.POSITIVE_INFINITY };
    this.history.push(record);
    this.stats.started++;
    client.operation = { record, sequence: client.sequence, deadlineMs: this.queue.nowMs + this.options.operationDeadlineMs, attempt: 0 };
    this.sendAttempt(client, client.operation);
  }

  private sendAttempt(client: Client<I, O>, operation: Operation<I, O>): void {
    operation.attempt++;
    this.stats.attempts++;
    const staleReadVariant = this.options.unsafe === 'stale-read' && this.spec.isRead(operation.record.input);
    const target = client.leaderGuess !== 0 && !staleReadVariant ? client.leaderGuess : this.random.nextInt(1, this.options.nodes + 1);
    const request: ClientRequest<I> = { clientId: client.id, sequence: operation.sequence, attempt: operation.attempt, key: operation.record.key, input: operation.record.input };
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

  private retry(client: Client<I, O>, operation: Operation<I, O>, delayMs: number): void {
    if (this.queue.nowMs >= operation.deadlineMs) {
      this.giveUp(client, operation);
      return;
    }
    const attempt = operation.attempt;
    this.queue.after(delayMs, () => {
      if (client.operation === operation && operation.attempt === attempt) this.sendAttempt(client, operation);
    });
  }

  private handleReply(nodeId: number, request: ClientRequest<I>, reply: ClientReply<O>): void {
    const client = this.clients[request.clientId - 1]!;
    const operation = client.operation;
    if (operation === undefined || operation.sequence !== request.sequence) return; // an old operation's answer
    if (reply.kind === 'ok') {
      if (!this.spec.isRead(request.input)) client.leaderGuess = nodeId;
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

  private complete(client: Client<I, O>, operation: Operation<I, O>, output: O): void {
    const record = operation.record;
    record.output = output;
    record.ret = toMicroseconds(this.queue.nowMs);
    this.stats.completed++;
    const learned = this.spec.learn(record.input, output);
    if (learned !== undefined) client.lastSeen.set(record.key, learned);
    if (record.call >= this.progressAfterHeal.sinceMs) {
      this.progressAfterHeal.operations++;
      if (!this.spec.isRead(record.input)) this.progressAfterHeal.writes++;
    }
    client.giveUpsInRow = 0;
    this.trace.record(this.queue.nowMs, 0, 'client-ok', `c${client.id} #${record.id} ${record.key} ${this.spec.describe(record.input)} -> ${this.spec.describeOutput(output)}`);
    this.next(client);
  }

  private giveUp(client: Client<I, O>, operation: Operation<I, O>): void {
    this.stats.gaveUp++;
    this.trace.record(this.queue.nowMs, 0, 'client-give-up', `c${client.id} #${operation.record.id} ${operation.record.key} ${this.spec.describe(operation.record.input)}`);
    client.giveUpsInRow++;
    this.next(client);
  }

  private next(client: Client<I, O>): void {
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
