/**
 * `cutover update …`, over `cutover.v1.RollingUpdates` (Aether's command names and its guide's
 * flags): start, routing, status [--watch], list, health, complete, rollback, pause, resume,
 * cancel, promote, approve, history, stats, rollback-to.
 *
 * Where a command takes `<id>`, a `group:artifact` works too: it names the artifact's active
 * update, or its latest one when none is active (update ids never contain a colon).
 *
 * A refusal is one line in the operator's terms, phrased from the API's error code and the
 * update's record: "update X is ROUTING at 1:3; complete needs routing 1:0 — run `cutover update
 * routing X -r 1:0` first". Exit code 1.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { monotonicClock } from '../../platform/clock.ts';
import { sleep } from '../../platform/wait.ts';
import { epochMs } from '../../platform/wall-clock.ts';
import { CLEANUP_POLICIES, HEALTH_PRESET_NAMES, HEALTH_PRESETS, START_DEFAULTS, STRATEGIES, parseRatio } from '../../updates/request.ts';
import { CutoverError } from '../../util/errors.ts';
import { CommandFailedError, UnreachableError, UsageError } from '../cli-errors.ts';
import { cacheDirectory } from '../client/descriptor-cache.ts';
import type { MessageObject } from '../client/schema.ts';
import { Session } from '../client/session.ts';
import type { EventView } from '../output/event-view.ts';
import { emit, emitItem, type Output } from '../output/output.ts';
import {
  healthTable,
  historyTable,
  isTerminalState,
  routingText,
  statisticsView,
  statusView,
  updatesTable,
  type HealthView,
  type ReleaseView,
  type StatisticsView,
  type UpdateView,
} from '../output/update-view.ts';
import { osUser, parseArtifact, parseCount, parseDuration, parseEndpoints, parseJsonArgument, runAction, type CommandContext, type GlobalFlags } from './context.ts';

const UPDATES = 'cutover.v1.RollingUpdates';
/** Transitions shown by `update status`. */
const STATUS_TRANSITIONS = 6;
/** How often `update start --wait` looks. */
const WAIT_POLL_MS = 250;


/** A non-negative number (fraction, percent or seconds) typed on the command line. */
function parseNumber(flag: string, text: string, { min, max, integer }: { min: number; max: number; integer: boolean }): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]; got "${text}"`, `see \`cutover update start --help\``);
  }
  return value;
}

/** `10,50,100` → [10, 50, 100]. */
function parsePercentList(flag: string, text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d{1,3}$/.test(p))) throw new UsageError(`${flag} takes percentages like 10,50,100; got "${text}"`, 'for example `--steps 10,25,50`');
  return parts.map(Number);
}

/** The id a `<id>` argument names: an update id, or `group:artifact` for the artifact's active (else latest) update. */
async function resolveId(session: Session, argument: string): Promise<string> {
  if (!argument.includes(':')) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(argument)) throw new UsageError(`"${argument}" is not an update id or group:artifact`, 'list updates with `cutover update list --all`');
    return argument;
  }
  const artifact = parseArtifact(argument);
  const response = await session.unary(`${UPDATES}/List`, { artifact, state: '', all: true }, { idempotent: true });
  const updates = response.updates as UpdateView[];
  const active = updates.filter((u) => !isTerminalState(u.state));
  const pick = (active.length > 0 ? active : updates).reduce<UpdateView | undefined>((best, u) => (best === undefined || u.created_at_ms > best.created_at_ms ? u : best), undefined);
  if (pick === undefined) throw new CommandFailedError('NO_UPDATE', `${artifact} has no rolling updates`, `start one with \`cutover update start ${artifact} <version>\``);
  return pick.id;
}

async function getUpdate(session: Session, id: string): Promise<UpdateView> {
  return (await session.unary(`${UPDATES}/Get`, { update_id: id }, { idempotent: true })).update as UpdateView;
}

/** Health, or why it is not available (a string), without failing the caller. */
async function healthOrReason(session: Session, id: string): Promise<HealthView | string> {
  try {
    return (await session.unary(`${UPDATES}/Health`, { update_id: id }, { idempotent: true })) as unknown as HealthView;
  } catch (error) {
    if (error instanceof UnreachableError) throw error;
    return error instanceof Error ? error.message : String(error);
  }
}

