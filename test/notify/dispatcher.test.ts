/**
 * The leader-only dispatcher against a real HTTP receiver on 127.0.0.1, with events committed
 * through MemoryClusterPort and time on a ManualClock (timeouts and back-off move only when a test
 * advances it; the HTTP exchanges are real and awaited with bounded real-time polls).
 */
import test from 'ava';
import { eventWrite } from '../../src/events/event.ts';
import { CURSOR_KEY } from '../../src/notify/channel.ts';
import { DISCORD_COLOURS } from '../../src/notify/payload.ts';
import { DELIVERY_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/notify/signing.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { flush } from '../helpers/manual-clock.ts';
import { EPOCH_MS, SECRET, applyEvent, auditEvent, commitEvent, ids, putChannel, rig, type Rig } from './fixtures.ts';
import { Receiver } from './receiver.ts';

async function receivers(t: { teardown(fn: () => Promise<void>): void }, ...behaviours: Parameters<typeof Receiver.start>[0][]): Promise<Receiver[]> {
  const started = await Promise.all(behaviours.map((b) => Receiver.start(b)));
  t.teardown(async () => {
    await Promise.all(started.map((r) => r.close()));
  });
  return started;
}

async function started(t: { teardown(fn: () => Promise<void>): void }, settings: Parameters<typeof rig>[0] = {}): Promise<Rig> {
  const r = await rig(settings);
  t.teardown(() => r.dispatcher.stop());
  return r;
}

/** Waits until `channel`'s queue is in `state` (bounded, real time). */
async function untilState(r: Rig, channel: string, state: 'idle' | 'sending' | 'backoff'): Promise<void> {
  await waitFor(`${channel} ${state}`, () => r.dispatcher.stats().channels[channel]?.state === state, { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });
}

test('a webhook channel receives a signed JSON document for a committed event', async (t) => {
  const [receiver] = await receivers(t, { status: 200 });
  const r = await started(t);
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url, secret: SECRET });
  const event = auditEvent('update.rolled-back', { actor: { kind: 'system', name: 'health-gate' }, reason: 'error rate 5% above 1%', details: { oldVersion: '1.0.0', newVersion: '2.0.0', evidence: { errorRate: 0.05 } } });
  const revision = await commitEvent(r.port, event);
  await receiver!.until(1);
  const request = receiver!.requests[0]!;
  t.is(request.method, 'POST');
  t.is(request.headers['content-type'], 'application/json');
  t.is(request.headers[EVENT_ID_HEADER], event.id);
  t.truthy(request.headers[DELIVERY_HEADER]);
  const timestamp = String(request.headers[TIMESTAMP_HEADER]);
  t.is(timestamp, String(Math.floor(EPOCH_MS / 1000)));
  const signature = String(request.headers[SIGNATURE_HEADER]);
  t.true(verifySignature(SECRET, timestamp, request.body, signature));
  t.false(verifySignature(SECRET, timestamp, request.body.replace('health-gate', 'health-gatf'), signature), 'a tampered body is refused');
  t.false(verifySignature(SECRET, String(Number(timestamp) + 1), request.body, signature), 'a changed timestamp is refused');
  t.false(verifySignature('another-secret-of-enough-length', timestamp, request.body, signature), 'another secret is refused');
  t.deepEqual(JSON.parse(request.body), {
    id: event.id,
    revision,
    action: 'update.rolled-back',
    severity: 'critical',
    actor: { kind: 'system', name: 'health-gate' },
    target: { artifact: 'org.example:greeter', updateId: 'u-1', version: '2.0.0' },
    reason: 'error rate 5% above 1%',
    details: { evidence: { errorRate: 0.05 }, newVersion: '2.0.0', oldVersion: '1.0.0' },
    time: new Date(event.at).toISOString(),
    summary: 'Update rolled back: update u-1 of org.example:greeter (1.0.0 → 2.0.0), by health-gate (system): error rate 5% above 1%',
  });
  await untilState(r, 'ops', 'idle');
  t.like(r.dispatcher.stats(), { delivered: 1, failed: 0, dropped: 0, retries: 0, leading: true });
});

