/**
 * How `cutover events` and `cutover update status` show audit events: a table whose rows are
 * the event (local time, age, action, who, what about) with its reason on a second, indented line,
 * so that the reason keeps the width of the terminal (80 columns when stdout is not one).
 */
import { localTime, relativeAge } from './formats.ts';
import { table, type Column, type Output, type Styles } from './output.ts';

/** cutover.v1.Event as decoded (every field present). */
export interface EventView {
  id: string;
  at_ms: number;
  actor: { kind: string; name: string } | null;
  action: string;
  target: { artifact: string; update_id: string; version: string; instance_id: string; node_id: number; member_id: number } | null;
  reason: string;
  details_json: string;
  revision: number;
}

/** What an event is about, shortest first: the update, else artifact:version, else the instance or member. */
export function targetText(event: EventView): string {
  const t = event.target;
  if (t === null) return '-';
  if (t.update_id !== '') return t.update_id;
  if (t.artifact !== '') return t.version === '' ? t.artifact : `${t.artifact}:${t.version}`;
  if (t.instance_id !== '') return t.instance_id;
  if (t.member_id > 0) return `member ${t.member_id}`;
  if (t.node_id > 0) return `node ${t.node_id}`;
  return '-';
}

function actorText(event: EventView): string {
  return event.actor === null ? '-' : event.actor.name;
}

/** Colour for an action: failures red, health-gate pauses and approvals yellow, completions green. */
export function styleAction(styles: Styles, action: string, text = action): string {
  if (/rollback|rolled-back|failed|unhealthy|removed/.test(action)) return styles.red(text);
  if (/completed|healthy$/.test(action)) return styles.green(text);
  if (/paused|approval-requested/.test(action)) return styles.yellow(text);
  return text;
}

function cut(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/**
 * The events as a table, oldest first: TIME (local, to the minute), AGE, ACTION, BY, TARGET, and
 * the reason indented under each row. `showTarget` false drops TARGET (every event is about the
 * same update).
 */
export function eventsTable(output: Output, events: readonly EventView[], empty: string, options: { readonly showTarget?: boolean } = {}): string {
  const columns: Column<EventView>[] = [
    { header: 'TIME', cell: (e) => localTime(e.at_ms) },
    { header: 'AGE', cell: (e) => relativeAge(e.at_ms, output.nowMs).replace(/ ago$/, ''), align: 'right' },
    { header: 'ACTION', cell: (e) => e.action, style: (text, e, s) => styleAction(s, e.action, text) },
    { header: 'BY', cell: actorText, flexible: 1 },
    ...(options.showTarget === false ? [] : [{ header: 'TARGET', cell: targetText, flexible: 2 }]),
  ];
  const rendered = table(output, columns, events, empty);
  if (events.length === 0) return rendered;
  const lines = rendered.trimEnd().split('\n');
  const indent = '    ';
  const out = [lines[0]!];
  events.forEach((event, i) => {
    out.push(lines[i + 1]!);
    if (event.reason !== '') out.push(output.styles.dim(`${indent}${cut(event.reason.replace(/\s+/g, ' '), output.width - indent.length)}`));
  });
  return `${out.join('\n')}\n`;
}

/** One streamed event (`events --watch`, table format): the row and its reason on one line, cut to the width. */
export function eventLine(output: Output, event: EventView): string {
  const head = `${localTime(event.at_ms)}  ${event.action}  ${actorText(event)}  ${targetText(event)}`;
  const line = event.reason === '' ? head : `${head}: ${event.reason.replace(/\s+/g, ' ')}`;
  const text = cut(line, output.width);
  const start = text.indexOf(event.action);
  return `${text.slice(0, start)}${styleAction(output.styles, event.action, event.action)}${text.slice(start + event.action.length)}`;
}
