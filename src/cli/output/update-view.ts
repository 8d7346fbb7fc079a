/**
 * How `cutover update …` shows rolling updates: the list, the status view (also each frame of
 * `update status --watch`: state, current step, a traffic bar of the new:old split, per-version
 * health against the update's thresholds, the last transitions, the recent audit events), health,
 * history and statistics.
 * Every view fits `output.width` (80 columns when stdout is not a terminal).
 */
import { eventsTable, type EventView } from './event-view.ts';
import { localTime, relativeAge, timeWithAge } from './formats.ts';
import { keyValues, table, type Column, type Output, type Styles } from './output.ts';

/** cutover.v1.Transition as decoded. */
export interface UpdateTransition {
  step: string;
  at_ms: number;
  actor: { kind: string; name: string } | null;
  reason: string;
}

/** cutover.v1.Update as decoded (every field present). */
export interface UpdateView {
  id: string;
  artifact: string;
  old_version: string;
  new_version: string;
  state: string;
  paused: boolean;
  pause_reason: string;
  strategy: string;
  routing: string;
  step_index: number;
  steps_total: number;
  target_instances: number;
  max_error_rate: number;
  max_latency_ms: number;
  consecutive_breaches: number;
  failure_threshold: number;
  auto_rollback_enabled: boolean;
  cleanup_policy: string;
  grace_cleanup_at_ms: number;
  next_step_at_ms: number;
  monitoring_until_ms: number;
  rollback: { reason: string; initiated_at_ms: number; initiated_by: { kind: string; name: string } | null; current_failures: number; rolled_back_count: number } | null;
  transitions: UpdateTransition[];
  initiated_by: string;
  created_at_ms: number;
  updated_at_ms: number;
  revision: number;
}

/** cutover.v1.VersionHealth as decoded. */
export interface VersionHealthView {
  version: string;
  request_count: number;
  error_count: number;
  error_rate: number;
  avg_latency_ms: number;
  p99_latency_ms: number;
  collected_at_ms: number;
}

/** cutover.v1.UpdateHealthResponse as decoded. */
export interface HealthView {
  update_id: string;
  old_version: VersionHealthView | null;
  new_version: VersionHealthView | null;
  window_ms: number;
  verdict: string;
  reasons: string[];
  collected_at_ms: number;
}

/** cutover.v1.Release as decoded. */
export interface ReleaseView {
  revision: number;
  artifact: string;
  version: string;
  previous_version: string;
  status: string;
  update_id: string;
  strategy: string;
  started_at_ms: number;
  finished_at_ms: number;
  duration_ms: number;
  initiated_by: string;
  reason: string;
  rollback_of_revision: number;
}

/** cutover.v1.StatisticsResponse as decoded. */
export interface StatisticsView {
  artifact: string;
  total: number;
  successful: number;
  failed: number;
  cancelled: number;
  success_rate: number;
  average_duration_seconds: number;
}

export const TERMINAL_STATES: readonly string[] = ['COMPLETED', 'ROLLED_BACK', 'CANCELLED', 'FAILED'];

export function isTerminalState(state: string): boolean {
  return TERMINAL_STATES.includes(state);
}

/** Colour for a state: done green, failed or rolled back red, in progress yellow. */
export function styleState(styles: Styles, state: string, text = state): string {
  if (state === 'COMPLETED') return styles.green(text);
  if (state === 'ROLLED_BACK' || state === 'FAILED' || state === 'ROLLING_BACK') return styles.red(text);
  if (state === 'CANCELLED') return styles.dim(text);
  return styles.yellow(text);
}

/** `new:old` → weights, or undefined for '' (not routed yet) or anything unreadable. */
export function parseRouting(text: string): { newWeight: number; oldWeight: number } | undefined {
  const match = /^(\d+):(\d+)$/.exec(text);
  if (match === null) return undefined;
  const ratio = { newWeight: Number(match[1]), oldWeight: Number(match[2]) };
  return ratio.newWeight + ratio.oldWeight > 0 ? ratio : undefined;
}

