/**
 * The cutover.v1.Notifications service (proto/cutover/v1/notifications.proto): notification
 * channels as records in the store (src/notify/channel.ts), and a one-shot test delivery. Every node
 * serves it: reads are linearizable reads of the store; writes go through the port (a follower
 * forwards them or answers NOT_LEADER, as the node is configured); TestChannel sends from the node
 * that answers. Secrets go in and never come out: Get and List say `secret_set`. The operator is
 * the request's `actor`, else the `x-cutover-actor` metadata, else anonymous (request-actor.ts).
 */
import type { Metadata, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { ClusterPort } from '../node/cluster-port.ts';
import { CHANNEL_PREFIX, CHANNELS_MAX_DEFAULT, ChannelNotFoundError, channelKey, formatChannel, parseChannel, publicChannel, requireChannelName, validateChannel, type StoredChannel } from '../notify/channel.ts';
import { DEFAULT_NOTIFY_SETTINGS } from '../notify/settings.ts';
import { sendNotice, testNotice } from '../notify/send.ts';
import { requireArtifactBase } from '../slices/keys.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { unary } from './kv-service.ts';
import { requestActor, unaryWithMetadata } from './request-actor.ts';

export interface NotificationsServiceOptions {
  readonly port: ClusterPort;
  /** For TestChannel's timeout. */
  readonly clock: Clock;
  /** Wall-clock epoch ms, stamped on records and on the test notification. */
  readonly wallClockMs: () => number;
  /** Channels the cluster keeps (default 64; give the dispatcher the same `channelsMax`). */
  readonly channelsMax?: number;
  /** TestChannel's request timeout (default 5000, as delivery's). */
  readonly requestTimeoutMs?: number;
}

interface PbSetChannel {
  name: string;
  type: string;
  url: string;
  secret?: string;
  clear_secret: boolean;
  artifact: string;
  events: string[];
  actor: string;
}

/** Set's compare-and-swap attempts before it answers CONFLICT (others changing the same channel). */
const SET_ATTEMPTS_MAX = 5;
/** Keys read by List: the channel limit leaves room for some that do not parse. */
const LIST_KEYS_MAX = 1000;

function pbChannel({ channel, modRevision }: StoredChannel): Record<string, unknown> {
  const shown = publicChannel(channel);
  return {
    name: shown.name,
    type: shown.type,
    url: shown.url,
    secret_set: shown.secretSet,
    artifact: shown.artifact ?? '',
    events: [...shown.events],
    updated_by: shown.updatedBy,
    updated_at_ms: shown.updatedAt,
    revision: modRevision,
  };
}

/** The cutover.v1.Notifications service over one node's port. */
export function notificationsService(options: NotificationsServiceOptions): UntypedServiceImplementation {
  const { port } = options;
  const channelsMax = options.channelsMax ?? CHANNELS_MAX_DEFAULT;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_NOTIFY_SETTINGS.requestTimeoutMs;
  let testSequence = 0;

  const read = async (name: string): Promise<StoredChannel | undefined> => {
    const kv = await port.get(channelKey(name));
    if (kv === undefined) return undefined;
    const parsed = parseChannel(kv.key, kv.value);
    if (!parsed.ok) throw new CutoverError('CHANNEL_CORRUPT', `notification channel "${name}" is unreadable (${parsed.reason}); set it again or delete it`);
    return { channel: parsed.value, modRevision: kv.modRevision };
  };

  const existing = async (name: string): Promise<StoredChannel> => {
    const stored = await read(requireChannelName(name));
    if (stored === undefined) throw new ChannelNotFoundError(name);
    return stored;
  };

  const set = async (req: PbSetChannel, metadata: Metadata): Promise<Record<string, unknown>> => {
    const name = requireChannelName(req.name);
    const actor = requestActor(metadata, { name: 'actor', value: req.actor });
    if (req.secret !== undefined && req.clear_secret) throw new InvalidArgumentError('clear_secret', 'give a secret or clear it, not both');
    for (let attempt = 0; attempt < SET_ATTEMPTS_MAX; attempt++) {
      const key = channelKey(name);
      const kv = await port.get(key);
      const parsed = kv === undefined ? undefined : parseChannel(kv.key, kv.value);
      const current = parsed?.ok === true ? parsed.value : undefined;
      // Unset keeps the stored secret while the channel stays a webhook: it is never read back to resend.
      const secret = req.secret ?? (req.clear_secret || req.type !== 'webhook' ? undefined : current?.secret);
      const channel = validateChannel({
        name,
        type: req.type,
        url: req.url,
        ...(secret === undefined ? {} : { secret }),
        ...(req.artifact === '' ? {} : { artifact: req.artifact }),
        events: req.events,
        updatedBy: actor.name,
        updatedAt: options.wallClockMs(),
      });
      if (kv === undefined) {
        const { kvs } = await port.range(CHANNEL_PREFIX, { limit: channelsMax });
        if (kvs.length >= channelsMax) throw new CutoverError('CHANNEL_LIMIT', `the cluster has ${kvs.length} notification channels, the most it keeps; delete one first`);
      }
      const result = await port.txn([{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 }], [{ type: 'put', key, value: formatChannel(channel) }]);
      if (result.succeeded) return { channel: pbChannel({ channel, modRevision: result.revision }), created: kv === undefined };
    }
    throw new CutoverError('CONFLICT', `notification channel "${name}" kept changing under ${SET_ATTEMPTS_MAX} attempts; try again`);
  };

  return {
    SetChannel: unaryWithMetadata(set),
    GetChannel: unary(async (req: { name: string }) => ({ channel: pbChannel(await existing(req.name)), created: false })),
    ListChannels: unary(async (req: { artifact: string }) => {
      const artifact = req.artifact === '' ? undefined : requireArtifactBase(req.artifact, 'artifact');
      const { kvs, revision } = await port.range(CHANNEL_PREFIX, { limit: LIST_KEYS_MAX });
      const channels: Record<string, unknown>[] = [];
      for (const kv of kvs) {
        const parsed = parseChannel(kv.key, kv.value);
        if (!parsed.ok) continue; // unreadable: the dispatcher ignores it too (and logs it)
        if (artifact !== undefined && parsed.value.artifact !== undefined && parsed.value.artifact !== artifact) continue;
        channels.push(pbChannel({ channel: parsed.value, modRevision: kv.modRevision }));
      }
      return { channels, revision };
    }),
    DeleteChannel: unary(async (req: { name: string }) => {
      const name = requireChannelName(req.name);
      const result = await port.txn([], [{ type: 'delete', key: channelKey(name) }]);
      const deleted = result.results[0];
      if (deleted?.type !== 'delete' || deleted.deleted.length === 0) throw new ChannelNotFoundError(name);
      return { revision: result.revision };
    }),
    TestChannel: unaryWithMetadata(async (req: { name: string; actor: string }, metadata: Metadata) => {
      const actor = requestActor(metadata, { name: 'actor', value: req.actor });
      const { channel } = await existing(req.name);
      const notice = testNotice(channel.name, actor.name, options.wallClockMs());
      const deliveryId = `test-${port.nodeId}-${++testSequence}`;
      const outcome = await sendNotice(channel, notice, deliveryId, { clock: options.clock, wallClockMs: options.wallClockMs, timeoutMs, responseBytesMax: DEFAULT_NOTIFY_SETTINGS.responseBytesMax }).outcome;
      return {
        delivered: outcome.ok,
        status_code: outcome.status,
        error: outcome.ok ? '' : `${outcome.kind}: ${outcome.message}`,
        duration_ms: Math.round(outcome.durationMs),
        delivery_id: deliveryId,
        event_id: notice.id,
      };
    }),
  };
}