/** Recent events shown by `update status`. */
const STATUS_EVENTS = 5;

/**
 * The update's newest audit events, oldest first; undefined when the node has no Events service
 * (an older Cutover) or the call fails otherwise: the status shows without them.
 */
async function recentEvents(session: Session, id: string): Promise<EventView[] | undefined> {
  try {
    const response = await session.unary('cutover.v1.Events/List', { update_id: id, limit: STATUS_EVENTS, order: 'NEWEST_FIRST' }, { idempotent: true });
    return [...(response.events as EventView[])].reverse();
  } catch (error) {
    if (error instanceof UnreachableError) throw error;
    return undefined;
  }
}

/** What to do about an update in `state`, for a command that did not fit it. */
function nextMoveHint(update: UpdateView): string {
  const id = update.id;
  if (isTerminalState(update.state)) return `it is finished; start a new one with \`cutover update start ${update.artifact} <version>\``;
  switch (update.state) {
    case 'PENDING':
    case 'VALIDATING':
    case 'DEPLOYING':
      return `wait for its new instances: \`cutover update status ${id} --watch\``;
    case 'ROLLING_BACK':
      return `it is rolling back; follow it with \`cutover update status ${id} --watch\``;
    case 'COMPLETING':
      return `it is completing; follow it with \`cutover update status ${id} --watch\``;
    default:
      return `see \`cutover update status ${id}\``;
  }
}

/**
 * A refusal of `action` on update `id`, in the operator's terms (see the module comment). Errors
 * it does not know are returned as they are (the generic hints of cli-errors.ts apply).
 */
async function explain(session: Session, error: unknown, action: string, id: string): Promise<unknown> {
  if (!(error instanceof CutoverError) || error instanceof UnreachableError) return error;
  const code = error.code;
  if (code === 'UPDATE_NOT_FOUND') return new CommandFailedError(code, `no rolling update ${id}`, 'list them with `cutover update list --all`');
  const known = ['ROUTING_INCOMPLETE', 'INVALID_TRANSITION', 'UPDATE_NOT_ROUTING', 'STRATEGY_MISMATCH', 'NOTHING_TO_APPROVE'];
  if (!known.includes(code)) return error;
  const update = await getUpdate(session, id).catch(() => undefined);
  if (update === undefined) return error;
  const at = update.routing === '' ? '' : ` at ${update.routing}`;
  const where = `update ${id} is ${update.state}${update.paused ? ' (paused)' : ''}${at}`;
  switch (code) {
    case 'ROUTING_INCOMPLETE':
      return new CommandFailedError(code, `${where}; complete needs routing 1:0`, `run \`cutover update routing ${id} -r 1:0\` first`);
    case 'STRATEGY_MISMATCH':
      return update.strategy === 'MANUAL'
        ? new CommandFailedError(code, `${where}; a MANUAL update has no plan to ${action}`, `shift traffic with \`cutover update routing ${id} -r 1:0\`, then \`cutover update complete ${id}\``)
        : new CommandFailedError(code, `${where}; its ${update.strategy} plan sets the routing`, `use \`cutover update pause|promote|approve|rollback ${id}\`, or start a MANUAL update to set it by hand`);
    case 'NOTHING_TO_APPROVE':
      return new CommandFailedError(code, `${where}; ${error.message.replace(/^update \S+: /, '')}`, `approve is for STAGED updates and --manual-approval; see \`cutover update status ${id}\``);
    default: {
      const hint = action === 'cancel' && !isTerminalState(update.state) ? `it has deployed already; roll it back with \`cutover update rollback ${id}\`` : action === 'routing' && (update.state === 'DEPLOYING' || update.state === 'PENDING' || update.state === 'VALIDATING') ? `wait for DEPLOYED: \`cutover update status ${id} --watch\`` : nextMoveHint(update);
      return new CommandFailedError(code, `${where}; cannot ${action} it now`, hint);
    }
  }
}

