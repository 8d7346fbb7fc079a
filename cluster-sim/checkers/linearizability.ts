/**
 * A linearizability checker for the client histories the simulator records.
 *
 * The search is Wing & Gong's backtracking with Lowe's memoisation (G. Lowe, "Testing for
 * linearizability", 2017), laid out like Porcupine's `checkSingle`: the call and return events of
 * one key sit in a time-ordered doubly linked list; linearizing an op "lifts" its two events out of
 * the list and backtracking puts them back (dancing links). A branch dies when the search reaches a
 * return event: that op's deadline passed before any valid order could place it. A cache of
 * (set of linearized ops, model state) prunes branches that reach a configuration already explored.
 *
 * Histories are split by key first (linearizability is compositional), so the cost is exponential
 * only in the concurrency within one key, and each key gets its own step budget.
 */
import { assert } from '../../src/util/assert.ts';
import { InvalidArgumentError } from '../../src/util/errors.ts';

/** One completed or pending client operation on one key. */
export interface HistoryOp<I, O> {
  /** Unique per history. */
  readonly id: number;
  readonly clientId: number;
  /** Histories are partitioned per key: ops on different keys are independent. */
  readonly key: string;
  readonly input: I;
  /**
   * `undefined` = no reply seen (timeout, crash): the op may have taken effect at any time after
   * `call`, or never. The checker treats such an op as pending whatever its `ret` says.
   */
  readonly output: O | undefined;
  /** Invocation time on any monotone clock; ties are allowed. Finite. */
  readonly call: number;
  /** Return time, `>= call`; `Number.POSITIVE_INFINITY` when `output` is undefined. */
  readonly ret: number;
}

/** A sequential specification. State must be treated as immutable: the search keeps old states. */
export interface Model<S, I, O> {
  init(): S;
  /**
   * Apply input to state. When output is undefined (unknown), any output is acceptable, so `ok`
   * must then be true. Must be pure: the search calls it many times on the same state.
   */
  step(state: S, input: I, output: O | undefined): { ok: boolean; state: S };
  /** A canonical string for memoisation (equal states => equal strings). */
  key(state: S): string;
  /** Describes the op's input and output for failure traces; the checker adds id, client and times. */
  describeOp?(op: HistoryOp<I, O>): string;
}

/** The verdict on a whole history: the first violating key wins over any key that ran out of budget. */
export type LinearizabilityResult =
  | { ok: true; keysChecked: number; opsChecked: number }
  /** `trace`: the failing key's ops around the point where the search got stuck, ordered by call. */
  | { ok: false; key: string; reason: string; trace: string[] }
  /** The search budget for `key` ran out before a verdict. */
  | { ok: 'unknown'; key: string; reason: string };

const stepsPerKeyMaxDefault = 2_000_000;
/** Trace window around the op the search got stuck on, so a failure on a long history stays readable. */
const traceOpsBeforeMax = 8;
const traceOpsAfterMax = 4;
const NIL = -1;

/**
 * Checks that `history` is linearizable with respect to `model`, key by key.
 *
 * Real-time order: op A precedes op B iff `A.ret < B.call` strictly; equal timestamps count as
 * concurrent. That is the permissive choice: a clock with ties cannot tell which came first, so
 * the checker must not invent an order the history does not prove.
 *
 * Throws `InvalidArgumentError` (code `INVALID_ARGUMENT`) for a bad `maxStepsPerKey` and
 * `AssertionError` for a malformed history (duplicate ids, `call > ret`, a reply at infinity).
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly HistoryOp<I, O>[],
  options?: { maxStepsPerKey?: number },
): LinearizabilityResult {
  const stepsMax = options?.maxStepsPerKey ?? stepsPerKeyMaxDefault;
  if (!Number.isSafeInteger(stepsMax) || stepsMax <= 0) {
    throw new InvalidArgumentError('maxStepsPerKey', `must be a positive integer, got ${stepsMax}`);
  }
  assertWellFormed(history);
  const partitions = partitionByKey(history);
  let budgetExhausted: LinearizabilityResult | undefined;
  for (const [key, ops] of partitions) {
    const outcome = searchKey(model, ops, stepsMax);
    if (outcome.kind === 'violation') return describeViolation(model, key, ops, outcome);
    if (outcome.kind === 'budget' && budgetExhausted === undefined) {
      // Keep going: a later key may still give a definite violation, which is worth more.
      budgetExhausted = {
        ok: 'unknown',
        key,
        reason: `key ${JSON.stringify(key)}: search budget of ${stepsMax} steps exhausted on ${ops.length} ops`,
      };
    }
  }
  return budgetExhausted ?? { ok: true, keysChecked: partitions.size, opsChecked: history.length };
}

/** Rejects histories the recorder could only produce through a bug. */
function assertWellFormed<I, O>(history: readonly HistoryOp<I, O>[]): void {
  const ids = new Set<number>();
  for (const op of history) {
    assert(!ids.has(op.id), `history: duplicate op id ${op.id}`);
    ids.add(op.id);
    assert(Number.isFinite(op.call), `history: op #${op.id} has a non-finite call time ${op.call}`);
    assert(op.call <= op.ret, `history: op #${op.id} returns (${op.ret}) before its call (${op.call})`);
    assert(op.ret !== Number.POSITIVE_INFINITY || op.output === undefined, `history: op #${op.id} has a reply but no return time`);
  }
}

