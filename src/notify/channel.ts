/**
 * Notification channels as the replicated store keeps them: `notify/channel/{name}`, one JSON record
 * each, cluster-wide or for one artifact, with the event actions it wants. The secret is stored with
 * the record (the store is the cluster's own) and is write-only through the API: `publicChannel`
 * is the only form that leaves the cluster.
 *
 * `validateChannel` checks operator input and throws INVALID_ARGUMENT naming the field;
 * `parseChannel` reads what another node wrote and returns a reason instead of throwing.
 */
import { NOTIFY_ACTIONS, type EventAction } from '../events/event.ts';
import { requireArtifactBase } from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';

export const CHANNEL_PREFIX = 'notify/channel/';
/** The delivery cursor: the last event revision whose notifications every channel has finished. */
export const CURSOR_KEY = 'notify/cursor';

export const CHANNEL_TYPES = ['webhook', 'slack', 'discord'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

export const CHANNEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const CHANNEL_URL_LENGTH_MAX = 2048;
export const CHANNEL_SECRET_LENGTH_MIN = 16;
export const CHANNEL_SECRET_LENGTH_MAX = 256;
/** Channels a cluster keeps (the API refuses more with CHANNEL_LIMIT; the dispatcher ignores more). */
export const CHANNELS_MAX_DEFAULT = 64;

/** A channel as stored. */
export interface ChannelRecord {
  readonly name: string;
  readonly type: ChannelType;
  readonly url: string;
  /** HMAC-SHA256 key (webhook only); absent = unsigned. */
  readonly secret?: string;
  /** `groupId:artifactId`; absent = every artifact (cluster-wide). */
  readonly artifact?: string;
  /** The actions sent, a subset of NOTIFY_ACTIONS, in NOTIFY_ACTIONS order. */
  readonly events: readonly EventAction[];
  /** Who set it last, and when (wall-clock epoch ms). */
  readonly updatedBy: string;
  readonly updatedAt: number;
}

/** A stored channel with the revision of its last change. */
export interface StoredChannel {
  readonly channel: ChannelRecord;
  readonly modRevision: number;
}

/** A channel as Get and List show it: no secret, and the URL's own secrets hidden. */
export interface PublicChannel {
  readonly name: string;
  readonly type: ChannelType;
  readonly url: string;
  readonly secretSet: boolean;
  readonly artifact?: string;
  readonly events: readonly EventAction[];
  readonly updatedBy: string;
  readonly updatedAt: number;
}

/** A channel that does not exist. */
export class ChannelNotFoundError extends CutoverError {
  override readonly name = 'ChannelNotFoundError';
  constructor(channel: string) {
    super('CHANNEL_NOT_FOUND', `notification channel "${channel}" does not exist`);
  }
}

export function channelKey(name: string): string {
  return `${CHANNEL_PREFIX}${name}`;
}

const NOTIFY_ACTION_SET: ReadonlySet<string> = new Set(NOTIFY_ACTIONS);

/** Operator input for a channel, before validation. */
export interface ChannelInput {
  readonly name: string;
  readonly type: string;
  readonly url: string;
  readonly secret?: string;
  readonly artifact?: string;
  /** Empty or absent = every notifying action. */
  readonly events?: readonly string[];
  readonly updatedBy: string;
  readonly updatedAt: number;
}

export function requireChannelName(name: string, field = 'name'): string {
  if (!CHANNEL_NAME_PATTERN.test(name)) throw new InvalidArgumentError(field, `must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
  return name;
}

function requireUrl(text: string): string {
  if (text.length === 0 || text.length > CHANNEL_URL_LENGTH_MAX || /\s/.test(text)) throw new InvalidArgumentError('url', `must be an absolute http or https URL of at most ${CHANNEL_URL_LENGTH_MAX} characters without spaces`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError('url', `must be an absolute http or https URL, got ${JSON.stringify(text.slice(0, 100))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('url', `must use http or https, got ${url.protocol.replace(/:$/, '')}`);
  if (url.hostname === '') throw new InvalidArgumentError('url', 'must name a host');
  return text;
}

function requireEvents(events: readonly string[] | undefined): EventAction[] {
  if (events === undefined || events.length === 0) return [...NOTIFY_ACTIONS];
  for (const action of events) {
    if (!NOTIFY_ACTION_SET.has(action)) throw new InvalidArgumentError('events', `"${action}" is not an action that notifies; use some of ${NOTIFY_ACTIONS.join(', ')}`);
  }
  // Stored in one canonical order, without repeats, whatever order the operator typed.
  return NOTIFY_ACTIONS.filter((action) => events.includes(action));
}

/** Checks operator input; throws INVALID_ARGUMENT naming the field. */
export function validateChannel(input: ChannelInput): ChannelRecord {
  const name = requireChannelName(input.name);
  if (!(CHANNEL_TYPES as readonly string[]).includes(input.type)) throw new InvalidArgumentError('type', `must be one of ${CHANNEL_TYPES.join(', ')}, got ${JSON.stringify(input.type)}`);
  const type = input.type as ChannelType;
  const url = requireUrl(input.url);
  if (input.secret !== undefined) {
    if (type !== 'webhook') throw new InvalidArgumentError('secret', `only webhook channels are signed; a ${type} URL carries its own token`);
    if (input.secret.length < CHANNEL_SECRET_LENGTH_MIN || input.secret.length > CHANNEL_SECRET_LENGTH_MAX) {
      throw new InvalidArgumentError('secret', `must be ${CHANNEL_SECRET_LENGTH_MIN}-${CHANNEL_SECRET_LENGTH_MAX} characters, got ${input.secret.length}`);
    }
  }
  if (input.artifact !== undefined) requireArtifactBase(input.artifact, 'artifact');
  if (input.updatedBy.length === 0 || input.updatedBy.length > 256) throw new InvalidArgumentError('actor', 'must be 1-256 characters');
  return {
    name,
    type,
    url,
    ...(input.secret === undefined ? {} : { secret: input.secret }),
    ...(input.artifact === undefined ? {} : { artifact: input.artifact }),
    events: requireEvents(input.events),
    updatedBy: input.updatedBy,
    updatedAt: input.updatedAt,
  };
}

export function formatChannel(channel: ChannelRecord): string {
  return JSON.stringify(channel);
}

/** Reads a `notify/channel/` entry written by any node. */
export function parseChannel(key: string, value: string): Parsed<ChannelRecord> {
  if (!key.startsWith(CHANNEL_PREFIX)) return refuse(`key must start with ${CHANNEL_PREFIX}`);
  const parsed = parseJsonObject(value);
  if (!parsed.ok) return parsed;
  const { name, type, url, secret, artifact, events, updatedBy, updatedAt } = parsed.value;
  if (typeof name !== 'string' || channelKey(name) !== key) return refuse('name must match the key');
  if (typeof type !== 'string' || typeof url !== 'string') return refuse('type and url must be strings');
  if (secret !== undefined && typeof secret !== 'string') return refuse('secret must be a string');
  if (artifact !== undefined && typeof artifact !== 'string') return refuse('artifact must be a string');
  if (!Array.isArray(events) || events.some((e) => typeof e !== 'string')) return refuse('events must be a list of actions');
  if (typeof updatedBy !== 'string' || typeof updatedAt !== 'number') return refuse('updatedBy and updatedAt must be set');
  try {
    const channel = validateChannel({
      name,
      type,
      url,
      ...(secret === undefined ? {} : { secret }),
      ...(artifact === undefined ? {} : { artifact }),
      events: events as string[],
      updatedBy,
      updatedAt,
    });
    // An empty list on disk means "none", not the default "all" that operator input means.
    return { ok: true, value: events.length === 0 ? { ...channel, events: [] } : channel };
  } catch (error) {
    return refuse(error instanceof Error ? error.message : String(error));
  }
}

/** Whether `channel` wants an event with this action about this artifact. */
export function channelWants(channel: ChannelRecord, action: EventAction, artifact: string | undefined): boolean {
  if (channel.artifact !== undefined && channel.artifact !== artifact) return false;
  return channel.events.includes(action);
}

/**
 * The URL as shown to operators: credentials, query and, for Slack and Discord (whose URL path ends
 * in the webhook's token), the last path segment replaced by `****`.
 */
export function redactUrl(type: ChannelType, text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '****';
  }
  if (url.username !== '' || url.password !== '') {
    url.username = '****';
    url.password = '';
  }
  if (url.search !== '') url.search = '?****';
  if (type !== 'webhook') {
    const segments = url.pathname.split('/');
    if (segments.length > 1 && segments[segments.length - 1] !== '') segments[segments.length - 1] = '****';
    url.pathname = segments.join('/');
  }
  return url.toString();
}

/** The form that leaves the cluster: never the secret. */
export function publicChannel(channel: ChannelRecord): PublicChannel {
  return {
    name: channel.name,
    type: channel.type,
    url: redactUrl(channel.type, channel.url),
    secretSet: channel.secret !== undefined,
    ...(channel.artifact === undefined ? {} : { artifact: channel.artifact }),
    events: channel.events,
    updatedBy: channel.updatedBy,
    updatedAt: channel.updatedAt,
  };
}
