/**
 * The audit trail's bound: the leader-only pruner deletes the oldest events beyond the count and
 * those older than the age, in bounded batches, by key order; followers never delete.
 */
import test from 'ava';
import { EVENT_PREFIX, eventId, eventWrite, type AuditEvent } from '../../src/events/event.ts';
import { EventPruner, keysToPrune } from '../../src/events/pruner.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { EventsHost } from '../../src/node/events-host.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

const T0 = 1_700_000_000_000;
const DAY = 24 * 3_600_000;

function event(at: number, n: number): AuditEvent {
  return { id: eventId(at, `c.1.${n}`), at, actor: { kind: 'user', name: 'alice' }, action: 'slice.scaled', target: { artifact: 'org.example:greeter' }, reason: `scale ${n}` };
}

async function write(port: MemoryClusterPort, events: readonly AuditEvent[]): Promise<void> {
  // In batches, as transactions of changes would write them.
  for (let i = 0; i < events.length; i += 100) await port.txn([], events.slice(i, i + 100).map(eventWrite));
}

async function keys(port: MemoryClusterPort): Promise<string[]> {
  return (await port.range(EVENT_PREFIX)).kvs.map((kv) => kv.key);
}

/** Advances the clock in steps until `done` or `stepsMax` steps. */
async function settle(clock: ManualClock, done: () => Promise<boolean>, stepsMax = 200): Promise<void> {
  for (let i = 0; i < stepsMax && !(await done()); i++) await clock.advance(10);
}

test('keysToPrune: past the count first, then past the age, at most max, in key order', (t) => {
  const all = [event(T0, 1), event(T0 + 1, 2), event(T0 + 2, 3), event(T0 + DAY, 4), event(T0 + 2 * DAY, 5)].map((e) => `${EVENT_PREFIX}${e.id}`);
  t.deepEqual(keysToPrune(all, { countMax: 3, ageMsMax: 10 * DAY, nowMs: T0 + 2 * DAY, max: 100 }), all.slice(0, 2));
  t.deepEqual(keysToPrune(all, { countMax: 100, ageMsMax: DAY, nowMs: T0 + 2 * DAY, max: 100 }), all.slice(0, 3), 'older than a day before now');
  t.deepEqual(keysToPrune(all, { countMax: 100, ageMsMax: DAY, nowMs: T0 + 2 * DAY + 1, max: 100 }), all.slice(0, 4), 'the age bound is exclusive of the cutoff ms');
  t.deepEqual(keysToPrune(all, { countMax: 1, ageMsMax: DAY, nowMs: T0, max: 2 }), all.slice(0, 2), 'bounded by max');
  t.deepEqual(keysToPrune(all, { countMax: 100, ageMsMax: 100 * DAY, nowMs: T0, max: 100 }), []);
});

test('the leader prunes by count in bounded batches, keeping the newest', async (t) => {
  const port = new MemoryClusterPort();
  const clock = new ManualClock();
  const batches: number[] = [];
  const txn = port.txn.bind(port);
  port.txn = async (compare, success, failure) => {
    batches.push(success.length);
    return txn(compare, success, failure);
  };
  const events = Array.from({ length: 250 }, (_, i) => event(T0 + i, i));
  await write(port, events);
  batches.length = 0;
  const pruner = new EventPruner({ port, clock, wallClockMs: () => T0 + 1000, logger: silentLogger, countMax: 100, batchMax: 40, batchesPerRoundMax: 2 });
  pruner.start();
  await settle(clock, async () => (await keys(port)).length === 100);
  t.deepEqual(
    await keys(port),
    events.slice(150).map((e) => `${EVENT_PREFIX}${e.id}`),
  );
  t.deepEqual(batches, [40, 40, 40, 30]);
  t.like(pruner.status(), { active: true, events: 100, deleted: 150 });
  // A few writes past the bound wait for the interval's round; a batch past it wakes one at once.
  await write(port, [event(T0 + 500, 500), event(T0 + 501, 501)]);
  await clock.advance(0);
  t.is((await keys(port)).length, 102);
  await write(port, Array.from({ length: 38 }, (_, i) => event(T0 + 600 + i, 600 + i)));
  await clock.advance(0);
  t.is((await keys(port)).length, 100);
  t.is((await keys(port)).at(-1), `${EVENT_PREFIX}${event(T0 + 637, 637).id}`);
  await write(port, [event(T0 + 700, 700)]);
  await clock.advance(60_000);
  t.is((await keys(port)).length, 100, 'the interval round takes the small excess');
  pruner.stop();
});

test('the leader prunes by age on its interval, as the wall clock moves', async (t) => {
  const port = new MemoryClusterPort();
  const clock = new ManualClock();
  let now = T0;
  await write(port, [event(T0 - 8 * DAY, 1), event(T0 - 6 * DAY, 2), event(T0 - DAY, 3), event(T0, 4)]);
  const host = new EventsHost({ port, clock, wallClockMs: () => now, logger: silentLogger, pruneIntervalMs: 60_000 });
  host.start();
  await settle(clock, async () => (await keys(port)).length === 3);
  t.is((await keys(port)).length, 3, 'the 8-day-old event is gone');
  now = T0 + 2 * DAY;
  await clock.advance(59_000);
  t.is((await keys(port)).length, 3, 'not before the interval');
  await clock.advance(1_000);
  await flush();
  t.deepEqual(
    await keys(port),
    [event(T0 - DAY, 3), event(T0, 4)].map((e) => `${EVENT_PREFIX}${e.id}`),
  );
  t.like(host.status(), { deleted: 2 });
  host.stop();
});

test('a follower never prunes; it starts when it becomes leader and stops when it loses', async (t) => {
  const port = new MemoryClusterPort(1, false);
  const clock = new ManualClock();
  const leader = new MemoryClusterPort();
  await write(leader, Array.from({ length: 20 }, (_, i) => event(T0 + i, i)));
  // The follower reads the same store: copy it over.
  for (const kv of (await leader.range(EVENT_PREFIX)).kvs) port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: kv.key, value: kv.value } });
  const pruner = new EventPruner({ port, clock, wallClockMs: () => T0 + 100, logger: silentLogger, countMax: 5 });
  pruner.start();
  await clock.advance(120_000);
  t.is((await keys(port)).length, 20);
  t.false(pruner.status().active);
  port.setLeader(true);
  await settle(clock, async () => (await keys(port)).length === 5);
  t.is((await keys(port)).length, 5);
  port.setLeader(false);
  t.false(pruner.status().active);
  pruner.stop();
});

test('settings are checked, naming the bad one', (t) => {
  const base = { port: new MemoryClusterPort(), clock: new ManualClock(), wallClockMs: () => T0, logger: silentLogger };
  t.like(t.throws(() => new EventPruner({ ...base, countMax: 0 })), { code: 'INVALID_ARGUMENT', field: 'countMax' });
  t.like(t.throws(() => new EventPruner({ ...base, ageMsMax: -1 })), { code: 'INVALID_ARGUMENT', field: 'ageMsMax' });
  t.like(t.throws(() => new EventPruner({ ...base, batchMax: 500 })), { code: 'INVALID_ARGUMENT', field: 'batchMax' });
  t.like(t.throws(() => new EventsHost({ ...base, pruneIntervalMs: 1.5 })), { code: 'INVALID_ARGUMENT', field: 'intervalMs' });
});
