import { assert } from '../util/assert.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { SortedKeys } from './sorted-keys.ts';
import type { Command, CommandResult, Compare, KeyValue, Operation, OperationResult, Request, WatchEvent } from './types.ts';
import { DEFAULT_KV_LIMITS, validateRequest } from './validate.ts';

/** A watch asked for events the bounded history no longer holds. */
export class WatchCompactedError extends CutoverError {
  override readonly name = 'WatchCompactedError';
  readonly compactedRevision: number;
  constructor(fromRevision: number, compactedRevision: number) {
    super('WATCH_COMPACTED', `revision ${fromRevision} is compacted; watch from ${compactedRevision + 1} or later, or re-read and watch from now`);
    this.compactedRevision = compactedRevision;
  }
}

/** The outcome of applying one committed request. Failures are deterministic on every node. */
export type ApplyOutcome = { readonly ok: true; readonly result: CommandResult } | { readonly ok: false; readonly code: string; readonly message: string };

export interface KvStoreOptions {
  /** Events kept for watches that start in the past; older revisions are compacted. */
  readonly historyEventsMax?: number;
  /** Clients whose last request is remembered for dedup (least recently used are forgotten). */
  readonly dedupClientsMax?: number;
}

export type WatchListener = (events: readonly WatchEvent[]) => void;

interface Watcher {
  readonly prefix: string;
  readonly listener: WatchListener;
}

interface ClientRecord {
  readonly sequence: number;
  readonly outcome: ApplyOutcome;
}