test('slack and discord channels get bodies with the fields those services require', async (t) => {
  const [slack, discord] = await receivers(t, { status: 200 }, { status: 204 });
  const r = await started(t);
  await putChannel(r.port, { name: 'slack', type: 'slack', url: slack!.url });
  await putChannel(r.port, { name: 'discord', type: 'discord', url: discord!.url });
  const event = auditEvent('update.failed', { reason: 'deploy timed out <@everyone> & more' });
  await commitEvent(r.port, event);
  await slack!.until(1);
  await discord!.until(1);
  t.is(slack!.requests[0]!.headers[SIGNATURE_HEADER], undefined, 'only webhooks are signed');
  const s = slack!.bodies()[0]!;
  t.is(typeof s.text, 'string');
  t.regex(String(s.text), /^Update failed: update u-1 of org\.example:greeter 2\.0\.0, by ada: deploy timed out &lt;@everyone&gt; &amp; more$/);
  const blocks = s.blocks as { type: string; text?: { type: string; text: string }; elements?: { type: string; text: string }[] }[];
  t.true(blocks.length >= 1 && blocks.length <= 50);
  t.is(blocks[0]!.type, 'section');
  t.is(blocks[0]!.text!.type, 'mrkdwn');
  t.true(blocks[0]!.text!.text.length <= 3000);
  t.regex(blocks[0]!.text!.text, /\*Why:\* deploy timed out &lt;@everyone&gt;/);
  t.is(blocks[1]!.type, 'context');
  const d = discord!.bodies()[0]!;
  t.regex(String(d.content), /^Update failed: .* by ada: deploy timed out/);
  t.true(String(d.content).length <= 2000);
  t.deepEqual(d.allowed_mentions, { parse: [] }, 'a reason never pings anyone');
  const embeds = d.embeds as { title: string; description: string; color: number; timestamp: string; fields: { name: string; value: string }[] }[];
  t.is(embeds.length, 1);
  t.is(embeds[0]!.title, 'Update failed');
  t.is(embeds[0]!.color, DISCORD_COLOURS.critical);
  t.is(embeds[0]!.timestamp, new Date(event.at).toISOString());
  t.true(embeds[0]!.fields.every((f) => f.name.length > 0 && f.value.length > 0 && f.value.length <= 1024));
  await untilState(r, 'discord', 'idle');
  t.is(r.dispatcher.stats().delivered, 2);
});

test('an artifact channel gets only its artifact; the action filter and notifies() decide the rest', async (t) => {
  const [all, greeter, filtered] = await receivers(t, { status: 200 }, { status: 200 }, { status: 200 });
  const r = await started(t);
  await putChannel(r.port, { name: 'all', type: 'webhook', url: all!.url });
  await putChannel(r.port, { name: 'greeter', type: 'webhook', url: greeter!.url, artifact: 'org.example:greeter' });
  await putChannel(r.port, { name: 'failures', type: 'webhook', url: filtered!.url, events: ['update.failed', 'update.rolled-back'] });
  const a = auditEvent('update.started', { artifact: 'org.example:greeter' });
  const b = auditEvent('update.started', { artifact: 'org.example:other' });
  const routing = auditEvent('update.routing'); // does not notify
  const operatorPause = auditEvent('update.paused'); // paused by a user: does not notify
  const gatePause = auditEvent('update.paused', { actor: { kind: 'system', name: 'health-gate' } });
  const failed = auditEvent('update.failed', { artifact: 'org.example:other' });
  for (const e of [a, b, routing, operatorPause, gatePause, failed]) await commitEvent(r.port, e);
  await all!.until(4);
  await greeter!.until(2);
  await filtered!.until(1);
  await untilState(r, 'all', 'idle');
  t.deepEqual(ids(all!.bodies()), [a.id, b.id, gatePause.id, failed.id]);
  t.deepEqual(ids(greeter!.bodies()), [a.id, gatePause.id]);
  t.deepEqual(ids(filtered!.bodies()), [failed.id]);
});

