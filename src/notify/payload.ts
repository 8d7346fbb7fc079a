/**
 * What a channel receives for one event: the generic webhook document, a Slack incoming-webhook
 * body and a Discord execute-webhook body, each with a line of human text that says what happened,
 * to what, by whom and why. Pure functions of the event: no clock (the time is the event's, shown
 * in UTC ISO 8601 so the local time zone never shows through) and no reliance on key order.
 *
 * Delivery is at least once (a retry, or a new leader resuming from its cursor, may send an event
 * again): receivers de-duplicate by the event `id`, which is the same on every send.
 */
import type { EventActor, EventTarget, StoredEvent } from '../events/event.ts';
import type { ChannelType } from './channel.ts';

/** A notification's subject: a stored event, or the synthetic one `TestChannel` sends. */
export interface Notice {
  readonly id: string;
  readonly revision: number;
  /** An event action, or `notify.test`. */
  readonly action: string;
  readonly actor: EventActor;
  readonly target: EventTarget;
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
  /** Wall-clock epoch ms of the writer. */
  readonly at: number;
}

export type Severity = 'info' | 'success' | 'warning' | 'critical';

/** The body bytes and headers of one request (signing headers are added by the sender). */
export interface Payload {
  readonly body: string;
  readonly contentType: 'application/json';
}

export function noticeOf(event: StoredEvent): Notice {
  return {
    id: event.id,
    revision: event.revision,
    action: event.action,
    actor: event.actor,
    target: event.target,
    reason: event.reason,
    ...(event.details === undefined ? {} : { details: event.details }),
    at: event.at,
  };
}

const TITLES: Readonly<Record<string, readonly [string, Severity]>> = {
  'update.started': ['Update started', 'info'],
  'update.paused': ['Update paused by the health gate', 'warning'],
  'update.approval-requested': ['Update waiting for approval', 'warning'],
  'update.rollback-started': ['Rollback started', 'critical'],
  'update.rolled-back': ['Update rolled back', 'critical'],
  'update.completed': ['Update completed', 'success'],
  'update.failed': ['Update failed', 'critical'],
  'instance.unhealthy': ['Instance unhealthy', 'critical'],
  'notify.test': ['Test notification', 'info'],
};

/** The headline and severity of an action (any action: a newer writer may send one we do not name). */
export function titleOf(action: string): { readonly title: string; readonly severity: Severity } {
  const known = TITLES[action];
  return known === undefined ? { title: action, severity: 'info' } : { title: known[0], severity: known[1] };
}

/** `update u-1 of org.example:greeter (1.0.0 → 2.0.0)`-like description of the target. */
export function describeTarget(target: EventTarget, details?: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  if (target.updateId !== undefined) parts.push(`update ${target.updateId}`);
  if (target.instanceId !== undefined) parts.push(`instance ${target.instanceId}`);
  if (target.artifact !== undefined) parts.push(`${parts.length === 0 ? '' : 'of '}${target.artifact}`);
  const from = details?.['oldVersion'];
  const to = details?.['newVersion'];
  if (typeof from === 'string' && typeof to === 'string') parts.push(`(${from} → ${to})`);
  else if (target.version !== undefined) parts.push(target.version);
  if (target.nodeId !== undefined) parts.push(`on node ${target.nodeId}`);
  if (target.memberId !== undefined) parts.push(`member ${target.memberId}`);
  return parts.length === 0 ? 'the cluster' : parts.join(' ');
}

export function describeActor(actor: EventActor): string {
  return actor.kind === 'user' ? actor.name : `${actor.name} (system)`;
}

/** One line: what happened, to what, by whom, why. */
export function summaryOf(notice: Notice): string {
  const { title } = titleOf(notice.action);
  const why = notice.reason.trim() === '' ? '' : `: ${notice.reason.trim()}`;
  return `${title}: ${describeTarget(notice.target, notice.details)}, by ${describeActor(notice.actor)}${why}`;
}

export function isoTime(at: number): string {
  return new Date(at).toISOString();
}

/**
 * `value` with every object's keys sorted (depth-bounded), so the same event gives the same body
 * bytes, and so the same signature, whatever key order its writer used.
 */