interface SnapshotImage {
  readonly version: 1;
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  readonly clients: readonly [number, ClientRecord][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The replicated KV state machine (pure: applying the same requests in the same order gives the
 * same state and results on every node). One revision per write request; each key keeps its
 * create revision, mod revision and version; prefix watches see put/delete events with the
 * previous value, from a bounded history.
 */
export class KvStore {
  private readonly kvs = new Map<string, KeyValue>();
  private readonly keys = new SortedKeys();
  private rev = 0;
  private compacted = 0;
  private history: WatchEvent[] = [];
  private readonly clients = new Map<number, ClientRecord>();
  private readonly watchers = new Set<Watcher>();
  private readonly historyEventsMax: number;
  private readonly dedupClientsMax: number;

  constructor(options: KvStoreOptions = {}) {
    this.historyEventsMax = options.historyEventsMax ?? 10_000;
    this.dedupClientsMax = options.dedupClientsMax ?? 10_000;
    if (!Number.isSafeInteger(this.historyEventsMax) || this.historyEventsMax < 1) throw new InvalidArgumentError('historyEventsMax', 'must be a positive integer');
    if (!Number.isSafeInteger(this.dedupClientsMax) || this.dedupClientsMax < 1) throw new InvalidArgumentError('dedupClientsMax', 'must be a positive integer');
  }

  /** The revision of the last write. */
  revision(): number {
    return this.rev;
  }

  /** Events at or below this revision may be gone from the history. */
  compactedRevision(): number {
    return this.compacted;
  }

  get(key: string): KeyValue | undefined {
    return this.kvs.get(key);
  }

  /** Keys with `prefix` in key order, at most `limit` (0 = all). */
  range(prefix: string, limit = 0): { kvs: KeyValue[]; more: boolean } {
    const { keys, more } = this.keys.withPrefix(prefix, limit);
    return { kvs: keys.map((k) => this.kvs.get(k)!), more };
  }

  /** Applies a committed request (deduplicated by client id and sequence). */
  apply(request: Request): ApplyOutcome {
    if (request.clientId === 0) return this.applyValidated(request);
    const seen = this.clients.get(request.clientId);
    if (seen !== undefined && request.sequence === seen.sequence) return seen.outcome;
    if (seen !== undefined && request.sequence < seen.sequence) {
      return { ok: false, code: 'REQUEST_STALE', message: `client ${request.clientId} already sent sequence ${seen.sequence}; ${request.sequence} is older` };
    }
    const outcome = this.applyValidated(request);
    this.remember(request.clientId, { sequence: request.sequence, outcome });
    return outcome;
  }

  private applyValidated(request: Request): ApplyOutcome {
    try {
      validateRequest(request, DEFAULT_KV_LIMITS);
    } catch (error) {
      if (error instanceof CutoverError) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    return { ok: true, result: this.execute(request.command) };
  }

  private remember(clientId: number, record: ClientRecord): void {
    this.clients.delete(clientId); // re-insert so Map order is least recently used first
    this.clients.set(clientId, record);
    if (this.clients.size > this.dedupClientsMax) this.clients.delete(this.clients.keys().next().value!);
  }

  private execute(command: Command): CommandResult {
    if (command.type === 'compact') return this.compact(command.revision);
    const events: WatchEvent[] = [];
    const nextRevision = this.rev + 1;
    let result: CommandResult;
    if (command.type === 'txn') {
      const succeeded = command.compare.every((c) => this.compare(c));
      const ops = succeeded ? command.success : command.failure;
      const results = ops.map((op) => this.operate(op, nextRevision, events));
      result = { type: 'txn', succeeded, revision: events.length > 0 ? nextRevision : this.rev, results };
    } else {
      result = this.operate(command, nextRevision, events);
    }
    if (events.length > 0) {
      this.rev = nextRevision;
      this.record(events);
    }
    return result;
  }

  private operate(op: Operation, revision: number, events: WatchEvent[]): OperationResult {
    switch (op.type) {
      case 'put': {
        const prev = this.kvs.get(op.key);
        const kv: KeyValue = { key: op.key, value: op.value, createRevision: prev?.createRevision ?? revision, modRevision: revision, version: (prev?.version ?? 0) + 1 };
        this.kvs.set(op.key, kv);
        this.keys.add(op.key);
        events.push({ type: 'put', revision, kv, prev });
        return { type: 'put', revision, prev };
      }
      case 'delete':
        return { type: 'delete', revision, deleted: this.deleteKeys(this.kvs.has(op.key) ? [op.key] : [], revision, events) };
      case 'deletePrefix':
        return { type: 'delete', revision, deleted: this.deleteKeys(this.keys.withPrefix(op.prefix, 0).keys, revision, events) };
      case 'get':
        return { type: 'get', kv: this.kvs.get(op.key) };
      case 'range':
        return { type: 'range', ...this.range(op.prefix, op.limit) };
    }
  }

  private deleteKeys(keys: readonly string[], revision: number, events: WatchEvent[]): KeyValue[] {
    const deleted: KeyValue[] = [];
    for (const key of keys) {
      const prev = this.kvs.get(key)!;
      this.kvs.delete(key);
      this.keys.delete(key);
      deleted.push(prev);
      // A delete event carries the key with revision and no value (as etcd's tombstone).
      events.push({ type: 'delete', revision, kv: { key, value: '', createRevision: 0, modRevision: revision, version: 0 }, prev });
    }
    return deleted;
  }

  private compare(c: Compare): boolean {
    const kv = this.kvs.get(c.key);
    const actual: string | number | boolean =
      c.target === 'exists' ? kv !== undefined
      : c.target === 'value' ? (kv?.value ?? '')
      : c.target === 'version' ? (kv?.version ?? 0)
      : c.target === 'createRevision' ? (kv?.createRevision ?? 0)
      : (kv?.modRevision ?? 0);
    // Comparing a missing key's value never succeeds (except '!='): it has no value.
    if (c.target === 'value' && kv === undefined) return c.op === '!=';
    switch (c.op) {
      case '=':
        return actual === c.value;
      case '!=':
        return actual !== c.value;
      case '<':
        return actual < c.value;
      case '>':
        return actual > c.value;
    }
  }

  /** Drops history up to `revision` (watches from there on fail with WATCH_COMPACTED). */
  private compact(revision: number): CommandResult {
    const target = Math.min(revision, this.rev);
    if (target > this.compacted) {
      this.compacted = target;
      this.history = this.history.filter((e) => e.revision > target);
    }
    return { type: 'compact', revision: this.compacted };
  }

  private record(events: WatchEvent[]): void {
    for (const e of events) this.history.push(e);
    // Trim whole revisions so no watch ever sees half a transaction.
    let drop = 0;
    while (this.history.length - drop > this.historyEventsMax) {
      const revision = this.history[drop]!.revision;
      while (drop < this.history.length && this.history[drop]!.revision === revision) drop++;
      this.compacted = revision;
    }
    if (drop > 0) this.history = this.history.slice(drop);
    this.notify(events);
  }

  private notify(events: readonly WatchEvent[]): void {
    for (const w of this.watchers) {
      const matching = events.filter((e) => e.kv.key.startsWith(w.prefix));
      if (matching.length > 0) w.listener(matching);
    }
  }

  /**
   * Watches keys with `prefix`: first the history events at or after `fromRevision` (0 = only
   * new events), then every new event as it is applied. Throws WATCH_COMPACTED when
   * `fromRevision` is no longer in the history. Returns a function that cancels the watch.
   */
  watch(prefix: string, fromRevision: number, listener: WatchListener): () => void {
    if (!Number.isSafeInteger(fromRevision) || fromRevision < 0) throw new InvalidArgumentError('fromRevision', 'must be a non-negative integer');
    if (fromRevision > 0 && fromRevision <= this.compacted) throw new WatchCompactedError(fromRevision, this.compacted);
    if (fromRevision > 0) {
      const past = this.history.filter((e) => e.revision >= fromRevision && e.kv.key.startsWith(prefix));
      if (past.length > 0) listener(past);
    }
    const watcher: Watcher = { prefix, listener };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** Serialises the state (keys, revision, dedup table). History is not kept: see restore. */
  snapshot(): Uint8Array {
    const image: SnapshotImage = { version: 1, revision: this.rev, kvs: this.keys.all().map((k) => this.kvs.get(k)!), clients: [...this.clients] };
    return encoder.encode(JSON.stringify(image));
  }

  /**
   * Replaces the state with a snapshot's. The history restarts empty, compacted at the snapshot
   * revision. Watchers stay registered and are told the jump as its net effect: a delete for each
   * watched key the snapshot lacks and a put for each key it adds or changes, all at the snapshot
   * revision (the intermediate events are gone), so a state derived from a watch stays exact.
   */
  restore(data: Uint8Array): void {
    let image: SnapshotImage;
    try {
      image = JSON.parse(decoder.decode(data)) as SnapshotImage;
    } catch (cause) {
      throw new CutoverError('SNAPSHOT_CORRUPT', 'KV snapshot is not valid JSON', { cause });
    }
    if (image.version !== 1 || !Array.isArray(image.kvs) || !Array.isArray(image.clients)) throw new CutoverError('SNAPSHOT_CORRUPT', 'KV snapshot has an unknown layout');
    const before = this.watchers.size > 0 ? new Map(this.kvs) : undefined;
    this.kvs.clear();
    for (const kv of image.kvs) this.kvs.set(kv.key, kv);
    this.keys.reset(image.kvs.map((kv) => kv.key));
    this.clients.clear();
    for (const [id, record] of image.clients) this.clients.set(id, record);
    this.rev = image.revision;
    this.compacted = image.revision;
    this.history = [];
    assert(this.kvs.size === this.keys.size, 'restore: duplicate keys in snapshot');
    if (before !== undefined) this.notify(jumpEvents(before, this.kvs, image.revision));
  }
}

/** The net change from `before` to `after` as watch events at `revision` (deletes, then puts). */
function jumpEvents(before: ReadonlyMap<string, KeyValue>, after: ReadonlyMap<string, KeyValue>, revision: number): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const [key, prev] of before) {
    if (!after.has(key)) events.push({ type: 'delete', revision, kv: { key, value: '', createRevision: 0, modRevision: revision, version: 0 }, prev });
  }
  for (const [key, kv] of after) {
    const prev = before.get(key);
    if (prev === undefined || prev.modRevision !== kv.modRevision) events.push({ type: 'put', revision, kv, prev });
  }
  return events;
}