test('a channel gets its events in commit order through retries; 4xx other than 408/429 is not retried', async (t) => {
  const [receiver] = await receivers(t, (index) => (index < 2 ? { status: 503 } : { status: 200 }));
  const r = await started(t, { retryDelayMsMin: 1000, retryDelayMsMax: 8000 });
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const events = [auditEvent('update.started'), auditEvent('update.approval-requested'), auditEvent('update.completed')];
  for (const e of events) await commitEvent(r.port, e);
  await receiver!.until(1);
  await untilState(r, 'ops', 'backoff');
  await r.clock.advance(1000);
  await receiver!.until(2);
  await untilState(r, 'ops', 'backoff');
  await r.clock.advance(2000);
  await receiver!.until(5);
  await untilState(r, 'ops', 'idle');
  const [e1, e2, e3] = events.map((e) => e.id);
  t.deepEqual(ids(receiver!.bodies()), [e1, e1, e1, e2, e3]);
  const deliveries = receiver!.requests.map((q) => String(q.headers[DELIVERY_HEADER]));
  t.is(new Set(deliveries).size, deliveries.length, 'each attempt has its own delivery id');
  t.like(r.dispatcher.stats(), { delivered: 3, retries: 2, failed: 0 });

  receiver!.behaviour = (index) => (index === 5 ? { status: 404 } : { status: 200 });
  const refused = auditEvent('update.failed');
  const next = auditEvent('instance.unhealthy');
  await commitEvent(r.port, refused);
  await commitEvent(r.port, next);
  await receiver!.until(7);
  await untilState(r, 'ops', 'idle');
  t.deepEqual(ids(receiver!.bodies()).slice(5), [refused.id, next.id], 'the 404 is not retried and the next event follows');
  t.like(r.dispatcher.stats(), { delivered: 4, failed: 1, retries: 2 });
});

test('back-off doubles with jitter and the notification is dropped after attemptsMax attempts; 429 is retried', async (t) => {
  const [receiver] = await receivers(t, { status: 429 });
  const r = await started(t, { attemptsMax: 3, retryDelayMsMin: 1000, retryDelayMsMax: 60_000 });
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const event = auditEvent('update.failed');
  await commitEvent(r.port, event);
  await receiver!.until(1);
  await untilState(r, 'ops', 'backoff');
  // The first back-off is in [500, 1000] ms (the ceiling 1000 with jitter over its upper half).
  await r.clock.advance(499);
  t.is(r.dispatcher.stats().channels.ops?.state, 'backoff');
  t.is(receiver!.requests.length, 1);
  await r.clock.advance(501);
  await receiver!.until(2);
  await untilState(r, 'ops', 'backoff');
  // The second is in [1000, 2000] ms.
  await r.clock.advance(999);
  t.is(r.dispatcher.stats().channels.ops?.state, 'backoff');
  await r.clock.advance(1001);
  await receiver!.until(3);
  await untilState(r, 'ops', 'idle');
  t.like(r.dispatcher.stats(), { delivered: 0, failed: 1, retries: 2, queued: 0 });
  t.like(r.dispatcher.stats().channels.ops, { failed: 1, retries: 2, queued: 0 });
  await r.clock.advance(120_000);
  t.is(receiver!.requests.length, 3, 'nothing more after the last attempt');
});

test('a hanging receiver and a down one delay neither other channels, nor enqueueing, nor a KV txn; the hang is cut at its timeout', async (t) => {
  const [hanging, good] = await receivers(t, 'hang', { status: 200 });
  const downPort = await freePort();
  const r = await started(t, { requestTimeoutMs: 5000, retryDelayMsMin: 1000 });
  await putChannel(r.port, { name: 'hang', type: 'webhook', url: hanging!.url });
  await putChannel(r.port, { name: 'down', type: 'webhook', url: `http://127.0.0.1:${downPort}/hook` });
  await putChannel(r.port, { name: 'good', type: 'webhook', url: good!.url });
  const first = auditEvent('update.started');
  await commitEvent(r.port, first);
  await hanging!.until(1);
  await good!.until(1);
  await untilState(r, 'down', 'backoff');
  t.is(r.dispatcher.stats().channels.hang?.state, 'sending');

  // With the hanging request open and the down channel backing off, the store still commits at once
  // and new events still reach every queue and the good receiver.
  const txn = await r.port.txn([], [{ type: 'put', key: 'rolling-update/u-9', value: '{}' }]);
  t.true(txn.succeeded);
  const later = [auditEvent('update.rollback-started'), auditEvent('update.rolled-back')];
  for (const e of later) await commitEvent(r.port, e);
  await flush();
  t.is(r.dispatcher.stats().channels.hang?.queued, 3, 'enqueued behind the hanging request');
  t.is(r.dispatcher.stats().channels.down?.queued, 3);
  await good!.until(3);
  t.deepEqual(ids(good!.bodies()), [first.id, ...later.map((e) => e.id)]);
  t.is(hanging!.requests.length, 1, 'one request in flight per channel');
  t.is(hanging!.aborted, 0);

  // The hang is cut at 5 s of clock time, then retried after its back-off.
  await r.clock.advance(4999);
  t.is(r.dispatcher.stats().channels.hang?.state, 'sending');
  await r.clock.advance(1);
  await waitFor('the hung request closed', () => hanging!.aborted === 1, { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });
  t.is(r.dispatcher.stats().channels.hang?.state, 'backoff');
  hanging!.behaviour = { status: 200 };
  await r.clock.advance(1000);
  await hanging!.until(4);
  await untilState(r, 'hang', 'idle');
  t.deepEqual(ids(hanging!.bodies()), [first.id, first.id, ...later.map((e) => e.id)]);
});