export function canonical(value: unknown, depth = 0): unknown {
  if (depth > 32 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => canonical(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The generic JSON document of a webhook channel. */
export function webhookDocument(notice: Notice): Record<string, unknown> {
  const { severity } = titleOf(notice.action);
  return {
    id: notice.id,
    revision: notice.revision,
    action: notice.action,
    severity,
    actor: { kind: notice.actor.kind, name: notice.actor.name },
    target: canonical(notice.target),
    reason: notice.reason,
    details: canonical(notice.details ?? {}),
    time: isoTime(notice.at),
    summary: summaryOf(notice),
  };
}

/** Slack's mrkdwn gives `&`, `<` and `>` meaning; they are escaped as Slack asks. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const SLACK_EMOJI: Readonly<Record<Severity, string>> = { info: ':information_source:', success: ':white_check_mark:', warning: ':warning:', critical: ':rotating_light:' };
/** Slack's limits: a section's text and a context element's text. */
const SLACK_SECTION_TEXT_MAX = 3000;
const SLACK_CONTEXT_TEXT_MAX = 2000;

/** A Slack incoming-webhook body: `text` (the notification's fallback) and `blocks`. */
export function slackDocument(notice: Notice): Record<string, unknown> {
  const { title, severity } = titleOf(notice.action);
  const summary = summaryOf(notice);
  const fields = [
    `*Target:* ${slackEscape(describeTarget(notice.target, notice.details))}`,
    `*By:* ${slackEscape(describeActor(notice.actor))}`,
    ...(notice.reason.trim() === '' ? [] : [`*Why:* ${slackEscape(notice.reason.trim())}`]),
  ];
  return {
    text: cut(slackEscape(summary), SLACK_SECTION_TEXT_MAX),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: cut(`${SLACK_EMOJI[severity]} *${slackEscape(title)}*\n${fields.join('\n')}`, SLACK_SECTION_TEXT_MAX) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: cut(`${notice.action} · event ${slackEscape(notice.id)} · revision ${notice.revision} · ${isoTime(notice.at)}`, SLACK_CONTEXT_TEXT_MAX) }] },
    ],
  };
}

/** Embed colours (RGB as an integer, as Discord takes them) per severity. */
export const DISCORD_COLOURS: Readonly<Record<Severity, number>> = { info: 0x3498db, success: 0x2ecc71, warning: 0xf1c40f, critical: 0xe74c3c };
/** Discord's limits. */
const DISCORD_CONTENT_MAX = 2000;
const DISCORD_TITLE_MAX = 256;
const DISCORD_DESCRIPTION_MAX = 4096;
const DISCORD_FIELD_VALUE_MAX = 1024;

/** A Discord execute-webhook body: `content` plus one embed coloured by severity; mentions off. */
export function discordDocument(notice: Notice): Record<string, unknown> {
  const { title, severity } = titleOf(notice.action);
  const fields = [
    { name: 'Target', value: cut(describeTarget(notice.target, notice.details), DISCORD_FIELD_VALUE_MAX), inline: true },
    { name: 'By', value: cut(describeActor(notice.actor), DISCORD_FIELD_VALUE_MAX), inline: true },
    { name: 'Event', value: cut(`${notice.action} ${notice.id} (revision ${notice.revision})`, DISCORD_FIELD_VALUE_MAX), inline: false },
  ];
  return {
    content: cut(summaryOf(notice), DISCORD_CONTENT_MAX),
    // An event's reason is data: it must not ping @everyone or anyone else.
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: cut(title, DISCORD_TITLE_MAX),
        description: cut(notice.reason.trim() === '' ? summaryOf(notice) : notice.reason.trim(), DISCORD_DESCRIPTION_MAX),
        color: DISCORD_COLOURS[severity],
        timestamp: isoTime(notice.at),
        fields,
      },
    ],
  };
}

/** The request body a channel of `type` gets for `notice`. */
export function payloadFor(type: ChannelType, notice: Notice): Payload {
  const document = type === 'webhook' ? webhookDocument(notice) : type === 'slack' ? slackDocument(notice) : discordDocument(notice);
  return { body: JSON.stringify(document), contentType: 'application/json' };
}
