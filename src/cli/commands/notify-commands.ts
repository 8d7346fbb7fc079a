/**
 * `cutover notify set|list|get|delete|test`, over `cutover.v1.Notifications`: the channels that
 * receive the audit events that notify (a signed JSON webhook, Slack or Discord), cluster-wide or
 * for one artifact. Secrets are write-only: `get` and `list` say whether one is set, never what.
 * Prefer `--secret-env VAR` to `--secret`: a flag's value shows in the shell history and in `ps`.
 */
import { Option, type Command } from 'commander';
import { NOTIFY_ACTIONS } from '../../events/event.ts';
import { CutoverError } from '../../util/errors.ts';
import { CommandFailedError, UsageError } from '../cli-errors.ts';
import type { MessageObject } from '../client/schema.ts';
import { timeWithAge } from '../output/formats.ts';
import { emit, keyValues, table, type Column, type Output } from '../output/output.ts';
import { parseArtifact, runAction, type CommandContext } from './context.ts';
import { osUser } from './context.ts';

const NOTIFICATIONS = 'cutover.v1.Notifications';
const TYPES = ['webhook', 'slack', 'discord'] as const;

interface ChannelView {
  name: string;
  type: string;
  url: string;
  secret_set: boolean;
  artifact: string;
  events: string[];
  updated_by: string;
  updated_at_ms: number;
  revision: number;
}

function scope(channel: ChannelView): string {
  return channel.artifact === '' ? 'cluster' : channel.artifact;
}

/** `all` when the channel takes every notifying action, else the list. */
function eventsText(events: readonly string[]): string {
  return events.length === NOTIFY_ACTIONS.length ? 'all' : events.length === 0 ? 'none' : events.join(',');
}

function channelsTable(output: Output, channels: readonly ChannelView[]): string {
  const columns: Column<ChannelView>[] = [
    { header: 'NAME', cell: (c) => c.name },
    { header: 'TYPE', cell: (c) => c.type },
    { header: 'SCOPE', cell: scope, flexible: 1 },
    { header: 'EVENTS', cell: (c) => eventsText(c.events), flexible: 2 },
    { header: 'SECRET', cell: (c) => (c.secret_set ? 'set' : '-') },
    { header: 'URL', cell: (c) => c.url, flexible: 1 },
  ];
  return table(output, columns, channels, 'no notification channels; add one with `cutover notify set <name> --type webhook --url URL`');
}

function channelView(output: Output, channel: ChannelView): string {
  return keyValues(output, [
    ['name', channel.name],
    ['type', channel.type],
    ['url', channel.url],
    ['secret', channel.secret_set ? 'set (write-only)' : 'none'],
    ['scope', channel.artifact === '' ? 'cluster-wide' : channel.artifact],
    ['events', channel.events.length === 0 ? 'none' : channel.events.join(', ')],
    ['updated', `${timeWithAge(channel.updated_at_ms, output.nowMs)} by ${channel.updated_by}`],
    ['revision', String(channel.revision)],
  ]);
}

/** `update.failed,update.completed` → checked list (the cluster checks again). */
function parseEvents(text: string): string[] {
  const events = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = events.filter((e) => !(NOTIFY_ACTIONS as readonly string[]).includes(e));
  if (events.length === 0 || unknown.length > 0) throw new UsageError(`--events: ${unknown.length > 0 ? `"${unknown.join(', ')}" ${unknown.length === 1 ? 'is not an action' : 'are not actions'} that notify` : 'is empty'}`, `choose from ${NOTIFY_ACTIONS.join(', ')}`);
  return events;
}

/** The secret from --secret or --secret-env (one at most), or undefined. */
function secretOf(flags: Record<string, unknown>): string | undefined {
  const direct = flags.secret as string | undefined;
  const variable = flags.secretEnv as string | undefined;
  if (direct !== undefined && variable !== undefined) throw new UsageError('give --secret or --secret-env, not both', 'prefer --secret-env VAR: a flag\'s value shows in the shell history');
  if (variable === undefined) return direct;
  const value = process.env[variable];
  if (value === undefined || value === '') throw new UsageError(`--secret-env: the environment variable ${variable} is not set or empty`, `export ${variable}=… first`);
  return value;
}

/** The channel refusals in the operator's terms; other errors go through as they are. */
function explain(error: unknown, name: string): unknown {
  if (!(error instanceof CutoverError)) return error;
  if (error.code === 'CHANNEL_NOT_FOUND') return new CommandFailedError(error.code, `no notification channel "${name}"`, 'list them with `cutover notify list`');
  if (error.code === 'CHANNEL_LIMIT') return new CommandFailedError(error.code, error.message, 'delete a channel you no longer need with `cutover notify delete <name>`');
  if (error.code === 'CHANNEL_CORRUPT') return new CommandFailedError(error.code, error.message, `replace it with \`cutover notify set ${name} …\` or remove it with \`cutover notify delete ${name}\``);
  return error;
}

async function callFor(context: CommandContext, method: string, request: MessageObject, name: string, idempotent: boolean): Promise<MessageObject> {
  try {
    return await context.session().unary(`${NOTIFICATIONS}/${method}`, request, { idempotent });
  } catch (error) {
    throw explain(error, name);
  }
}