test('a full queue drops its oldest waiting notification, counted', async (t) => {
  const [receiver] = await receivers(t, 'hang');
  const r = await started(t, { queueLengthMax: 2, requestTimeoutMs: 1000, retryDelayMsMin: 100 });
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const events = [1, 2, 3, 4].map(() => auditEvent('instance.unhealthy'));
  await commitEvent(r.port, events[0]!);
  await receiver!.until(1);
  for (const e of events.slice(1)) await commitEvent(r.port, e);
  await flush();
  t.like(r.dispatcher.stats(), { dropped: 2, queued: 2 });
  receiver!.behaviour = { status: 200 };
  await r.clock.advance(1000);
  await waitFor('the timed-out request retried', () => r.dispatcher.stats().channels.ops?.state === 'backoff', { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });
  await r.clock.advance(100);
  await receiver!.until(3);
  await untilState(r, 'ops', 'idle');
  t.deepEqual(ids(receiver!.bodies()), [events[0]!.id, events[0]!.id, events[3]!.id], 'the head in flight is kept; the oldest waiting ones went');
});

test('the intake between the apply path and the drain is bounded: beyond it the oldest events are lost, counted', async (t) => {
  const [receiver] = await receivers(t, { status: 200 });
  const r = await started(t, { intakeEventsMax: 2 });
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const events = [1, 2, 3, 4, 5].map(() => auditEvent('update.failed'));
  // One transaction: the listener gets all five in one call, before any drain can run.
  await r.port.txn([], events.map((e) => eventWrite(e)));
  await receiver!.until(2);
  await untilState(r, 'ops', 'idle');
  t.deepEqual(ids(receiver!.bodies()), [events[3]!.id, events[4]!.id]);
  t.like(r.dispatcher.stats(), { lost: 3, delivered: 2 });
});

test('channels added, changed and deleted while leading take effect for later events', async (t) => {
  const [first, second] = await receivers(t, { status: 200 }, { status: 200 });
  const r = await started(t);
  const before = auditEvent('update.started');
  await commitEvent(r.port, before);
  await flush();
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: first!.url });
  const a = auditEvent('update.completed');
  await commitEvent(r.port, a);
  await first!.until(1);
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: second!.url });
  const b = auditEvent('update.failed');
  await commitEvent(r.port, b);
  await second!.until(1);
  await r.port.txn([], [{ type: 'delete', key: 'notify/channel/ops' }]);
  await commitEvent(r.port, auditEvent('update.failed'));
  await flush();
  t.deepEqual(ids(first!.bodies()), [a.id]);
  t.deepEqual(ids(second!.bodies()), [b.id]);
  t.deepEqual(r.dispatcher.stats().channels, {});
});