/** Groups ops by key, keeping history order within a key and first-appearance order across keys. */
function partitionByKey<I, O>(history: readonly HistoryOp<I, O>[]): Map<string, HistoryOp<I, O>[]> {
  const partitions = new Map<string, HistoryOp<I, O>[]>();
  for (const op of history) {
    const ops = partitions.get(op.key);
    if (ops === undefined) partitions.set(op.key, [op]);
    else ops.push(op);
  }
  return partitions;
}

/** The effective return time: an op without a reply may take effect arbitrarily late, or never. */
function retEffective<I, O>(op: HistoryOp<I, O>): number {
  return op.output === undefined ? Number.POSITIVE_INFINITY : op.ret;
}

/**
 * The call and return events of one key's ops in a doubly linked list, in time order, stored in
 * typed arrays indexed by event position. Event `head` is a sentinel before the first event.
 * Lifting removes an op's two events but leaves their own links intact, so unlifting in reverse
 * order of lifting restores the list exactly (Knuth's dancing links).
 */
class EventList {
  readonly head: number;
  private readonly nextOf: Int32Array;
  private readonly prevOf: Int32Array;
  /** For a call event, the position of its return event; NIL for a return event. */
  private readonly matchOf: Int32Array;
  /** The op (index into the key's op array) each event belongs to. */
  private readonly opIndexOf: Int32Array;

  constructor(calls: readonly number[], rets: readonly number[]) {
    assert(rets.length === calls.length, 'EventList: calls and returns differ in length');
    const events = sortedEvents(calls, rets);
    this.head = events.length;
    this.nextOf = new Int32Array(events.length + 1);
    this.prevOf = new Int32Array(events.length + 1);
    this.matchOf = new Int32Array(events.length).fill(NIL);
    this.opIndexOf = new Int32Array(events.length);
    const callPosition = new Int32Array(calls.length);
    for (let position = 0; position < events.length; position++) {
      const event = events[position];
      assert(event !== undefined, 'EventList: hole in the event array');
      this.opIndexOf[position] = event.opIndex;
      if (event.isCall) callPosition[event.opIndex] = position;
      else this.matchOf[callPosition[event.opIndex] ?? NIL] = position;
      this.prevOf[position] = position === 0 ? this.head : position - 1;
      this.nextOf[position] = position === events.length - 1 ? NIL : position + 1;
    }
    this.nextOf[this.head] = events.length === 0 ? NIL : 0;
  }

  first(): number {
    return this.nextOf[this.head] ?? NIL;
  }
  next(position: number): number {
    return this.nextOf[position] ?? NIL;
  }
  isCall(position: number): boolean {
    return this.matchOf[position] !== NIL;
  }
  opIndex(position: number): number {
    return this.opIndexOf[position] ?? NIL;
  }

  /** Removes call event `call` and its return event. A call is always followed by its return. */
  lift(call: number): void {
    const ret = this.matchOf[call] ?? NIL;
    assert(ret !== NIL, `EventList.lift: event ${call} is not a call`);
    this.unlink(call);
    this.unlink(ret);
  }

  /** Undoes the most recent `lift(call)` that has not been undone yet. */
  unlift(call: number): void {
    const ret = this.matchOf[call] ?? NIL;
    assert(ret !== NIL, `EventList.unlift: event ${call} is not a call`);
    this.relink(ret);
    this.relink(call);
  }

  private unlink(position: number): void {
    const prev = this.prevOf[position] ?? NIL;
    const next = this.nextOf[position] ?? NIL;
    this.nextOf[prev] = next;
    if (next !== NIL) this.prevOf[next] = prev;
  }

