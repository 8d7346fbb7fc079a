/**
 * Payload formats as pure functions: the same event gives the same bytes whatever the key order of
 * its writer and whatever the local time zone; text says what, to what, by whom and why; the
 * services' limits hold for long reasons.
 */
import test from 'ava';
import { discordDocument, payloadFor, slackDocument, summaryOf, titleOf, webhookDocument, type Notice } from '../../src/notify/payload.ts';
import { testNotice } from '../../src/notify/send.ts';

const AT = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

function notice(overrides: Partial<Notice> = {}): Notice {
  return {
    id: '1767323045006-u.u-1.7',
    revision: 42,
    action: 'update.rollback-started',
    actor: { kind: 'system', name: 'health-gate' },
    target: { artifact: 'org.example:greeter', updateId: 'u-1', version: '2.0.0' },
    reason: 'p99 latency 900 ms above 500 ms',
    details: { oldVersion: '1.0.0', newVersion: '2.0.0', evidence: { p99: 900, limit: 500 } },
    at: AT,
    ...overrides,
  };
}

test('the same event gives the same bytes whatever the key order of target and details', (t) => {
  const a = notice();
  const b = notice({ target: { version: '2.0.0', updateId: 'u-1', artifact: 'org.example:greeter' }, details: { evidence: { limit: 500, p99: 900 }, newVersion: '2.0.0', oldVersion: '1.0.0' } });
  for (const type of ['webhook', 'slack', 'discord'] as const) t.is(payloadFor(type, a).body, payloadFor(type, b).body, type);
});

test('times are UTC ISO 8601 whatever the local time zone', (t) => {
  const saved = process.env.TZ;
  try {
    process.env.TZ = 'Pacific/Auckland';
    const far = ['webhook', 'slack', 'discord'].map((type) => payloadFor(type as 'webhook', notice()).body);
    process.env.TZ = 'America/Los_Angeles';
    const near = ['webhook', 'slack', 'discord'].map((type) => payloadFor(type as 'webhook', notice()).body);
    t.deepEqual(far, near);
    t.is(webhookDocument(notice()).time, '2026-01-02T03:04:05.006Z');
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('the summary says what happened, to what, by whom and why', (t) => {
  t.is(summaryOf(notice()), 'Rollback started: update u-1 of org.example:greeter (1.0.0 → 2.0.0), by health-gate (system): p99 latency 900 ms above 500 ms');
  t.is(summaryOf(notice({ action: 'instance.unhealthy', actor: { kind: 'system', name: 'node-3' }, target: { artifact: 'org.example:greeter', instanceId: 'i-7', version: '2.0.0', nodeId: 3 }, details: {}, reason: '' })), 'Instance unhealthy: instance i-7 of org.example:greeter 2.0.0 on node 3, by node-3 (system)');
  t.is(summaryOf(notice({ action: 'update.started', actor: { kind: 'user', name: 'ada' }, reason: '' })), 'Update started: update u-1 of org.example:greeter (1.0.0 → 2.0.0), by ada');
  t.like(titleOf('update.completed'), { severity: 'success' });
  t.like(titleOf('update.paused'), { severity: 'warning' });
  t.like(titleOf('some.future-action'), { title: 'some.future-action', severity: 'info' });
});

test('long reasons are cut to the services\' limits', (t) => {
  const long = notice({ reason: 'x'.repeat(10_000) });
  const slack = slackDocument(long) as { text: string; blocks: { text?: { text: string } }[] };
  t.true(slack.text.length <= 3000);
  t.true(slack.blocks[0]!.text!.text.length <= 3000);
  t.true(slack.blocks[0]!.text!.text.endsWith('…'));
  const discord = discordDocument(long) as { content: string; embeds: { description: string }[] };
  t.true(discord.content.length <= 2000);
  t.true(discord.embeds[0]!.description.length <= 4096);
  t.is(webhookDocument(long).reason, long.reason, 'the webhook document keeps the whole reason');
});

test('the test notice is a distinct action with a stable id', (t) => {
  const n = testNotice('ops', 'ada', AT);
  t.is(n.action, 'notify.test');
  t.is(n.id, `${AT}-test.ops`);
  t.is(summaryOf(n), 'Test notification: the cluster, by ada: test of notification channel ops');
  t.like(webhookDocument(n), { action: 'notify.test', revision: 0, severity: 'info', target: {}, details: {} });
});