function percent(value: number, digits = 1): string {
  return `${Number((value * 100).toFixed(digits))}%`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `1.2s`, `3m 20s`, `2h 5m`. */
export function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (ms < 10_000) return `${Number((ms / 1000).toFixed(1))}s`;
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

/**
 * `new ██████░░░░░░░░░░░░░░░░░░ old`: the new version's share of `width` cells (rounded, but never
 * all or nothing unless the ratio is).
 */
export function trafficBar(styles: Styles, routing: string, width: number): string {
  const ratio = parseRouting(routing) ?? { newWeight: 0, oldWeight: 1 };
  const share = ratio.newWeight / (ratio.newWeight + ratio.oldWeight);
  let cells = Math.round(share * width);
  if (cells === 0 && ratio.newWeight > 0) cells = 1;
  if (cells === width && ratio.oldWeight > 0) cells = width - 1;
  return `new ${styles.green('█'.repeat(cells))}${styles.dim('░'.repeat(width - cells))} old`;
}

/** `1:3 (25% new)`, or `not routed yet (all old)`. */
export function routingText(routing: string): string {
  const ratio = parseRouting(routing);
  if (ratio === undefined) return 'not routed yet (all old)';
  return `${routing} (${Number(((100 * ratio.newWeight) / (ratio.newWeight + ratio.oldWeight)).toFixed(1))}% new)`;
}

/** `update list`: one row per update. */
export function updatesTable(output: Output, updates: readonly UpdateView[], empty: string): string {
  const columns: Column<UpdateView>[] = [
    { header: 'ID', cell: (u) => u.id },
    { header: 'ARTIFACT', cell: (u) => u.artifact, flexible: 2 },
    { header: 'VERSIONS', cell: (u) => `${u.old_version}→${u.new_version}`, flexible: 1 },
    { header: 'STATE', cell: (u) => `${u.state}${u.paused ? '*' : ''}`, style: (text, u, s) => styleState(s, u.state, text) },
    { header: 'ROUTING', cell: (u) => u.routing || '-' },
    { header: 'AGE', cell: (u) => (u.created_at_ms > 0 ? relativeAge(u.created_at_ms, output.nowMs).replace(/ ago$/, '') : '-'), align: 'right' },
  ];
  const note = updates.some((u) => u.paused) ? `${output.styles.dim('* paused; `cutover update status <id>` says why')}\n` : '';
  return `${table(output, columns, updates, empty)}${note}`;
}

/** What the update waits for next, in words. */
function stepText(update: UpdateView, nowMs: number): string {
  const at = (ms: number): string => `${localTime(ms)} (${relativeAge(ms, nowMs)})`;
  const parts: string[] = [];
  if (update.strategy === 'MANUAL') parts.push(isTerminalState(update.state) ? 'routing was set by the operator' : 'routing is set by the operator (cutover update routing <id> -r new:old)');
  else if (update.steps_total > 0) parts.push(`step ${Math.min(update.step_index, update.steps_total)} of ${update.steps_total} applied`);
  if (update.paused) parts.push(`paused: ${update.pause_reason || 'by an operator'}`);
  if (update.next_step_at_ms > 0 && !isTerminalState(update.state)) parts.push(`next step ${at(update.next_step_at_ms)}`);
  if (update.monitoring_until_ms > 0 && !isTerminalState(update.state)) parts.push(`monitoring until ${at(update.monitoring_until_ms)}`);
  if (update.grace_cleanup_at_ms > 0) parts.push(`old version removed ${at(update.grace_cleanup_at_ms)}`);
  return parts.length === 0 ? '-' : parts.join('; ');
}

/** Cut to `width` with an ellipsis. */
function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/** The per-version health lines, each version against the update's thresholds. */
function healthLines(output: Output, update: UpdateView, health: HealthView | string | undefined): string[] {
  const s = output.styles;
  if (health === undefined) return [];
  if (typeof health === 'string') return [s.yellow(fit(`unavailable: ${health}`, output.width - 12))];
  const row = (role: string, v: VersionHealthView | null, judged: boolean): string => {
    if (v === null) return `${role} -`;
    const calls = `${v.request_count} calls`.padStart(11);
    if (v.request_count === 0) return `${role} ${v.version.padEnd(12)} ${calls}`;
    const errorOk = v.error_rate <= update.max_error_rate;
    const latencyOk = v.p99_latency_ms <= update.max_latency_ms;
    const errorText = `errors ${percent(v.error_rate)}${judged ? ` ${errorOk ? '≤' : '>'} ${percent(update.max_error_rate)}` : ''}`;
    const latencyText = `p99 ${Math.round(v.p99_latency_ms)} ms${judged ? ` ${latencyOk ? '≤' : '>'} ${update.max_latency_ms}` : ''}`;
    const mark = (ok: boolean, text: string): string => (!judged ? text : ok ? s.green(text) : s.red(text));
    const head = `${role} ${v.version.padEnd(12)} ${calls}`;
    // Within the width: the thresholds go first, then the latency, then the errors.
    const room = output.width - 10;
    if (`${head}  ${errorText}  ${latencyText}`.length <= room) return `${head}  ${mark(errorOk, errorText)}  ${mark(latencyOk, latencyText)}`;
    const shortError = `errors ${percent(v.error_rate)}`;
    const shortLatency = `p99 ${Math.round(v.p99_latency_ms)} ms`;
    if (`${head}  ${shortError}  ${shortLatency}`.length <= room) return `${head}  ${mark(errorOk, shortError)}  ${mark(latencyOk, shortLatency)}`;
    if (`${head}  ${shortError}`.length <= room) return `${head}  ${mark(errorOk, shortError)}`;
    return fit(head, room);
  };
  const verdict = health.verdict === 'healthy' ? s.green(health.verdict) : health.verdict === 'breach' ? s.red(health.verdict) : s.yellow(health.verdict || 'unknown');
  const reasons = health.reasons.length > 0 ? `: ${health.reasons.join('; ')}` : '';
  const gate = `breaches ${update.consecutive_breaches}/${update.failure_threshold}, auto-rollback ${update.auto_rollback_enabled ? 'on' : 'off'}`;
  return [
    row('new', health.new_version, true),
    row('old', health.old_version, false),
    `${verdict}${fit(reasons, output.width - 12 - health.verdict.length)}`,
    `${gate}; window ${duration(health.window_ms)}`,
  ];
}

/** Options of the status view. */
export interface StatusViewOptions {
  /** Transitions shown, newest last. */
  readonly transitions: number;
  /** The update's recent audit events, oldest first (absent: not shown). */
  readonly events?: readonly EventView[];
  /** A line after the view (the watch's "refreshed at"). */
  readonly footer?: string;
}

/**
 * `update status` and each frame of `update status --watch`: key/value lines (state, step, traffic,
 * health, rollback), then the last transitions as a table.
 */
export function statusView(output: Output, update: UpdateView, health: HealthView | string | undefined, nowMs: number, options: StatusViewOptions): string {
  const s = output.styles;
  const indent = ' '.repeat(10);
  const state = `${styleState(s, update.state)}${update.paused ? s.yellow(' (paused)') : ''}`;
  const instances = update.target_instances > 0 ? `, ${plural(update.target_instances, 'instance')}` : '';
  const pairs: [string, string][] = [
    ['update', s.bold(update.id)],
    ['artifact', fit(`${update.artifact} ${update.old_version} → ${update.new_version} (${update.strategy}${instances})`, output.width - 10)],
    ['state', state],
    ['step', fit(stepText(update, nowMs), output.width - 10)],
    ['traffic', `${trafficBar(s, update.routing, Math.min(30, output.width - 40))}  ${routingText(update.routing)}`],
  ];
  const lines = healthLines(output, update, health);
  if (lines.length > 0) pairs.push(['health', lines.map((line, i) => (i === 0 ? line : `${indent}${line}`)).join('\n')]);
  if (update.rollback !== null) {
    const who = update.rollback.initiated_by;
    const by = who === null ? 'by ?' : who.kind === 'system' ? 'by the system' : `by ${who.name}`;
    const reason = `${by} ${relativeAge(update.rollback.initiated_at_ms, nowMs)}: ${update.rollback.reason}`;
    pairs.push(['rollback', fit(reason, output.width - 10)]);
  }
  pairs.push(['started', `${timeWithAge(update.created_at_ms, nowMs)} by ${update.initiated_by}`]);
  let text = keyValues(output, pairs);
  const shown = update.transitions.slice(-options.transitions);
  if (shown.length > 0) {
    const columns: Column<UpdateTransition>[] = [
      { header: 'TIME', cell: (e) => clockTime(e.at_ms) },
      { header: 'STEP', cell: (e) => e.step, flexible: 1 },
      { header: 'BY', cell: (e) => (e.actor === null ? '-' : e.actor.kind === 'system' ? 'system' : e.actor.name), flexible: 1 },
      { header: 'REASON', cell: (e) => e.reason, flexible: 2 },
    ];
    const hidden = update.transitions.length - shown.length;
    text += `\n${s.dim(`last transitions${hidden > 0 ? ` (${hidden} earlier not shown)` : ''}`)}\n${table(output, columns, shown, '')}`;
  }
  if (options.events !== undefined && options.events.length > 0) {
    text += `\n${s.dim(`recent events (all: cutover events --update ${update.id})`)}\n${eventsTable(output, options.events, '', { showTarget: false })}`;
  }
  if (options.footer !== undefined) text += `${s.dim(options.footer)}\n`;
  return text;
}

/** `14:03:27` in the local time zone. */
export function clockTime(epochMs: number): string {
  const d = new Date(epochMs);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** `update health`: one row per version, the thresholds, and the gate's verdict. */
export function healthTable(output: Output, health: HealthView, update: UpdateView | undefined): string {
  const rows = [
    ...(health.new_version === null ? [] : [{ role: 'new', v: health.new_version }]),
    ...(health.old_version === null ? [] : [{ role: 'old', v: health.old_version }]),
  ];
  const columns: Column<{ role: string; v: VersionHealthView }>[] = [
    { header: 'ROLE', cell: (r) => r.role },
    { header: 'VERSION', cell: (r) => r.v.version, flexible: 1 },
    { header: 'CALLS', cell: (r) => String(r.v.request_count), align: 'right' },
    { header: 'ERRORS', cell: (r) => String(r.v.error_count), align: 'right' },
    { header: 'ERROR RATE', cell: (r) => (r.v.request_count === 0 ? '-' : percent(r.v.error_rate, 2)), align: 'right' },
    { header: 'AVG MS', cell: (r) => (r.v.request_count === 0 ? '-' : r.v.avg_latency_ms.toFixed(1)), align: 'right' },
    { header: 'P99 MS', cell: (r) => (r.v.request_count === 0 ? '-' : r.v.p99_latency_ms.toFixed(1)), align: 'right' },
  ];
  const s = output.styles;
  const verdict = health.verdict === 'healthy' ? s.green(health.verdict) : health.verdict === 'breach' ? s.red(health.verdict) : s.yellow(health.verdict || 'unknown');
  const lines = [table(output, columns, rows, 'no figures').trimEnd()];
  if (update !== undefined) lines.push(`thresholds: error rate ≤ ${percent(update.max_error_rate, 2)}, p99 ≤ ${update.max_latency_ms} ms; breaches ${update.consecutive_breaches}/${update.failure_threshold}, auto-rollback ${update.auto_rollback_enabled ? 'on' : 'off'}`);
  lines.push(`verdict: ${verdict} over the last ${duration(health.window_ms)}`);
  for (const reason of health.reasons) lines.push(`  - ${fit(reason, output.width - 4)}`);
  return `${lines.join('\n')}\n`;
}

/** `update history`: one row per revision, oldest first. */
export function historyTable(output: Output, releases: readonly ReleaseView[], artifact: string): string {
  const columns: Column<ReleaseView>[] = [
    { header: 'REV', cell: (r) => String(r.revision), align: 'right' },
    { header: 'VERSION', cell: (r) => r.version, flexible: 1 },
    { header: 'FROM', cell: (r) => r.previous_version, flexible: 1 },
    { header: 'STATUS', cell: (r) => r.status, style: (text, r, s) => styleState(s, r.status, text) },
    { header: 'STRATEGY', cell: (r) => r.strategy || '-' },
    { header: 'TOOK', cell: (r) => duration(r.duration_ms), align: 'right' },
    { header: 'FINISHED', cell: (r) => (r.finished_at_ms > 0 ? relativeAge(r.finished_at_ms, output.nowMs) : '-') },
    { header: 'NOTE', cell: (r) => (r.rollback_of_revision > 0 ? `rollback to rev ${r.rollback_of_revision}` : r.reason), flexible: 2 },
  ];
  return table(output, columns, releases, `no finished updates of ${artifact} yet`);
}

/** `update stats`. */
export function statisticsView(output: Output, stats: StatisticsView): string {
  return keyValues(output, [
    ['artifact', stats.artifact],
    ['updates', String(stats.total)],
    ['successful', String(stats.successful)],
    ['failed', `${stats.failed} (failed or rolled back)`],
    ['cancelled', String(stats.cancelled)],
    ['success rate', stats.total === 0 ? '-' : `${Number(stats.success_rate.toFixed(1))}%`],
    ['avg duration', stats.total === 0 ? '-' : duration(stats.average_duration_seconds * 1000)],
  ]);
}