test('leadership loss stops delivery; the next leader resumes from the cursor without losing or repeating finished events', async (t) => {
  const [receiver] = await receivers(t, { status: 200 });
  const r = await started(t, { cursorWriteIntervalMs: 3000 });
  await putChannel(r.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const e1 = auditEvent('update.started');
  const rev1 = await commitEvent(r.port, e1);
  await receiver!.until(1);
  await untilState(r, 'ops', 'idle');
  await r.clock.advance(3000);
  const cursor = JSON.parse((await r.port.get(CURSOR_KEY))!.value) as { revision: number; term: number };
  t.like(cursor, { revision: rev1, term: 1 });
  t.is(r.dispatcher.stats().cursor, rev1);

  // e2 is in flight (hanging) when leadership goes: it was not finished, so the cursor stays below it.
  receiver!.behaviour = 'hang';
  const e2 = auditEvent('update.approval-requested');
  await commitEvent(r.port, e2);
  await receiver!.until(2);
  r.port.setLeader(false);
  await flush();
  t.false(r.dispatcher.stats().leading);
  await waitFor('the in-flight request aborted', () => receiver!.aborted === 1, { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });

  // Committed by another leader meanwhile: nothing is sent from here.
  receiver!.behaviour = { status: 200 };
  const e3 = auditEvent('update.completed');
  const rev3 = applyEvent(r.port, e3);
  await flush();
  await r.clock.advance(10_000);
  t.is(receiver!.requests.length, 2);

  r.port.setLeader(true);
  await flush();
  await receiver!.until(4);
  await untilState(r, 'ops', 'idle');
  t.deepEqual(ids(receiver!.bodies()), [e1.id, e2.id, e2.id, e3.id], 'e2 (unfinished) is resent, e1 (finished) is not, e3 is not lost');
  await r.clock.advance(3000);
  const resumed = JSON.parse((await r.port.get(CURSOR_KEY))!.value) as { revision: number; term: number };
  t.is(resumed.term, 3);
  t.true(resumed.revision >= rev3);
});

test('a leader that stops writes its cursor on the way out; the next dispatcher sends only what was unfinished', async (t) => {
  const [receiver] = await receivers(t, { status: 200 });
  const a = await started(t, { cursorWriteIntervalMs: 600_000 });
  await putChannel(a.port, { name: 'ops', type: 'webhook', url: receiver!.url });
  const [e1, e2, e3, e4] = [auditEvent('update.started'), auditEvent('update.completed'), auditEvent('update.failed'), auditEvent('instance.unhealthy')];
  await commitEvent(a.port, e1!);
  const rev2 = await commitEvent(a.port, e2!);
  await receiver!.until(2);
  await untilState(a, 'ops', 'idle');
  receiver!.behaviour = { status: 503 };
  await commitEvent(a.port, e3!);
  await receiver!.until(3);
  await untilState(a, 'ops', 'backoff');
  await a.dispatcher.stop();
  t.like(JSON.parse((await a.port.get(CURSOR_KEY))!.value), { revision: rev2, term: 1 }, 'finished up to e2; e3 was not');

  await commitEvent(a.port, e4!);
  receiver!.behaviour = { status: 200 };
  const b = await rig({}, a.port);
  t.teardown(() => b.dispatcher.stop());
  await receiver!.until(5);
  await untilState(b, 'ops', 'idle');
  t.deepEqual(ids(receiver!.bodies()), [e1!.id, e2!.id, e3!.id, e3!.id, e4!.id]);
});

test('a new leader whose watch history no longer reaches the cursor reads the missed events back from the store', async (t) => {
  const [receiver] = await receivers(t, { status: 200 });
  const { MemoryClusterPort } = await import('../../src/node/cluster-port.ts');
  const port = new MemoryClusterPort(1, false);
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: 'notify/channel/ops', value: JSON.stringify({ name: 'ops', type: 'webhook', url: receiver!.url, events: ['update.started', 'update.completed'], updatedBy: 't', updatedAt: EPOCH_MS }) } });
  const old = auditEvent('update.started');
  const oldRevision = applyEvent(port, old);
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: CURSOR_KEY, value: JSON.stringify({ revision: oldRevision, term: 1, nodeId: 2 }) } });
  const missed = [auditEvent('update.started'), auditEvent('update.completed')];
  for (const e of missed) applyEvent(port, e);
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'compact', revision: port.kv.revision() } });
  const r = await rig({}, port);
  t.teardown(() => r.dispatcher.stop());
  port.setLeader(true);
  await flush();
  await receiver!.until(2);
  await untilState(r, 'ops', 'idle');
  const live = auditEvent('update.completed');
  await commitEvent(port, live);
  await receiver!.until(3);
  t.deepEqual(ids(receiver!.bodies()), [...missed.map((e) => e.id), live.id]);
});

test('settings are checked and a bad one is named', async (t) => {
  const error = await t.throwsAsync(() => rig({ attemptsMax: 0 }));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'notify.attemptsMax' });
  const error2 = await t.throwsAsync(() => rig({ retryDelayMsMin: 5000, retryDelayMsMax: 1000 }));
  t.like(error2, { code: 'INVALID_ARGUMENT', field: 'notify.retryDelayMsMax' });
});
