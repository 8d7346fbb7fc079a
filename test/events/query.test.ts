/**
 * Reading the audit trail (query.ts) over an in-memory port, and id sources (source.ts).
 */
import test from 'ava';
import { EVENT_PREFIX, EVENT_SOURCE_LENGTH_MAX, eventId, eventWrite, type AuditEvent } from '../../src/events/event.ts';
import { LIST_LIMIT_DEFAULT, checkEventFilter, listEvents } from '../../src/events/query.ts';
import { eventSource } from '../../src/events/source.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';

const T0 = 1_700_000_000_000;

function event(at: number, n: number, fields: Partial<AuditEvent> = {}): AuditEvent {
  return { id: eventId(at, `c.1.${n}`), at, actor: { kind: 'user', name: 'alice' }, action: 'slice.scaled', target: { artifact: 'org.example:greeter' }, reason: `event ${n}`, ...fields };
}

async function store(events: readonly AuditEvent[]): Promise<MemoryClusterPort> {
  const port = new MemoryClusterPort();
  for (const e of events) await port.txn([], [eventWrite(e)]);
  return port;
}

test('List filters by artifact, update, actor, action and time, in commit order either way, limited with `more`', async (t) => {
  const port = await store([
    event(T0, 1),
    event(T0 + 1000, 2, { actor: { kind: 'system', name: 'controller' }, action: 'update.routing', target: { artifact: 'org.example:greeter', updateId: 'u1' } }),
    event(T0 + 2000, 3, { target: { artifact: 'org.example:billing' } }),
    event(T0 + 3000, 4, { action: 'update.paused', actor: { kind: 'system', name: 'health-gate' }, target: { artifact: 'org.example:greeter', updateId: 'u1' } }),
  ]);
  const reasons = async (filter: Parameters<typeof listEvents>[1], options: Parameters<typeof listEvents>[2] = {}): Promise<string[]> => (await listEvents(port, filter, options)).events.map((e) => e.reason);
  t.deepEqual(await reasons({}), ['event 1', 'event 2', 'event 3', 'event 4']);
  t.deepEqual(await reasons({ artifact: 'org.example:billing' }), ['event 3']);
  t.deepEqual(await reasons({ updateId: 'u1' }), ['event 2', 'event 4']);
  t.deepEqual(await reasons({ actor: 'health-gate' }), ['event 4']);
  t.deepEqual(await reasons({ action: 'update.routing' }), ['event 2']);
  t.deepEqual(await reasons({ sinceMs: T0 + 1000, untilMs: T0 + 3000 }), ['event 2', 'event 3']);
  t.deepEqual(await reasons({}, { order: 'newest-first', limit: 2 }), ['event 4', 'event 3']);
  const list = await listEvents(port, {}, { limit: 3 });
  t.true(list.more);
  t.is(list.revision, port.revision());
  t.deepEqual(
    list.events.map((e) => e.revision),
    [1, 2, 3],
  );
});

test('List skips and counts unreadable values; orders one transaction\'s events by id', async (t) => {
  const port = await store([]);
  await port.txn([], [eventWrite(event(T0 + 5, 2)), eventWrite(event(T0, 1)), { type: 'put', key: `${EVENT_PREFIX}garbage`, value: 'not json' }]);
  const list = await listEvents(port, {});
  t.is(list.invalid, 1);
  t.deepEqual(
    list.events.map((e) => e.reason),
    ['event 1', 'event 2'],
  );
});

test('filters and limits are checked, naming the field', async (t) => {
  const port = await store([]);
  t.like(await t.throwsAsync(listEvents(port, {}, { limit: 1001 })), { code: 'INVALID_ARGUMENT', field: 'limit' });
  t.like(t.throws(() => checkEventFilter({ action: 'nope' as never })), { code: 'INVALID_ARGUMENT', field: 'action' });
  t.like(t.throws(() => checkEventFilter({ actor: '' })), { code: 'INVALID_ARGUMENT', field: 'actor' });
  t.like(t.throws(() => checkEventFilter({ sinceMs: -1 })), { code: 'INVALID_ARGUMENT', field: 'since' });
  t.like(t.throws(() => checkEventFilter({ sinceMs: 10, untilMs: 5 })), { code: 'INVALID_ARGUMENT', field: 'until' });
  t.is((await listEvents(port, {}, { limit: 0 })).events.length, 0, `0 means ${LIST_LIMIT_DEFAULT}`);
});

test('eventSource: deterministic, valid in an id, long sources cut with a hash of the whole', (t) => {
  t.is(eventSource('deploy', 'org.example:greeter:1.0.0', 'r12'), 'deploy.org.example:greeter:1.0.0.r12');
  t.is(eventSource('a/b c', 3), 'a_b_c.3');
  const long = eventSource('x'.repeat(300), 1);
  const other = eventSource('x'.repeat(300), 2);
  t.true(long.length <= EVENT_SOURCE_LENGTH_MAX);
  t.not(long, other);
  t.is(long, eventSource('x'.repeat(300), 1));
  t.notThrows(() => eventId(T0, long));
});
