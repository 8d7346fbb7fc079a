/**
 * The local health results stores (issue 7, item 3): what both share, and the in-memory store.
 *
 * Raw results stay on the node that ran them. Both stores (this memory one, for tests and the
 * simulator, and `LevelHealthResultsStore` in src/storage/health-results.ts) keep the same bounds
 * with the same code, `ResultLedger`:
 * - per instance (`perInstanceMax`, default 500) and in total (`totalMax`, default 100 000): an
 *   append that goes past a bound evicts the oldest results at once, so the newest are kept;
 * - by age (`maxAgeMs`, default 24 h): every `pruneEveryAppends` appends, up to `pruneBatchMax`
 *   results older than that are evicted (the rest at the next append), never a scan per append;
 *   queries never return an expired result, pruned yet or not.
 *
 * "Oldest" is by the result's `at` (then by arrival), which is the order queries use too.
 * The ledger keeps, per stored result, its instance, `at` and a sequence number (tens of bytes);
 * the memory store hangs the result itself on it, the LevelDB store only its key.
 */
import type { CheckResult, CheckStatus, CheckType, HealthResultsStore, InstanceRef, StoredResult } from './types.ts';
import { assert } from '../util/assert.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';

/** Default bounds (see the module doc). */
export const PER_INSTANCE_MAX_DEFAULT = 500;
export const TOTAL_MAX_DEFAULT = 100_000;
export const MAX_AGE_MS_DEFAULT = 24 * 60 * 60 * 1000;
export const PRUNE_EVERY_APPENDS_DEFAULT = 64;
export const PRUNE_BATCH_MAX_DEFAULT = 4096;
/** `recent()`'s `limit` may not exceed this. */
export const RECENT_LIMIT_MAX = 10_000;
/** One append may carry at most this many results (a round has one per check). */
export const APPEND_RESULTS_MAX = 256;
/** base, version, instanceId and check names longer than this are refused. */
export const NAME_CHARS_MAX = 256;
/** A longer `detail` is cut to this many characters (ending in `…`). */
export const DETAIL_CHARS_MAX = 1024;
/** `at` is epoch milliseconds below this (13 digits: until the year 2286). */
export const AT_LIMIT = 10 ** 13;

/** Every `CheckStatus`, in the order summaries list them. */
export const CHECK_STATUSES: readonly CheckStatus[] = ['success', 'failure', 'timeout', 'error'];
const CHECK_TYPES: readonly CheckType[] = ['instance', 'http', 'tcp', 'script'];

/** The bounds of a results store (all optional; defaults above). */
export interface ResultsBoundsOptions {
  readonly perInstanceMax?: number;
  readonly totalMax?: number;
  readonly maxAgeMs?: number;
  readonly pruneEveryAppends?: number;
  readonly pruneBatchMax?: number;
}

/** The bounds with defaults filled in (`resolveBounds`). */
export type ResultsBounds = Required<ResultsBoundsOptions>;

/** A validated `recent()` query. */
export interface ResultsQuery {
  readonly base?: string;
  readonly version?: string;
  readonly instanceId?: string;
  readonly sinceMs?: number;
  readonly limit: number;
}

/** Validates bounds (from untyped configuration) and fills in defaults; INVALID_ARGUMENT names the field. */
export function resolveBounds(options: ResultsBoundsOptions = {}): ResultsBounds {
  const bounds: ResultsBounds = {
    perInstanceMax: integerAtLeast(options.perInstanceMax ?? PER_INSTANCE_MAX_DEFAULT, 1, 'perInstanceMax'),
    totalMax: integerAtLeast(options.totalMax ?? TOTAL_MAX_DEFAULT, 1, 'totalMax'),
    maxAgeMs: integerAtLeast(options.maxAgeMs ?? MAX_AGE_MS_DEFAULT, 1, 'maxAgeMs'),
    pruneEveryAppends: integerAtLeast(options.pruneEveryAppends ?? PRUNE_EVERY_APPENDS_DEFAULT, 1, 'pruneEveryAppends'),
    pruneBatchMax: integerAtLeast(options.pruneBatchMax ?? PRUNE_BATCH_MAX_DEFAULT, 1, 'pruneBatchMax'),
  };
  if (bounds.perInstanceMax > bounds.totalMax) throw new InvalidArgumentError('perInstanceMax', `must not exceed totalMax (${bounds.totalMax})`);
  return bounds;
}