  private relink(position: number): void {
    const prev = this.prevOf[position] ?? NIL;
    const next = this.nextOf[position] ?? NIL;
    this.nextOf[prev] = position;
    if (next !== NIL) this.prevOf[next] = position;
  }
}

/**
 * Events ordered by time. At equal times calls come before returns, so an op returning at t and
 * one called at t overlap in the list, i.e. they are concurrent (see `checkLinearizable`). An op's
 * own call always precedes its own return, since `call <= ret`. The op index breaks remaining ties
 * so the search order, and hence any reported trace, is deterministic.
 */
function sortedEvents(calls: readonly number[], rets: readonly number[]): { opIndex: number; isCall: boolean; time: number }[] {
  const events: { opIndex: number; isCall: boolean; time: number }[] = [];
  calls.forEach((time, opIndex) => events.push({ opIndex, isCall: true, time }));
  rets.forEach((time, opIndex) => events.push({ opIndex, isCall: false, time }));
  return events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.opIndex - b.opIndex;
  });
}

/** A fixed-size set of op indices; `key()` is a canonical string of the whole set, for the cache. */
class Bitset {
  private readonly words: Uint32Array;
  private readonly halves: Uint16Array;

  constructor(size: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
    // A 16-bit view of the same memory: each half-word becomes one UTF-16 code unit of the key.
    this.halves = new Uint16Array(this.words.buffer);
  }

  set(index: number): void {
    this.words[index >>> 5] = (this.words[index >>> 5] ?? 0) | (1 << (index & 31));
  }
  clear(index: number): void {
    this.words[index >>> 5] = (this.words[index >>> 5] ?? 0) & ~(1 << (index & 31));
  }

  /** Always `2 * words` code units long, so keys of one key's search can be concatenated unambiguously. */
  key(): string {
    // Chunked because String.fromCharCode takes its code units as arguments, and argument count is bounded.
    const chunkMax = 8192;
    let key = '';
    for (let start = 0; start < this.halves.length; start += chunkMax) {
      key += String.fromCharCode(...this.halves.subarray(start, start + chunkMax));
    }
    return key;
  }
}

/** How the search of one key ended. On a violation, where it got furthest before getting stuck. */
type KeyOutcome = { kind: 'ok' } | { kind: 'budget' } | ({ kind: 'violation' } & Stuck);
/** `blockedOp` returned before it could be linearized after the ops of `prefix`, in that order. */
interface Stuck {
  blockedOp: number;
  prefix: number[];
}

/**
 * The backtracking search over one key's ops (op indices are positions in `ops`).
 *
 * Pending ops (no reply) get two shortcuts, both sound because such an op precedes nothing in
 * real time and accepts any output, so it can always be linearized last:
 * - the search succeeds once every completed op is linearized: the pending rest go at the end;
 * - a pending op that would leave the state unchanged here (a read, a cas that would not swap) is
 *   not linearized here, since putting it at the end instead is equivalent. Without this, every
 *   pending read would double the configurations of a failing history.
 * Each pending write concurrent with the point where a failing history gets stuck still doubles
 * the search, so many of those end in `budget` rather than `violation`.
 */
function searchKey<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], stepsMax: number): KeyOutcome {
  const events = new EventList(ops.map((op) => op.call), ops.map(retEffective));
  const linearized = new Bitset(ops.length);
  const explored = new Set<string>();
  const stack: { call: number; stateBefore: S; stateKeyBefore: string }[] = [];
  let state = model.init();
  let stateKey = model.key(state);
  let completedRemaining = ops.filter((op) => op.output !== undefined).length;
  let position = events.first();
  let stuck: Stuck | undefined;
  for (let steps = 0; completedRemaining > 0; steps++) {
    if (steps >= stepsMax) return { kind: 'budget' };
    // A completed op's (finite) return is still in the list, so the scan cannot run off its end.
    assert(position !== NIL, 'searchKey: ran off the end of the event list');
    const opIndex = events.opIndex(position);
    const op = ops[opIndex];
    assert(op !== undefined, `searchKey: event ${position} has no op`);
    if (events.isCall(position)) {
      const result = model.step(state, op.input, op.output);
      const resultKey = result.ok ? model.key(result.state) : stateKey;
      const pointless = op.output === undefined && resultKey === stateKey;
      if (result.ok && !pointless && markIfNew(explored, linearized, opIndex, resultKey)) {
        stack.push({ call: position, stateBefore: state, stateKeyBefore: stateKey });
        [state, stateKey] = [result.state, resultKey];
        if (op.output !== undefined) completedRemaining--;
        events.lift(position);
        position = events.first();
      } else {
        position = events.next(position);
      }
      continue;
    }
    // A return event: this op had to be linearized by now, so this branch is dead. Returns sort
    // by time and pending ones are at infinity, so this is a completed op. Remember the deepest
    // dead end: it is the most useful place to show a human.
    assert(op.output !== undefined, `searchKey: reached the return of pending op #${op.id}`);
    if (stuck === undefined || stack.length > stuck.prefix.length) {
      stuck = { blockedOp: opIndex, prefix: stack.map((frame) => events.opIndex(frame.call)) };
    }
    const frame = stack.pop();
    if (frame === undefined) return { kind: 'violation', ...stuck };
    [state, stateKey] = [frame.stateBefore, frame.stateKeyBefore];
    const undone = events.opIndex(frame.call);
    if (ops[undone]?.output !== undefined) completedRemaining++;
    linearized.clear(undone);
    events.unlift(frame.call);
    position = events.next(frame.call);
  }
  return { kind: 'ok' };
}

