/**
 * `cutover health results|summary`, over `cutover.v1.Health`: the raw health-check results of
 * slice instances across the cluster (each node keeps its own), and a per-version trend.
 */
import { Option, type Command } from 'commander';
import { relativeAge, timeWithAge } from '../output/formats.ts';
import { emit, table, type Column, type Output, type Styles } from '../output/output.ts';
import { parseArtifact, parseCount, parseDuration, runAction } from './context.ts';

const HEALTH = 'cutover.v1.Health';

interface CheckResult {
  artifact: string;
  version: string;
  instance_id: string;
  node_id: number;
  check: string;
  type: string;
  status: string;
  at_ms: number;
  duration_ms: number;
  attempts: number;
  detail: string;
}

interface Unreachable {
  node_id: number;
  address: string;
  error: string;
}

interface TrendBucket {
  start_ms: number;
  success: number;
  failure: number;
  timeout: number;
  error: number;
  success_rate: number;
  instances: number;
  p50_duration_ms: number;
  max_duration_ms: number;
}

interface InstanceLatest {
  instance_id: string;
  node_id: number;
  check: string;
  status: string;
  at_ms: number;
  detail: string;
}

interface VersionTrend {
  artifact: string;
  version: string;
  buckets: TrendBucket[];
  instances: InstanceLatest[];
}

function statusStyle(text: string, status: string, s: Styles): string {
  return status === 'success' ? s.green(text) : s.red(text);
}

function resultsTable(output: Output, results: readonly CheckResult[]): string {
  const columns: Column<CheckResult>[] = [
    { header: 'TIME', cell: (r) => timeWithAge(r.at_ms, output.nowMs) },
    { header: 'VERSION', cell: (r) => r.version },
    { header: 'INSTANCE', cell: (r) => `${r.instance_id}@${r.node_id}`, flexible: 1 },
    { header: 'CHECK', cell: (r) => r.check },
    { header: 'STATUS', cell: (r) => r.status, style: (text, r, s) => statusStyle(text, r.status, s) },
    { header: 'MS', cell: (r) => String(Math.round(r.duration_ms)), align: 'right' },
    { header: 'DETAIL', cell: (r) => (r.attempts > 1 ? `${r.detail} (${r.attempts} attempts)` : r.detail), flexible: 3 },
  ];
  return table(output, columns, results, 'no health-check results (only versions that declare healthChecks are checked)');
}

/** `▁▃█`-style bar of success rates, one character per bucket; `·` for an empty bucket. */
function sparkline(buckets: readonly TrendBucket[]): string {
  const bars = '▁▂▃▄▅▆▇█';
  return buckets.map((b) => (b.success + b.failure + b.timeout + b.error === 0 ? '·' : bars[Math.min(bars.length - 1, Math.floor(b.success_rate * (bars.length - 1) + 0.5))])).join('');
}

function summaryText(output: Output, versions: readonly VersionTrend[]): string {
  if (versions.length === 0) return 'no health-check results in that time';
  return versions
    .map((v) => {
      const totals = v.buckets.reduce((sum, b) => ({ ok: sum.ok + b.success, all: sum.all + b.success + b.failure + b.timeout + b.error }), { ok: 0, all: 0 });
      const rate = totals.all === 0 ? '-' : `${((totals.ok / totals.all) * 100).toFixed(1)}%`;
      const head = `${v.artifact} ${v.version}: ${totals.all} results, ${rate} passing  ${sparkline(v.buckets)}`;
      const columns: Column<InstanceLatest>[] = [
        { header: 'INSTANCE', cell: (i) => `${i.instance_id}@${i.node_id}`, flexible: 1 },
        { header: 'CHECK', cell: (i) => i.check },
        { header: 'LAST', cell: (i) => i.status, style: (text, i, s) => statusStyle(text, i.status, s) },
        { header: 'AGE', cell: (i) => relativeAge(i.at_ms, output.nowMs) },
        { header: 'DETAIL', cell: (i) => i.detail, flexible: 3 },
      ];
      return `${head}\n${table(output, columns, v.instances, 'no instance results')}`;
    })
    .join('\n\n');
}

function unreachableNote(unreachable: readonly Unreachable[]): string {
  return unreachable.length === 0 ? '' : `\n(no answer from ${unreachable.map((u) => `node ${u.node_id} at ${u.address}`).join(', ')}: its results are missing)`;
}

/** Registers `cutover health …`. */
export function registerHealthCommands(program: Command): void {
  const health = program.command('health').description('health-check results of slice instances across the cluster (cutover.v1.Health)');

  health
    .command('results')
    .description('recent check results, newest first, from every node')
    .argument('[group:artifact]', 'only this artifact')
    .option('--version <version>', 'only this version')
    .option('--instance <id>', 'only this instance')
    .option('--since <duration>', 'only results this recent (e.g. 90s, 10m)')
    .addOption(new Option('--limit <n>', 'most results').default('50'))
    .action(
      runAction(async (context, [artifact], flags) => {
        const request = {
          artifact: artifact === undefined ? '' : parseArtifact(String(artifact)),
          version: flags.version === undefined ? '' : String(flags.version),
          instance_id: flags.instance === undefined ? '' : String(flags.instance),
          since_ms: flags.since === undefined ? 0 : Math.max(1, context.output.nowMs - parseDuration('--since', String(flags.since))),
          limit: parseCount('--limit', String(flags.limit)),
          local_only: false,
        };
        const response = await context.session().unary(`${HEALTH}/Results`, request, { idempotent: true });
        emit(context.output, response, () => resultsTable(context.output, response.results as CheckResult[]) + unreachableNote(response.unreachable as Unreachable[]));
      }),
    );

  health
    .command('summary')
    .description("an artifact's per-version trend: results per time bucket and each instance's latest")
    .argument('<group:artifact>', 'the artifact')
    .option('--version <version>', 'only this version')
    .addOption(new Option('--bucket <duration>', 'width of a bucket').default('1m'))
    .addOption(new Option('--buckets <n>', 'number of buckets, ending now').default('30'))
    .action(
      runAction(async (context, [artifact], flags) => {
        const request = {
          artifact: parseArtifact(String(artifact)),
          version: flags.version === undefined ? '' : String(flags.version),
          bucket_seconds: Math.max(1, Math.round(parseDuration('--bucket', String(flags.bucket)) / 1000)),
          buckets: parseCount('--buckets', String(flags.buckets)),
        };
        const response = await context.session().unary(`${HEALTH}/Summary`, request, { idempotent: true });
        emit(context.output, response, () => summaryText(context.output, response.versions as VersionTrend[]) + unreachableNote(response.unreachable as Unreachable[]));
      }),
    );
}