/** The identity of an instance's results: base, version and instance id (not the node). */
export function instanceKey(ref: Pick<InstanceRef, 'base' | 'version' | 'instanceId'>): string {
  return JSON.stringify([ref.base, ref.version, ref.instanceId]);
}

/** Throws INVALID_ARGUMENT naming `{field}.base` etc. unless `ref` is a well-formed InstanceRef. */
export function validateInstanceRef(ref: unknown, field: string): asserts ref is InstanceRef {
  if (typeof ref !== 'object' || ref === null) throw new InvalidArgumentError(field, 'must be an object');
  const r = ref as Partial<Record<keyof InstanceRef, unknown>>;
  name(r.base, `${field}.base`);
  name(r.version, `${field}.version`);
  name(r.instanceId, `${field}.instanceId`);
  if (typeof r.nodeId !== 'number' || !Number.isSafeInteger(r.nodeId) || r.nodeId < 0) throw new InvalidArgumentError(`${field}.nodeId`, 'must be an integer >= 0');
}

/**
 * Validates one append and returns the results as they are stored: only the known fields, `detail`
 * cut to `DETAIL_CHARS_MAX`, frozen. Throws INVALID_ARGUMENT naming the field (`results[2].status`).
 */
export function toStoredResults(ref: InstanceRef, results: readonly CheckResult[]): StoredResult[] {
  validateInstanceRef(ref, 'ref');
  if (!Array.isArray(results)) throw new InvalidArgumentError('results', 'must be an array');
  if (results.length > APPEND_RESULTS_MAX) throw new InvalidArgumentError('results', `must hold at most ${APPEND_RESULTS_MAX} results`);
  return results.map((result: unknown, i) => toStoredResult(ref, result, `results[${i}]`));
}

/** A stored value read back, or undefined when it is not a well-formed StoredResult. */
export function parseStoredResult(value: unknown): StoredResult | undefined {
  try {
    validateInstanceRef(value, 'value');
    return toStoredResult(value, value, 'value');
  } catch {
    return undefined;
  }
}

/** Validates a `recent()` query from untyped input; INVALID_ARGUMENT names the field. */
export function validateQuery(query: unknown): ResultsQuery {
  if (typeof query !== 'object' || query === null) throw new InvalidArgumentError('query', 'must be an object');
  const q = query as Partial<Record<keyof ResultsQuery, unknown>>;
  const limit = q.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > RECENT_LIMIT_MAX) {
    throw new InvalidArgumentError('limit', `is required: an integer from 1 to ${RECENT_LIMIT_MAX}`);
  }
  for (const key of ['base', 'version', 'instanceId'] as const) {
    if (q[key] !== undefined) name(q[key], key);
  }
  if (q.sinceMs !== undefined && (typeof q.sinceMs !== 'number' || Number.isNaN(q.sinceMs))) throw new InvalidArgumentError('sinceMs', 'must be a number of epoch milliseconds');
  return query as ResultsQuery;
}

function toStoredResult(ref: InstanceRef, result: unknown, field: string): StoredResult {
  if (typeof result !== 'object' || result === null) throw new InvalidArgumentError(field, 'must be an object');
  const r = result as Partial<Record<keyof CheckResult, unknown>>;
  name(r.check, `${field}.check`);
  if (!CHECK_TYPES.includes(r.type as CheckType)) throw new InvalidArgumentError(`${field}.type`, `must be one of ${CHECK_TYPES.join(', ')}`);
  if (!CHECK_STATUSES.includes(r.status as CheckStatus)) throw new InvalidArgumentError(`${field}.status`, `must be one of ${CHECK_STATUSES.join(', ')}`);
  if (typeof r.at !== 'number' || !Number.isFinite(r.at) || r.at < 0 || r.at >= AT_LIMIT) throw new InvalidArgumentError(`${field}.at`, 'must be epoch milliseconds (>= 0, 13 digits at most)');
  if (typeof r.durationMs !== 'number' || !Number.isFinite(r.durationMs) || r.durationMs < 0) throw new InvalidArgumentError(`${field}.durationMs`, 'must be a finite number >= 0');
  if (typeof r.attempts !== 'number' || !Number.isSafeInteger(r.attempts) || r.attempts < 0) throw new InvalidArgumentError(`${field}.attempts`, 'must be an integer >= 0');
  if (typeof r.detail !== 'string') throw new InvalidArgumentError(`${field}.detail`, 'must be a string');
  const detail = r.detail.length <= DETAIL_CHARS_MAX ? r.detail : `${r.detail.slice(0, DETAIL_CHARS_MAX - 1)}…`;
  return Object.freeze({
    base: ref.base,
    version: ref.version,
    instanceId: ref.instanceId,
    nodeId: ref.nodeId,
    check: r.check as string,
    type: r.type as CheckType,
    status: r.status as CheckStatus,
    at: Math.floor(r.at),
    durationMs: r.durationMs,
    attempts: r.attempts,
    detail,
  });
}

