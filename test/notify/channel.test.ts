/** Channel records: operator input checked field by field, records read back, secrets kept in. */
import test from 'ava';
import { NOTIFY_ACTIONS } from '../../src/events/event.ts';
import { channelKey, channelWants, formatChannel, parseChannel, publicChannel, redactUrl, validateChannel, type ChannelInput } from '../../src/notify/channel.ts';

const BASE: ChannelInput = { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/cutover', updatedBy: 'ada', updatedAt: 1 };

test('a valid channel gets every notifying action by default, in a canonical order', (t) => {
  const channel = validateChannel(BASE);
  t.deepEqual(channel.events, [...NOTIFY_ACTIONS]);
  t.deepEqual(validateChannel({ ...BASE, events: ['update.failed', 'update.started', 'update.failed'] }).events, ['update.started', 'update.failed']);
});

test('bad input is INVALID_ARGUMENT naming the field', (t) => {
  const cases: [Partial<ChannelInput>, string][] = [
    [{ name: 'Ops!' }, 'name'],
    [{ name: '' }, 'name'],
    [{ name: 'x'.repeat(64) }, 'name'],
    [{ type: 'email' }, 'type'],
    [{ url: 'hooks.example.com/x' }, 'url'],
    [{ url: 'ftp://hooks.example.com/x' }, 'url'],
    [{ url: 'https://exa mple.com' }, 'url'],
    [{ url: `https://example.com/${'x'.repeat(2048)}` }, 'url'],
    [{ secret: 'short' }, 'secret'],
    [{ secret: 'x'.repeat(257) }, 'secret'],
    [{ type: 'slack', secret: 'x'.repeat(32) }, 'secret'],
    [{ artifact: 'greeter' }, 'artifact'],
    [{ events: ['update.routing'] }, 'events'],
    [{ events: ['nope'] }, 'events'],
    [{ updatedBy: '' }, 'actor'],
  ];
  for (const [change, field] of cases) {
    const error = t.throws(() => validateChannel({ ...BASE, ...change }), undefined, JSON.stringify(change));
    t.like(error, { code: 'INVALID_ARGUMENT', field }, JSON.stringify(change));
  }
});

test('a record round-trips through the store form; bad values are refused with a reason', (t) => {
  const channel = validateChannel({ ...BASE, secret: 'x'.repeat(20), artifact: 'org.example:greeter', events: ['update.failed'] });
  const parsed = parseChannel(channelKey('ops'), formatChannel(channel));
  t.deepEqual(parsed, { ok: true, value: channel });
  t.false(parseChannel(channelKey('other'), formatChannel(channel)).ok, 'name must match the key');
  t.false(parseChannel(channelKey('ops'), '{').ok);
  t.false(parseChannel(channelKey('ops'), JSON.stringify({ ...channel, url: 'nope' })).ok);
  t.deepEqual(parseChannel(channelKey('ops'), JSON.stringify({ ...channel, events: [] })), { ok: true, value: { ...channel, events: [] } }, 'an empty list on disk means none');
});

test('channelWants: artifact scope and action filter', (t) => {
  const scoped = validateChannel({ ...BASE, artifact: 'org.example:greeter', events: ['update.failed'] });
  t.true(channelWants(scoped, 'update.failed', 'org.example:greeter'));
  t.false(channelWants(scoped, 'update.failed', 'org.example:other'));
  t.false(channelWants(scoped, 'update.failed', undefined));
  t.false(channelWants(scoped, 'update.started', 'org.example:greeter'));
  t.true(channelWants(validateChannel(BASE), 'update.started', undefined), 'cluster-wide takes events of any or no artifact');
});

test('the public form never carries the secret, and hides tokens in URLs', (t) => {
  const channel = validateChannel({ ...BASE, secret: 's'.repeat(32) });
  const shown = publicChannel(channel);
  t.true(shown.secretSet);
  t.false(JSON.stringify(shown).includes('s'.repeat(32)));
  t.false(publicChannel(validateChannel(BASE)).secretSet);
  t.is(redactUrl('slack', 'https://hooks.slack.com/services/T0/B0/abcdef'), 'https://hooks.slack.com/services/T0/B0/****');
  t.is(redactUrl('discord', 'https://discord.com/api/webhooks/123/tok-en'), 'https://discord.com/api/webhooks/123/****');
  t.is(redactUrl('webhook', 'https://user:pass@example.com/hook?token=abc'), 'https://****@example.com/hook?****');
  t.is(redactUrl('webhook', 'https://example.com/hook'), 'https://example.com/hook');
});
