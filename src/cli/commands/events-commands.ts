/**
 * `cutover events`, over `cutover.v1.Events`: the audit trail — who did what, when and why —
 * filtered by artifact, update, actor, action and age. It shows the newest `--limit` events that
 * match, oldest first; `--watch` then keeps printing new ones as they are committed (Ctrl-C
 * stops), resuming on another node after the last one printed, none twice, none lost.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../cli-errors.ts';
import type { MessageObject } from '../client/schema.ts';
import { eventLine, eventsTable, type EventView } from '../output/event-view.ts';
import { emit, emitItem } from '../output/output.ts';
import { parseArtifact, parseCount, runAction } from './context.ts';

const EVENTS = 'cutover.v1.Events';
/** Most events one List answers (the server's cap). */
const LIMIT_MAX = 1000;

/** `90s`, `10m`, `2h`, `7d` → milliseconds: how far back `--since` looks. */
export function parseAge(flag: string, text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (match === null || Number(match[1]) === 0) throw new UsageError(`${flag} takes an age like 90s, 10m, 2h or 7d; got "${text}"`, `for example \`${flag} 1h\``);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/** The filters of the flags, as the request's fields. */
function filters(flags: Record<string, unknown>): { artifact: string; update_id: string; actor: string; action: string } {
  const text = (name: string): string => (typeof flags[name] === 'string' ? (flags[name] as string) : '');
  return { artifact: text('artifact') === '' ? '' : parseArtifact(text('artifact')), update_id: text('update'), actor: text('actor'), action: text('action') };
}

/** Registers `cutover events`. */
export function registerEventsCommands(program: Command): void {
  program
    .command('events')
    .description('the audit trail: who did what, when and why (newest last); --watch follows it')
    .option('--artifact <group:artifact>', 'only events about this artifact')
    .option('--update <id>', 'only events of this update')
    .option('--actor <name>', 'only events by this actor (alice, controller, health-gate, …)')
    .option('--action <action>', 'only this action (update.rollback-started, slice.deployed, …)')
    .option('--since <age>', 'only events newer than this (90s, 10m, 2h, 7d)')
    .addOption(new Option('--limit <n>', `the newest n events (at most ${LIMIT_MAX})`).default('20'))
    .option('-w, --watch', 'then print new events as they are committed (Ctrl-C stops)')
    .action(
      runAction(async (context, _args, flags) => {
        const limit = parseCount('--limit', String(flags.limit));
        if (limit > LIMIT_MAX) throw new UsageError(`--limit must be at most ${LIMIT_MAX}; got ${limit}`, 'narrow the filters instead');
        const filter = filters(flags);
        const sinceMs = typeof flags.since === 'string' ? context.output.nowMs - parseAge('--since', flags.since) : 0;
        const session = context.session();
        const response = await session.unary(`${EVENTS}/List`, { ...filter, since_ms: Math.max(0, sinceMs), until_ms: 0, limit, order: 'NEWEST_FIRST' }, { idempotent: true });
        const events = [...(response.events as EventView[])].reverse();
        const more = response.more === true;
        const revision = Number(response.revision);
        if (flags.watch !== true) {
          const note = more ? `${context.output.styles.dim(`(older events match too: raise --limit or narrow the filters)`)}\n` : '';
          emit(context.output, { events, more, revision }, () => eventsTable(context.output, events, 'no events match') + note);
          return;
        }
        for (const event of events) emitItem(context.output, event, () => eventLine(context.output, event));
        // A watch resumed on another node starts again at the last revision printed (one transaction
        // can write several events) and skips the ones printed already: none twice, none lost.
        let last = revision;
        let printedAtLast = new Set<string>();
        const request = (): MessageObject => ({ ...filter, from_revision: printedAtLast.size > 0 ? last : last + 1 });
        await session.serverStream(
          `${EVENTS}/Watch`,
          request,
          (message) => {
            const event = message as unknown as EventView;
            const at = Number(event.revision);
            if (at < last || (at === last && printedAtLast.has(event.id))) return true;
            if (at > last) {
              last = at;
              printedAtLast = new Set();
            }
            printedAtLast.add(event.id);
            emitItem(context.output, event, () => eventLine(context.output, event));
            return true;
          },
          { idempotent: true },
        );
      }),
    );
}