function name(value: unknown, field: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > NAME_CHARS_MAX) {
    throw new InvalidArgumentError(field, `must be a non-empty string of at most ${NAME_CHARS_MAX} characters`);
  }
}

function integerAtLeast(value: unknown, min: number, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new InvalidArgumentError(field, `must be an integer >= ${min}`);
  return value;
}

/** The results of one instance, oldest first. */
export interface InstanceSlot<P> {
  readonly key: string;
  readonly base: string;
  readonly version: string;
  readonly instanceId: string;
  /** Sorted by (at, seq); live entries are `entries[head..]`. */
  entries: LedgerEntry<P>[];
  head: number;
}

/** One stored result, as the ledger knows it. */
export interface LedgerEntry<P> {
  readonly slot: InstanceSlot<P>;
  readonly at: number;
  readonly seq: number;
  readonly payload: P;
  live: boolean;
}

/** What an `add` did: the entries it created (with the index of their item) and those it evicted. */
export interface LedgerChange<P> {
  /** New entries that survived this call, with the index of the item they came from. */
  readonly added: { readonly entry: LedgerEntry<P>; readonly index: number }[];
  /** Entries that existed before this call and are gone now. */
  readonly evicted: LedgerEntry<P>[];
}

/**
 * Which results a store holds, in order, and which to evict: the bounding and query logic of
 * both stores. Each entry carries a payload `P` (the result itself in memory; nothing for LevelDB,
 * whose key is derived from the entry). Synchronous and deterministic: time comes in as arguments.
 */
export class ResultLedger<P> {
  private readonly slots = new Map<string, InstanceSlot<P>>();
  /** A min-heap on (at, seq) of every entry; evicted entries stay until popped or rebuilt away. */
  private heap: LedgerEntry<P>[] = [];
  private liveCount = 0;
  private nextSeq = 1;
  private appendsSincePrune = 0;
  private pruneDue = false;

  constructor(readonly bounds: ResultsBounds) {}

  /** Stored results. */
  size(): number {
    return this.liveCount;
  }

  /** Instances with at least one stored result. */
  instances(): number {
    return this.slots.size;
  }

  /** The sequence number the next new entry gets. */
  peekSeq(): number {
    return this.nextSeq;
  }

  /**
   * Adds one append's items for `ref` (each `at` already an integer), then enforces the count
   * bounds and, when due, prunes by age against `nowMs`.
   */
  add(ref: Pick<InstanceRef, 'base' | 'version' | 'instanceId'>, items: readonly { readonly at: number; readonly payload: P }[], nowMs: number): LedgerChange<P> {
    const fresh = items.map((item, index) => ({ entry: this.insert(ref, item.at, this.nextSeq++, item.payload), index }));
    const evicted = this.enforceCounts(this.slotOf(ref));
    if (++this.appendsSincePrune >= this.bounds.pruneEveryAppends || this.pruneDue) {
      this.appendsSincePrune = 0;
      evicted.push(...this.pruneAge(nowMs));
    }
    const freshSet = new Set(fresh.map((f) => f.entry));
    return { added: fresh.filter((f) => f.entry.live), evicted: evicted.filter((e) => !freshSet.has(e)) };
  }

  /**
   * Restores an entry read back from disk with its own sequence number (no bounds enforced; call
   * `enforceAll` after the last one). Later `add`s number their entries after the highest seen.
   */
  load(ref: Pick<InstanceRef, 'base' | 'version' | 'instanceId'>, at: number, seq: number, payload: P): LedgerEntry<P> {
    assert(Number.isSafeInteger(seq) && seq >= 0, 'ledger seq must be a safe integer');
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    return this.insert(ref, at, seq, payload);
  }