function setRequest(name: string, flags: Record<string, unknown>): MessageObject {
  const type = String(flags.type);
  if (!(TYPES as readonly string[]).includes(type)) throw new UsageError(`--type must be one of ${TYPES.join(', ')}; got "${type}"`, 'for example `--type webhook`');
  const secret = secretOf(flags);
  if (secret !== undefined && flags.clearSecret === true) throw new UsageError('give a secret or --clear-secret, not both', 'see `cutover notify set --help`');
  return {
    name,
    type,
    url: String(flags.url),
    ...(secret === undefined ? {} : { secret }),
    clear_secret: flags.clearSecret === true,
    artifact: flags.artifact === undefined ? '' : parseArtifact(String(flags.artifact)),
    events: flags.events === undefined ? [] : parseEvents(String(flags.events)),
    actor: typeof flags.actor === 'string' ? flags.actor : osUser(),
  };
}

/** Registers `cutover notify …`. */
export function registerNotifyCommands(program: Command): void {
  const notify = program.command('notify').description('notification channels for update and health events (cutover.v1.Notifications)');

  notify
    .command('set')
    .description('create or replace a channel (a signed JSON webhook, Slack or Discord), cluster-wide or for one artifact')
    .argument('<name>', 'the channel name (a-z, 0-9, . _ -)')
    .addOption(new Option('--type <type>', 'the payload format').choices([...TYPES]).makeOptionMandatory())
    .requiredOption('--url <url>', 'where to POST (http or https)')
    .option('--secret <secret>', 'webhook only: the HMAC-SHA256 key, 16-256 characters (kept when omitted)')
    .option('--secret-env <var>', 'read the secret from this environment variable instead (keeps it out of the shell history)')
    .option('--clear-secret', 'remove the secret (unsigned requests)')
    .option('--artifact <group:artifact>', 'only this artifact\'s events (default: every artifact)')
    .option('--events <actions>', `comma-separated actions (default: all of ${NOTIFY_ACTIONS.join(', ')})`)
    .option('--actor <name>', 'who sets it (default: your user name)')
    .action(
      runAction(async (context, [name], flags) => {
        const request = setRequest(String(name), flags);
        // Setting the same channel twice leaves the same channel: safe to repeat on another node.
        const response = await callFor(context, 'SetChannel', request, String(name), true);
        const channel = response.channel as ChannelView;
        emit(context.output, response, () => `${response.created === true ? 'created' : 'replaced'} channel ${channel.name}: ${channel.type} to ${channel.url}, ${channel.artifact === '' ? 'cluster-wide' : `for ${channel.artifact}`}, events ${eventsText(channel.events)}${channel.secret_set ? ', signed' : ''}\ntry it with \`cutover notify test ${channel.name}\``);
      }),
    );

  notify
    .command('list')
    .description('the channels (secrets are never shown)')
    .option('--artifact <group:artifact>', 'only the channels that take this artifact\'s events')
    .action(
      runAction(async (context, _args, flags) => {
        const artifact = flags.artifact === undefined ? '' : parseArtifact(String(flags.artifact));
        const response = await context.session().unary(`${NOTIFICATIONS}/ListChannels`, { artifact }, { idempotent: true });
        emit(context.output, response, () => channelsTable(context.output, response.channels as ChannelView[]));
      }),
    );

  notify
    .command('get')
    .description('one channel (its secret is never shown)')
    .argument('<name>', 'the channel')
    .action(
      runAction(async (context, [name]) => {
        const response = await callFor(context, 'GetChannel', { name: String(name) }, String(name), true);
        emit(context.output, response, () => channelView(context.output, response.channel as ChannelView));
      }),
    );

  notify
    .command('delete')
    .description('remove a channel (notifications waiting for it are dropped)')
    .argument('<name>', 'the channel')
    .action(
      runAction(async (context, [name]) => {
        // Not repeated on another node: a second delete would answer "no such channel".
        const response = await callFor(context, 'DeleteChannel', { name: String(name) }, String(name), false);
        emit(context.output, response, () => `deleted channel ${String(name)} (revision ${Number(response.revision)})`);
      }),
    );

  notify
    .command('test')
    .description('send a test notification (action notify.test) now and say how it went (exit 1 when it failed)')
    .argument('<name>', 'the channel')
    .option('--actor <name>', 'who sends it (default: your user name)')
    .action(
      runAction(async (context, [name], flags) => {
        const request = { name: String(name), actor: typeof flags.actor === 'string' ? flags.actor : osUser() };
        // A test may be sent twice on a failover; receivers de-duplicate by the event id anyway.
        const response = await callFor(context, 'TestChannel', request, String(name), true);
        const took = `${Number(response.duration_ms)} ms`;
        if (context.output.format !== 'table' || response.delivered === true) emit(context.output, response, () => `delivered to ${String(name)}: HTTP ${Number(response.status_code)} in ${took} (event ${String(response.event_id)}, delivery ${String(response.delivery_id)})`);
        if (response.delivered !== true) {
          throw new CommandFailedError('DELIVERY_FAILED', `test notification to ${String(name)} failed after ${took}: ${String(response.error)}`, 'check the URL and that the receiver is up and answers 2xx; see it with `cutover notify get ' + String(name) + '`');
        }
      }),
    );
}