/** A refused Start, in the operator's terms. */
function explainStart(error: unknown, artifact: string, version: string): unknown {
  if (!(error instanceof CutoverError) || error instanceof UnreachableError) return error;
  if (error.code === 'UPDATE_ACTIVE') {
    const active = /update (\S+) of \S+ is (\w+)/.exec(error.message);
    if (active !== null) return new CommandFailedError(error.code, `update ${active[1]} of ${artifact} is ${active[2]}; one update per artifact at a time`, `follow it with \`cutover update status ${active[1]}\`, or finish it (complete, rollback or cancel) first`);
  }
  if (error.code === 'ARTIFACT_NOT_FOUND' && error.message.includes(version)) return new CommandFailedError(error.code, error.message, `publish ${artifact} ${version} first with \`cutover slice publish <dir>\``);
  if (error.code === 'NOT_DEPLOYED') return new CommandFailedError(error.code, error.message, `a rolling update replaces a running version; deploy the first one with \`cutover slice deploy ${artifact} <version>\``);
  return error;
}

/** One line about a command's outcome. */
function outcomeLine(output: Output, response: MessageObject, action: string): string {
  const update = response.update as UpdateView;
  const what = `${output.styles.bold(`update ${update.id}`)}`;
  const now = `now ${update.state}${update.paused ? ' (paused)' : ''}, routing ${routingText(update.routing)}`;
  if (response.changed !== true) return `${what}: nothing to ${action} (${String(response.detail)}); ${now}`;
  return `${what}: ${String(response.detail)}; ${now}`;
}

/** An option whose default the server applies: the default is named in the help, not sent. */
function withDefault(flags: string, description: string, fallback: string): Option {
  return new Option(flags, `${description} (default: ${fallback})`);
}

/** The `--reason` option. */
function reasonOption(): Option {
  return new Option('--reason <text>', 'why, for the transition log (default: "<action> by an operator")');
}

/** The `--actor` option of commands that change an update. */
function actorOption(): Option {
  return withDefault('--actor <name>', 'who, for the transition log', 'the OS user');
}

/** The request fields every command carries. */
function commandRequest(id: string, flags: Record<string, unknown>): MessageObject {
  return { update_id: id, actor: typeof flags.actor === 'string' ? flags.actor : osUser(), reason: typeof flags.reason === 'string' ? flags.reason : '' };
}

/** Runs one of the commands that change an update (idempotent: a repeat answers changed=false). */
async function changeUpdate(context: CommandContext, method: string, action: string, idArg: string, extra: (id: string) => MessageObject): Promise<void> {
  const session = context.session();
  const id = await resolveId(session, idArg);
  let response: MessageObject;
  try {
    response = await session.unary(`${UPDATES}/${method}`, extra(id), { idempotent: true });
  } catch (error) {
    throw await explain(session, error, action, id);
  }
  emit(context.output, response, () => outcomeLine(context.output, response, action));
}

/**
 * `--health-checks`: inline JSON (starting with `{`) or a file holding it, in slice.json's
 * `healthChecks` form; checked here as JSON only (the node checks the rest, naming the field).
 */
function healthChecksJson(value: string | undefined): string {
  if (value === undefined) return '';
  let text = value;
  if (!value.trimStart().startsWith('{')) {
    try {
      text = readFileSync(value, 'utf8');
    } catch (error) {
      throw new UsageError(`--health-checks: cannot read ${value} (${error instanceof Error ? error.message : String(error)})`, 'give a JSON file or inline JSON like \'{"checks":[{"type":"http","path":"/healthz"}]}\'');
    }
  }
  return JSON.stringify(parseJsonArgument('--health-checks', text));
}