  /** Enforces every bound (after loading, or with lower bounds than the data was written with). */
  enforceAll(nowMs: number): LedgerEntry<P>[] {
    const evicted: LedgerEntry<P>[] = [];
    for (const slot of [...this.slots.values()]) evicted.push(...this.trimSlot(slot));
    evicted.push(...this.trimTotal());
    for (;;) {
      const batch = this.pruneAge(nowMs);
      evicted.push(...batch);
      if (!this.pruneDue) break;
    }
    return evicted;
  }

  /** Forgets entries (an append whose write failed); idempotent. */
  remove(entries: readonly LedgerEntry<P>[]): void {
    for (const entry of entries) {
      if (!entry.live) continue;
      const { slot } = entry;
      const index = slot.entries.indexOf(entry, slot.head);
      assert(index >= 0, 'a live ledger entry is in its slot');
      slot.entries.splice(index, 1);
      this.kill(entry);
      this.compactSlot(slot);
    }
    this.maybeRebuildHeap();
  }

  /**
   * The entries matching `query`, newest first (by at, then seq), at most `limit`, none older
   * than `nowMs - maxAgeMs` or than `sinceMs`.
   */
  select(query: ResultsQuery, nowMs: number): LedgerEntry<P>[] {
    const sinceMs = Math.max(query.sinceMs ?? Number.NEGATIVE_INFINITY, nowMs - this.bounds.maxAgeMs);
    const found: LedgerEntry<P>[] = [];
    for (const slot of this.slots.values()) {
      if (query.base !== undefined && slot.base !== query.base) continue;
      if (query.version !== undefined && slot.version !== query.version) continue;
      if (query.instanceId !== undefined && slot.instanceId !== query.instanceId) continue;
      // Newest first within the slot, at most `limit` of them: no slot can contribute more.
      for (let i = slot.entries.length - 1, taken = 0; i >= slot.head && taken < query.limit; i--, taken++) {
        const entry = slot.entries[i]!;
        if (entry.at < sinceMs) break;
        found.push(entry);
      }
    }
    found.sort((a, b) => compare(b, a));
    return found.length > query.limit ? found.slice(0, query.limit) : found;
  }

  private slotOf(ref: Pick<InstanceRef, 'base' | 'version' | 'instanceId'>): InstanceSlot<P> {
    const key = instanceKey(ref);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { key, base: ref.base, version: ref.version, instanceId: ref.instanceId, entries: [], head: 0 };
      this.slots.set(key, slot);
    }
    return slot;
  }

  private insert(ref: Pick<InstanceRef, 'base' | 'version' | 'instanceId'>, at: number, seq: number, payload: P): LedgerEntry<P> {
    const slot = this.slotOf(ref);
    const entry: LedgerEntry<P> = { slot, at, seq, payload, live: true };
    // Rounds usually arrive in time order, so this is an append; an out-of-order one is placed.
    let index = slot.entries.length;
    while (index > slot.head && compare(slot.entries[index - 1]!, entry) > 0) index--;
    if (index === slot.entries.length) slot.entries.push(entry);
    else slot.entries.splice(index, 0, entry);
    this.heapPush(entry);
    this.liveCount++;
    return entry;
  }

  private enforceCounts(slot: InstanceSlot<P>): LedgerEntry<P>[] {
    return [...this.trimSlot(slot), ...this.trimTotal()];
  }

  private trimSlot(slot: InstanceSlot<P>): LedgerEntry<P>[] {
    const evicted: LedgerEntry<P>[] = [];
    while (slot.entries.length - slot.head > this.bounds.perInstanceMax) evicted.push(this.evictHead(slot));
    this.maybeRebuildHeap();
    return evicted;
  }

  private trimTotal(): LedgerEntry<P>[] {
    const evicted: LedgerEntry<P>[] = [];
    while (this.liveCount > this.bounds.totalMax) {
      const oldest = this.popOldestLive();
      assert(oldest !== undefined, 'the heap holds every live entry');
      const head = this.evictHead(oldest.slot);
      assert(head === oldest, 'the global oldest entry is the head of its slot');
      evicted.push(head);
    }
    return evicted;
  }

  /** Evicts up to `pruneBatchMax` expired entries; sets `pruneDue` when more remain. */
  private pruneAge(nowMs: number): LedgerEntry<P>[] {
    const cutoffMs = nowMs - this.bounds.maxAgeMs;
    const evicted: LedgerEntry<P>[] = [];
    this.pruneDue = false;
    while (evicted.length < this.bounds.pruneBatchMax) {
      const oldest = this.peekOldestLive();
      if (oldest === undefined || oldest.at >= cutoffMs) return evicted;
      this.heapPop();
      const head = this.evictHead(oldest.slot);
      assert(head === oldest, 'the global oldest entry is the head of its slot');
      evicted.push(head);
    }
    const next = this.peekOldestLive();
    this.pruneDue = next !== undefined && next.at < cutoffMs;
    return evicted;
  }

  /** The global oldest is always the oldest of its own slot, so eviction is from a slot's head. */
  private evictHead(slot: InstanceSlot<P>): LedgerEntry<P> {
    const entry = slot.entries[slot.head];
    assert(entry !== undefined && entry.live, 'an evicted slot has a live head');
    slot.head++;
    this.kill(entry);
    this.compactSlot(slot);
    return entry;
  }

  private kill(entry: LedgerEntry<P>): void {
    entry.live = false;
    this.liveCount--;
  }

  private compactSlot(slot: InstanceSlot<P>): void {
    if (slot.head === slot.entries.length) {
      this.slots.delete(slot.key);
      slot.entries = [];
      slot.head = 0;
    } else if (slot.head > 64 && slot.head * 2 > slot.entries.length) {
      slot.entries = slot.entries.slice(slot.head);
      slot.head = 0;
    }
  }

  private peekOldestLive(): LedgerEntry<P> | undefined {
    while (this.heap.length > 0 && !this.heap[0]!.live) this.heapPop();
    return this.heap[0];
  }

  private popOldestLive(): LedgerEntry<P> | undefined {
    const oldest = this.peekOldestLive();
    if (oldest !== undefined) this.heapPop();
    return oldest;
  }

  /** Dead entries left in the heap by slot trims are bounded: past twice the live ones, rebuild. */
  private maybeRebuildHeap(): void {
    if (this.heap.length <= 2 * this.liveCount + 1024) return;
    this.heap = this.heap.filter((e) => e.live);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private heapPush(entry: LedgerEntry<P>): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compare(heap[parent]!, heap[i]!) <= 0) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  private heapPop(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.siftDown(0);
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && compare(heap[left]!, heap[smallest]!) < 0) smallest = left;
      if (right < heap.length && compare(heap[right]!, heap[smallest]!) < 0) smallest = right;
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
      i = smallest;
    }
  }
}