/**
 * Adds `opIndex` to `linearized` and records (linearized, state) as explored. Returns false, with
 * `linearized` unchanged, when that configuration was explored already: whatever can follow it
 * has been tried (Lowe's memoisation).
 */
function markIfNew(explored: Set<string>, linearized: Bitset, opIndex: number, stateKey: string): boolean {
  linearized.set(opIndex);
  // The bitset key has a fixed length for this search, so plain concatenation cannot collide.
  const configuration = linearized.key() + stateKey;
  if (explored.has(configuration)) {
    linearized.clear(opIndex);
    return false;
  }
  explored.add(configuration);
  return true;
}

/** Builds the failure report: a one-line reason and a window of ops around the stuck point. */
function describeViolation<S, I, O>(
  model: Model<S, I, O>,
  key: string,
  ops: readonly HistoryOp<I, O>[],
  stuck: Stuck,
): LinearizabilityResult {
  const blocked = ops[stuck.blockedOp];
  assert(blocked !== undefined, 'describeViolation: blocked op out of range');
  const reason =
    `key ${JSON.stringify(key)}: no linearization of its ${ops.length} ops; ` +
    `op #${blocked.id} (client ${blocked.clientId}) returned before any valid order could include it ` +
    `(longest linearizable prefix: ${stuck.prefix.length} ops)`;
  return { ok: false, key, reason, trace: traceAround(model, ops, stuck) };
}

/** The ops just before and concurrent with the blocked op, ordered by call, annotated with the search's best prefix. */
function traceAround<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], stuck: Stuck): string[] {
  const sorted = [...ops].sort(compareByCall);
  const blocked = ops[stuck.blockedOp];
  assert(blocked !== undefined, 'traceAround: blocked op out of range');
  const blockedAt = sorted.indexOf(blocked);
  const start = Math.max(0, blockedAt - traceOpsBeforeMax);
  // After the blocked op, only ops called before it returned can matter to why it got stuck.
  let end = blockedAt + 1;
  while (end < sorted.length && end - blockedAt <= traceOpsAfterMax && (sorted[end]?.call ?? Infinity) <= retEffective(blocked)) end++;
  const prefixRank = new Map(stuck.prefix.map((opIndex, rank) => [ops[opIndex], rank + 1]));
  const lines = sorted.slice(start, end).map((op) => {
    const rank = prefixRank.get(op);
    const note = op === blocked ? '<- stuck: returned before it could be linearized' : rank === undefined ? '(not linearized)' : `(linearized ${rank})`;
    return `${formatOp(model, op)}  ${note}`;
  });
  if (start > 0) lines.unshift(`... ${start} earlier ops`);
  if (end < sorted.length) lines.push(`... ${sorted.length - end} later ops`);
  return lines;
}

function compareByCall<I, O>(a: HistoryOp<I, O>, b: HistoryOp<I, O>): number {
  return a.call - b.call || a.id - b.id;
}

/** One trace line: who, when, and what (the model's description when it has one). */
function formatOp<S, I, O>(model: Model<S, I, O>, op: HistoryOp<I, O>): string {
  const what = model.describeOp?.(op) ?? `${JSON.stringify(op.input)} -> ${op.output === undefined ? '(no reply)' : JSON.stringify(op.output)}`;
  const ret = op.ret === Number.POSITIVE_INFINITY ? 'inf' : String(op.ret);
  return `#${op.id} client ${op.clientId} [${op.call}, ${ret}] ${what}`;
}