/** The StartUpdateRequest of `update start`'s arguments and flags. */
export function startRequest(artifact: string, version: string, flags: Record<string, unknown>): MessageObject {
  const text = (name: string): string | undefined => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const int = (name: string, flag: string, min: number, max: number): number | undefined => {
    const value = text(name);
    return value === undefined ? undefined : parseNumber(flag, value, { min, max, integer: true });
  };
  const upper = (name: string): string => (text(name) ?? '').toUpperCase().replace(/-/g, '_');
  const strategy = upper('strategy');
  if (strategy !== '' && !(STRATEGIES as readonly string[]).includes(strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}; got "${text('strategy')}"`, 'for example `--strategy CANARY`');
  const preset = upper('preset');
  if (preset !== '' && !(HEALTH_PRESET_NAMES as readonly string[]).includes(preset)) throw new UsageError(`--preset must be default, strict or relaxed; got "${text('preset')}"`, 'for example `--preset strict`');
  const cleanup = upper('cleanup');
  if (cleanup !== '' && !(CLEANUP_POLICIES as readonly string[]).includes(cleanup)) throw new UsageError(`--cleanup must be one of ${CLEANUP_POLICIES.join(', ')}; got "${text('cleanup')}"`, 'for example `--cleanup IMMEDIATE`');
  const maxErrorRate = text('maxErrorRate');
  const steps = text('steps');
  const request: MessageObject = {
    artifact,
    version,
    strategy,
    health_preset: preset,
    cleanup_policy: cleanup,
    initiated_by: text('initiatedBy') ?? osUser(),
    health_checks_json: healthChecksJson(text('healthChecks')),
    steps: steps === undefined ? [] : parsePercentList('--steps', steps),
    instances: text('instances') === undefined ? undefined : parseCount('--instances', text('instances')!),
    canary_percentage: int('canaryPercent', '--canary-percent', 1, 99),
    batch_size: int('batchSize', '--batch-size', 1, 1_000_000),
    batch_delay_seconds: int('batchDelay', '--batch-delay', 0, 86_400),
    max_unavailable_percentage: int('maxUnavailable', '--max-unavailable', 0, 100),
    monitoring_seconds: int('monitoring', '--monitoring', 0, 86_400),
    deploy_timeout_seconds: int('deployTimeout', '--deploy-timeout', 1, 86_400),
    max_error_rate: maxErrorRate === undefined ? undefined : parseNumber('--max-error-rate', maxErrorRate, { min: 0, max: 1, integer: false }),
    max_latency_ms: int('maxLatencyMs', '--max-latency-ms', 1, 600_000),
    min_request_count: int('minRequests', '--min-requests', 1, 1_000_000),
    health_evaluation_interval_seconds: int('healthInterval', '--health-interval', 1, 3600),
    auto_rollback_enabled: flags.autoRollback === false ? false : undefined,
    failure_threshold: int('failureThreshold', '--failure-threshold', 1, 100),
    require_manual_approval: flags.manualApproval === true ? true : undefined,
    grace_period_seconds: int('gracePeriod', '--grace-period', 1, 604_800),
  };
  // Unset optional fields stay unset: the server applies its defaults (and the preset's thresholds).
  for (const key of Object.keys(request)) if (request[key] === undefined) delete request[key];
  return request;
}

/** A session of its own for each stretch of `update status --watch` (a session's calls share one --timeout). */
class WatchSessions {
  private session: Session | undefined;
  constructor(
    private readonly endpoints: readonly string[],
    private readonly timeoutMs: number,
    private readonly debug: boolean,
  ) {}

  current(): Session {
    if (this.session !== undefined && this.session.remainingMs() > this.timeoutMs / 2) return this.session;
    this.session?.close();
    this.session = new Session({ endpoints: this.endpoints, timeoutMs: this.timeoutMs, cacheDirectory: cacheDirectory(process.env), actor: osUser(), ...(this.debug ? { trace: (line: string) => process.stderr.write(`cutover: ${line}\n`) } : {}) });
    return this.session;
  }

  close(): void {
    this.session?.close();
  }
}

/** What a snapshot shows that matters for printing another one (health figures change every poll). */
function snapshotKey(update: UpdateView, health: HealthView | string): string {
  return JSON.stringify([update.state, update.paused, update.routing, update.step_index, update.transitions.length, update.consecutive_breaches, typeof health === 'string' ? 'unavailable' : health.verdict]);
}

/**
 * `update status --watch`: on a terminal (table output) the view is redrawn in place every
 * `intervalMs`; otherwise a snapshot is printed each time the update changes (JSON: one line
 * each). Returns the update once it is in a terminal state. A node that goes away is skipped for
 * the next; the watch gives up after --timeout without an answer.
 */
async function watchStatus(context: CommandContext, sessions: WatchSessions, idArg: string, intervalMs: number): Promise<UpdateView> {
  const output = context.output;
  const redraw = output.format === 'table' && process.stdout.isTTY === true;
  const fixedNow = Number(process.env.CUTOVER_NOW_MS);
  const now = (): number => (Number.isFinite(fixedNow) && fixedNow > 0 ? fixedNow : epochMs());
  const id = await resolveId(sessions.current(), idArg);
  let lastKey = '';
  let lastLines = 0;
  let lastAnswerMs = monotonicClock.nowMs();
  for (;;) {
    let update: UpdateView;
    let health: HealthView | string;
    try {
      const session = sessions.current();
      update = await getUpdate(session, id);
      health = await healthOrReason(session, id);
      lastAnswerMs = monotonicClock.nowMs();
    } catch (error) {
      const known = error instanceof CutoverError && (error.code === 'UPDATE_NOT_FOUND' || error.code === 'USAGE');
      if (known || monotonicClock.nowMs() - lastAnswerMs > context.timeoutMs) throw await explain(sessions.current(), error, 'watch', id);
      await sleep(intervalMs);
      continue;
    }
    const terminal = isTerminalState(update.state);
    if (redraw) {
      const footer = terminal ? `${update.state}: the update is finished` : `refreshed ${new Date(now()).toLocaleTimeString()} every ${intervalMs / 1000}s; Ctrl-C stops watching (the update goes on)`;
      const frame = statusView(output, update, health, now(), { transitions: 5, footer });
      // Up to the first line of the last frame, clear to the end of the screen, draw.
      output.write(`${lastLines > 0 ? `\u001b[${lastLines}F\u001b[0J` : ''}${frame}`);
      lastLines = frame.split('\n').length - 1;
    } else {
      const key = snapshotKey(update, health);
      if (key !== lastKey || terminal) {
        const separator = lastLines > 0 ? '\n' : '';
        lastKey = key;
        lastLines++;
        if (output.format === 'table') output.write(`${separator}${statusView(output, update, health, now(), { transitions: 3 })}`);
        else emitItem(output, { update, health: typeof health === 'string' ? null : health }, () => '');
      }
    }
    if (terminal) return update;
    await sleep(intervalMs);
  }
}

/** Polls until update `id` has left PENDING, VALIDATING and DEPLOYING. */
async function untilDeployed(context: CommandContext, sessions: WatchSessions, id: string): Promise<UpdateView> {
  let lastAnswerMs = monotonicClock.nowMs();
  for (;;) {
    try {
      const u = await getUpdate(sessions.current(), id);
      lastAnswerMs = monotonicClock.nowMs();
      if (!['PENDING', 'VALIDATING', 'DEPLOYING'].includes(u.state)) return u;
    } catch (error) {
      if (monotonicClock.nowMs() - lastAnswerMs > context.timeoutMs) throw error;
    }
    await sleep(WAIT_POLL_MS);
  }
}

/** Registers `cutover update …`. */
export function registerUpdateCommands(program: Command): void {
  const update = program.command('update').description('rolling updates: start, steer, watch and roll back (cutover.v1.RollingUpdates)');
  const idArgument = ['<id>', 'an update id, or group:artifact for its active (else latest) update'] as const;

  const start = update
    .command('start')
    .description('start a rolling update of a deployed artifact to a published version (new instances start at 0% traffic)')
    .argument('<group:artifact>', 'the artifact')
    .argument('<version>', 'a published version')
    .addOption(withDefault('-i, --instances <n>', 'new-version instances', 'as many as the current version runs'))
    .addOption(withDefault('--strategy <name>', `${STRATEGIES.join(', ')}`, START_DEFAULTS.strategy))
    .addOption(withDefault('--max-error-rate <r>', 'error-rate threshold as a fraction (0.01 = 1%)', `the preset's, ${HEALTH_PRESETS.DEFAULT.maxErrorRate}`))
    .addOption(withDefault('--max-latency-ms <ms>', 'p99 latency threshold', `the preset's, ${HEALTH_PRESETS.DEFAULT.maxLatencyMs}`))
    .addOption(withDefault('--preset <name>', 'thresholds: default (1%, 500 ms), strict (0.1%, 200 ms), relaxed (5%, 1000 ms)', 'default'))
    .addOption(withDefault('--manual-approval', 'every routing step waits for `cutover update approve`', String(START_DEFAULTS.requireManualApproval)))
    .addOption(withDefault('--cleanup <policy>', `old version after completion: ${CLEANUP_POLICIES.join(', ')}`, START_DEFAULTS.cleanupPolicy))
    .addOption(withDefault('--grace-period <s>', 'seconds the old version stays with --cleanup GRACE_PERIOD', String(START_DEFAULTS.gracePeriodSeconds)))
    .addOption(withDefault('--canary-percent <p>', 'CANARY: the first step\'s share of traffic', String(START_DEFAULTS.canaryPercentage)))
    .addOption(withDefault('--steps <list>', 'CANARY steps or STAGED stages in percent, like 10,50,100', `CANARY ${START_DEFAULTS.canarySteps.join(',')}`))
    .addOption(withDefault('--batch-size <n>', 'ROLLING: instances per batch', String(START_DEFAULTS.batchSize)))
    .addOption(withDefault('--batch-delay <s>', 'seconds between automatic steps', String(START_DEFAULTS.batchDelaySeconds)))
    .addOption(withDefault('--max-unavailable <p>', 'ROLLING: percent of instances that may be down', String(START_DEFAULTS.maxUnavailablePercentage)))
    .addOption(withDefault('--monitoring <s>', 'seconds an automatic strategy holds 100% before it completes', String(START_DEFAULTS.monitoringSeconds)))
    .addOption(withDefault('--deploy-timeout <s>', 'seconds new instances get to become ACTIVE', String(START_DEFAULTS.deployTimeoutSeconds)))
    .addOption(withDefault('--health-interval <s>', 'seconds between health evaluations', String(START_DEFAULTS.healthEvaluationIntervalSeconds)))
    .addOption(withDefault('--min-requests <n>', 'fewer calls in a window are not judged', String(START_DEFAULTS.minRequestCount)))
    .addOption(new Option('--no-auto-rollback', 'only pause on a breach; never roll back on its own'))
    .addOption(withDefault('--failure-threshold <n>', 'breaching evaluations in a row that start a rollback', String(START_DEFAULTS.failureThreshold)))
    .addOption(withDefault('--initiated-by <name>', 'who starts it', 'the OS user'))
    .addOption(withDefault('--health-checks <file|json>', "the new version's health checks (slice.json healthChecks form), replacing its own", "the version's own"))
    .option('--wait', 'return once the new instances are ACTIVE (DEPLOYED or ROUTING), so that `update routing` can follow; exit 1 if it ends first');
  start.action(
    runAction(async (context, [artifactArg, versionArg], flags) => {
      const artifact = parseArtifact(String(artifactArg));
      const version = String(versionArg);
      const request = startRequest(artifact, version, flags);
      let response: MessageObject;
      try {
        // Not idempotent: a repeated Start answers UPDATE_ACTIVE.
        response = await context.session().unary(`${UPDATES}/Start`, request, { idempotent: false });
      } catch (error) {
        throw explainStart(error, artifact, version);
      }
      let u = response.update as UpdateView;
      if (flags.wait === true) {
        const globals = start.optsWithGlobals<GlobalFlags>();
        const sessions = new WatchSessions(parseEndpoints(globals.endpoints), context.timeoutMs, context.debug);
        try {
          u = await untilDeployed(context, sessions, u.id);
        } finally {
          sessions.close();
        }
        response = { ...response, update: u };
        if (isTerminalState(u.state)) {
          const last = u.transitions.at(-1);
          emit(context.output, response, () => '');
          throw new CommandFailedError(u.state, `update ${u.id} ended ${u.state} before its new instances were ACTIVE${last === undefined ? '' : `: ${last.reason}`}`, `see \`cutover update status ${u.id}\``);
        }
      }
      const next = u.strategy === 'MANUAL' ? `shift traffic with \`cutover update routing ${u.id} -r 1:9\`` : `follow it with \`cutover update status ${u.id} --watch\``;
      const deployed = flags.wait === true ? `its ${u.target_instances} new instances are ACTIVE at routing ${u.routing || '0:1'}` : 'new instances start at 0% traffic';
      emit(context.output, response, () => `started update ${context.output.styles.bold(u.id)}: ${u.artifact} ${u.old_version} → ${u.new_version} (${u.strategy}); ${deployed} — ${next}`);
    }),
  );

  update
    .command('routing')
    .description('set the new:old traffic ratio of a MANUAL update (1:3 = 25% new, 1:0 = all new)')
    .argument(...idArgument)
    .requiredOption('-r, --ratio <new:old>', 'the ratio, like 1:9, 1:3, 1:1, 1:0')
    .addOption(reasonOption())
    .addOption(actorOption())
    .action(
      runAction(async (context, [idArg], flags) => {
        const ratio = String(flags.ratio);
        try {
          parseRatio(ratio);
        } catch (error) {
          throw new UsageError(`-r ${ratio}: ${error instanceof Error ? error.message.replace(/^ratio: /, '') : String(error)}`, 'for example `-r 1:3` (25% new)');
        }
        await changeUpdate(context, 'SetRouting', 'routing', String(idArg), (id) => ({ ...commandRequest(id, flags), ratio }));
      }),
    );

  const status = update
    .command('status')
    .description('an update\'s state, step, traffic split, health and last transitions')
    .argument(...idArgument)
    .option('-w, --watch', 'keep showing it until the update finishes (redrawn in place on a terminal); exit 1 unless it COMPLETED')
    .addOption(new Option('--interval <duration>', 'refresh period of --watch').default('1s'));
  status.action(
    runAction(async (context, [idArg], flags) => {
      if (flags.watch === true) {
        const globals = status.optsWithGlobals<GlobalFlags>();
        const sessions = new WatchSessions(parseEndpoints(globals.endpoints), context.timeoutMs, context.debug);
        try {
          const done = await watchStatus(context, sessions, String(idArg), parseDuration('--interval', String(flags.interval)));
          if (done.state !== 'COMPLETED') process.exitCode = 1;
        } finally {
          sessions.close();
        }
        return;
      }
      const session = context.session();
      const id = await resolveId(session, String(idArg));
      let u: UpdateView;
      try {
        u = await getUpdate(session, id);
      } catch (error) {
        throw await explain(session, error, 'show', id);
      }
      const health = await healthOrReason(session, id);
      const events = await recentEvents(session, id);
      const data = { update: u, health: typeof health === 'string' ? null : health, ...(events === undefined ? {} : { events }) };
      emit(context.output, data, () => statusView(context.output, u, health, context.output.nowMs, { transitions: STATUS_TRANSITIONS, ...(events === undefined ? {} : { events }) }));
    }),
  );

  update
    .command('list')
    .description('active updates (--all adds finished ones), oldest first')
    .argument('[group:artifact]', 'only this artifact')
    .option('-a, --all', 'finished updates too')
    .addOption(new Option('--state <state>', 'only updates in this state, like ROUTING'))
    .action(
      runAction(async (context, [artifactArg], flags) => {
        const artifact = artifactArg === undefined ? '' : parseArtifact(String(artifactArg));
        const state = typeof flags.state === 'string' ? flags.state.toUpperCase() : '';
        const response = await context.session().unary(`${UPDATES}/List`, { artifact, state, all: flags.all === true }, { idempotent: true });
        const updates = [...(response.updates as UpdateView[])].sort((a, b) => a.created_at_ms - b.created_at_ms || a.id.localeCompare(b.id));
        const empty = flags.all === true ? 'no rolling updates yet; start one with `cutover update start <group:artifact> <version>`' : 'no active rolling updates (`--all` shows finished ones)';
        emit(context.output, { ...response, updates }, () => updatesTable(context.output, updates, empty));
      }),
    );

  update
    .command('health')
    .description('the old and new versions\' call metrics as the health gate sees them, against the thresholds')
    .argument(...idArgument)
    .action(
      runAction(async (context, [idArg]) => {
        const session = context.session();
        const id = await resolveId(session, String(idArg));
        let health: HealthView;
        try {
          health = (await session.unary(`${UPDATES}/Health`, { update_id: id }, { idempotent: true })) as unknown as HealthView;
        } catch (error) {
          throw await explain(session, error, 'read the health of', id);
        }
        const u = context.output.format === 'table' ? await getUpdate(session, id).catch(() => undefined) : undefined;
        emit(context.output, health, () => healthTable(context.output, health, u));
      }),
    );

  const commands: [name: string, method: string, description: string][] = [
    ['complete', 'Complete', 'finish a MANUAL update at routing 1:0; the old version goes by the cleanup policy'],
    ['rollback', 'Rollback', 'send all traffic back to the old version at once, then stop the new instances'],
    ['pause', 'Pause', 'hold progression where it is (traffic stays as it is)'],
    ['resume', 'Resume', 'continue a paused update from the step where it stopped'],
    ['cancel', 'Cancel', 'cancel an update that has deployed nothing yet (later: rollback)'],
    ['promote', 'Promote', 'skip an automatic update to its last step (100% new)'],
  ];
  for (const [name, method, description] of commands) {
    update
      .command(name)
      .description(description)
      .argument(...idArgument)
      .addOption(reasonOption())
      .addOption(actorOption())
      .action(runAction(async (context, [idArg], flags) => changeUpdate(context, method, name, String(idArg), (id) => commandRequest(id, flags))));
  }

  update
    .command('approve')
    .description('approve the next routing step (STAGED, or an update started with --manual-approval)')
    .argument(...idArgument)
    .addOption(new Option('--step <n>', 'the step you approve, 1-based; refused unless it is the next one'))
    .addOption(reasonOption())
    .addOption(actorOption())
    .action(
      runAction(async (context, [idArg], flags) => {
        const step = typeof flags.step === 'string' ? parseCount('--step', flags.step) - 1 : undefined;
        await changeUpdate(context, 'Approve', 'approve', String(idArg), (id) => ({ ...commandRequest(id, flags), ...(step === undefined ? {} : { step_index: step }) }));
      }),
    );

  update
    .command('history')
    .description('finished updates of an artifact, one revision each, oldest first')
    .argument('<group:artifact>', 'the artifact')
    .action(
      runAction(async (context, [artifactArg]) => {
        const artifact = parseArtifact(String(artifactArg));
        const response = await context.session().unary(`${UPDATES}/History`, { artifact }, { idempotent: true });
        emit(context.output, response, () => historyTable(context.output, response.releases as ReleaseView[], artifact));
      }),
    );

  update
    .command('stats')
    .description('an artifact\'s update statistics: total, successful, failed, success rate, average duration')
    .argument('<group:artifact>', 'the artifact')
    .action(
      runAction(async (context, [artifactArg]) => {
        const artifact = parseArtifact(String(artifactArg));
        const response = await context.session().unary(`${UPDATES}/Statistics`, { artifact }, { idempotent: true });
        emit(context.output, response, () => statisticsView(context.output, response as unknown as StatisticsView));
      }),
    );

  update
    .command('rollback-to')
    .description('start a new update back to a revision\'s version, with that revision\'s settings')
    .argument('<group:artifact>', 'the artifact')
    .argument('<revision>', 'a revision from `cutover update history`, or last-successful')
    .addOption(reasonOption())
    .addOption(withDefault('--initiated-by <name>', 'who starts it', 'the OS user'))
    .action(
      runAction(async (context, [artifactArg, revisionArg], flags) => {
        const artifact = parseArtifact(String(artifactArg));
        const target = String(revisionArg) === 'last-successful' ? { last_successful: true } : { revision: parseCount('<revision>', String(revisionArg)) };
        const request = { artifact, ...target, initiated_by: typeof flags.initiatedBy === 'string' ? flags.initiatedBy : osUser(), reason: typeof flags.reason === 'string' ? flags.reason : '' };
        let response: MessageObject;
        try {
          response = await context.session().unary(`${UPDATES}/RollbackTo`, request, { idempotent: false });
        } catch (error) {
          if (error instanceof CutoverError && (error.code === 'RELEASE_NOT_FOUND' || error.code === 'ALREADY_CURRENT' || error.code === 'NO_SUCCESSFUL_RELEASE')) {
            throw new CommandFailedError(error.code, error.message, `see the revisions with \`cutover update history ${artifact}\``);
          }
          throw explainStart(error, artifact, '');
        }
        const u = response.update as UpdateView;
        emit(context.output, response, () => `started update ${context.output.styles.bold(u.id)}: ${String(response.detail)}, ${u.old_version} → ${u.new_version} (${u.strategy}) — follow it with \`cutover update status ${u.id} --watch\``);
      }),
    );

}