function compare(a: { at: number; seq: number }, b: { at: number; seq: number }): number {
  return a.at - b.at || a.seq - b.seq;
}

/** Options of the memory store. */
export interface MemoryHealthResultsStoreOptions extends ResultsBoundsOptions {
  /** Epoch milliseconds, for the age bound. */
  readonly wallClockMs: () => number;
}

/**
 * `HealthResultsStore` in memory, with the LevelDB store's bounds and query semantics (tests and
 * the simulator). After `close()` every call rejects with HEALTH_STORE_CLOSED.
 */
export class MemoryHealthResultsStore implements HealthResultsStore {
  private readonly ledger: ResultLedger<StoredResult>;
  private readonly wallClockMs: () => number;
  private closed = false;

  /** Throws INVALID_ARGUMENT naming a bad option. */
  constructor(options: MemoryHealthResultsStoreOptions) {
    if (typeof options?.wallClockMs !== 'function') throw new InvalidArgumentError('wallClockMs', 'must be a function');
    this.wallClockMs = options.wallClockMs;
    this.ledger = new ResultLedger(resolveBounds(options));
  }

  /** Rejects with INVALID_ARGUMENT naming the bad field; stores nothing then. */
  async append(ref: InstanceRef, results: readonly CheckResult[]): Promise<void> {
    this.checkOpen();
    const stored = toStoredResults(ref, results);
    if (stored.length === 0) return;
    this.ledger.add(ref, stored.map((r) => ({ at: r.at, payload: r })), this.wallClockMs());
  }

  async recent(query: ResultsQuery): Promise<StoredResult[]> {
    this.checkOpen();
    return this.ledger.select(validateQuery(query), this.wallClockMs()).map((entry) => entry.payload);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Stored results and instances. */
  stats(): { readonly total: number; readonly instances: number } {
    return { total: this.ledger.size(), instances: this.ledger.instances() };
  }

  private checkOpen(): void {
    if (this.closed) throw new HealthStoreClosedError();
  }
}

/** A results store was used after `close()`. */
export class HealthStoreClosedError extends CutoverError {
  override readonly name = 'HealthStoreClosedError';
  constructor() {
    super('HEALTH_STORE_CLOSED', 'the health results store is closed');
  }
}
