/**
 * `npm run bench:invoker`: the invoker's costs, each against its target (docs/benchmarks.md,
 * "Invoker"):
 *
 * 1. one routing decision, `RoutingTable.route` on a realistic table (routing.ts);
 * 2. what `Invoker.invoke` adds to a local call over calling the instance's method (local-invoke.ts);
 * 3. remote invoke throughput against bare grpc-js, servers in processes of their own
 *    (remote-throughput.ts, echo-server.ts);
 * 4. how long a routing change takes to reach every node of a real 3-node cluster (propagation.ts).
 *
 * It prints progress, the detail of each part, and a results table with met / NOT MET per target.
 * A benchmark prints numbers; it never fails on a timing (STYLE.md rule 9).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { measureLocalInvoke, type LocalInvokeResult } from './local-invoke.ts';
import { measurePropagation, type PropagationResult } from './propagation.ts';
import { measureRemote, type RemoteRatio, type RemoteRow } from './remote-throughput.ts';
import { measureRouting, type RoutingResult } from './routing.ts';
import { formatInt, machineLine, markdownTable } from './stats.ts';

const PARTS = ['routing', 'local', 'remote', 'propagation'] as const;
type Part = (typeof PARTS)[number];

const TARGETS = {
  routingNs: 100,
  localOverheadNs: 1000,
  remoteRatio: 0.8,
  propagationP99Ms: 50,
} as const;

interface Options {
  readonly parts: readonly Part[];
  readonly routeOps: number;
  readonly runs: number;
  readonly localCalls: number;
  readonly concurrency: readonly number[];
  readonly rounds: number;
  readonly seconds: number;
  readonly warmup: number;
  readonly payloadBytes: number;
  readonly changes: number;
  readonly gapMs: number;
  readonly dataDir: string;
}

const USAGE = `usage: npm run bench:invoker -- [--only routing,local,remote,propagation]
         [--route-ops N] [--runs N] [--local-calls N]
         [--concurrency 1,32] [--rounds N] [--seconds S] [--warmup S] [--payload-bytes N]
         [--changes N] [--gap-ms MS] [--data-dir DIR]`;

/** [default, min, max, integer] */
const NUMBERS: Record<string, readonly [string, number, number, boolean]> = {
  'route-ops': ['10000000', 1000, 1e9, true],
  runs: ['5', 1, 50, true],
  'local-calls': ['200000', 1000, 1e8, true],
  rounds: ['5', 1, 20, true],
  seconds: ['2', 0.5, 600, false],
  warmup: ['1', 0, 600, false],
  'payload-bytes': ['64', 12, 1024 * 1024, true],
  changes: ['200', 1, 100_000, true],
  'gap-ms': ['10', 0, 10_000, false],
};

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(Object.entries(NUMBERS).map(([name, [fallback]]) => [name, { type: 'string', default: fallback } as const])),
      only: { type: 'string', default: PARTS.join(',') },
      concurrency: { type: 'string', default: '1,32' },
      'data-dir': { type: 'string', default: os.tmpdir() },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const text = values as Record<string, string | boolean | undefined>;
  const num = (name: string): number => {
    const [, min, max, integer] = NUMBERS[name]!;
    const raw = String(text[name]);
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      throw new Error(`--${name}: must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${raw}'`);
    }
    return value;
  };
  const parts = String(text.only).split(',').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => !(PARTS as readonly string[]).includes(p))) throw new Error(`--only: a comma-separated subset of ${PARTS.join(',')}, got '${String(text.only)}'`);
  const concurrency = String(text.concurrency).split(',').map(Number);
  if (concurrency.length === 0 || concurrency.some((c) => !Number.isInteger(c) || c < 1 || c > 1024)) throw new Error(`--concurrency: comma-separated integers in [1, 1024], got '${String(text.concurrency)}'`);
  return {
    parts: parts as Part[],
    routeOps: num('route-ops'),
    runs: num('runs'),
    localCalls: num('local-calls'),
    concurrency,
    rounds: num('rounds'),
    seconds: num('seconds'),
    warmup: num('warmup'),
    payloadBytes: num('payload-bytes'),
    changes: num('changes'),
    gapMs: num('gap-ms'),
    dataDir: String(text['data-dir']),
  };
}

const progress = (line: string): void => console.error(`[bench:invoker] ${line}`);
const verdict = (met: boolean): string => (met ? 'met' : 'NOT MET');
const ms = (value: number): string => value.toFixed(2);

function routingDetail(results: readonly RoutingResult[]): string {
  return markdownTable(
    ['viewpoint', 'ns/op (median)', 'range', 'CPU ns/op', 'new-version share', 'local share'],
    results.map((r) => [r.viewpoint, r.nsPerOpMedian.toFixed(1), `${r.nsPerOpMin.toFixed(1)}–${r.nsPerOpMax.toFixed(1)}`, r.cpuNsPerOpMedian.toFixed(1), `${(r.newShare * 100).toFixed(1)} %`, `${(r.localShare * 100).toFixed(0)} %`]),
  );
}

function localDetail(r: LocalInvokeResult): string {
  const row = (name: string, f: LocalInvokeResult['direct'], base?: LocalInvokeResult['direct']): string[] => [
    name,
    f.wallNs.toFixed(0),
    `${f.wallRangeNs[0].toFixed(0)}–${f.wallRangeNs[1].toFixed(0)}`,
    f.cpuNs.toFixed(0),
    base === undefined ? '' : (f.wallNs - base.wallNs).toFixed(0),
    base === undefined ? '' : (f.cpuNs - base.cpuNs).toFixed(0),
  ];
  return markdownTable(
    ['call path (one awaited call at a time)', 'wall ns/call', 'range', 'CPU ns/call', 'wall over direct', 'CPU over direct'],
    [row('instance.hello(payload) (direct)', r.direct), row('Invoker.invoke → InstanceManager', r.invoker, r.direct), row('InstanceManager.invoke alone', r.manager, r.direct)],
  );
}

function remoteDetail(rows: readonly RemoteRow[]): string {
  return markdownTable(
    ['side', 'C', 'calls/s', 'range (rounds)', 'p50 ms', 'p99 ms', 'errors', 'client CPU µs/call', 'server CPU µs/call'],
    rows.map((r) => [r.side, String(r.concurrency), formatInt(r.callsPerSecond), `${formatInt(r.callsPerSecondMin)}–${formatInt(r.callsPerSecondMax)}`, ms(r.p50Ms), ms(r.p99Ms), String(r.errors), r.clientCpuUsPerCall.toFixed(0), r.serverCpuUsPerCall.toFixed(0)]),
    2,
  );
}

function remoteRatios(ratios: readonly RemoteRatio[]): string {
  return markdownTable(
    ['C', 'Cutover / bare, per round', 'median', 'bare / Cutover CPU per call'],
    ratios.map((r) => [String(r.concurrency), r.paired.map((x) => x.toFixed(2)).join(', '), `${r.pairedMedian.toFixed(2)}×`, `${r.cpuRatio.toFixed(2)}×`]),
  );
}

function propagationDetail(r: PropagationResult): string {
  const rows = [
    ['every node (slowest of the 3)', String(r.allNodes.count), ms(r.allNodes.p50), ms(r.allNodes.p99), ms(r.allNodes.max)],
    ...r.perNode.map((n) => [`node ${n.node}${n.leader ? ' (leader)' : ''}`, String(n.spread.count), ms(n.spread.p50), ms(n.spread.p99), ms(n.spread.max)]),
    ['Put sent → acknowledged', String(r.putAck.count), ms(r.putAck.p50), ms(r.putAck.p99), ms(r.putAck.max)],
  ];
  const table = markdownTable(['ms after the Put was acknowledged', 'changes', 'p50', 'p99', 'max'], rows);
  return `${table}\n${r.beforeAck} deliveries came before the acknowledgement (negative times); ${r.missed} changes missed by some node within 5 s; ${r.putErrors} Put errors.`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = process.hrtime.bigint();
  console.log(`machine: ${machineLine()}`);
  const summary: string[][] = [];

  if (options.parts.includes('routing')) {
    progress(`routing: ${formatInt(options.routeOps)} decisions x ${options.runs} runs per viewpoint`);
    const results = measureRouting(options.routeOps, options.runs);
    console.log(`\n## Routing decision (RoutingTable.route; 1:3 record, 3 ACTIVE instances per version on nodes 1-3)\n\n${routingDetail(results)}`);
    for (const r of results) summary.push([`one routing decision, ${r.viewpoint}`, `${r.nsPerOpMedian.toFixed(1)} ns/op`, `≤ ${TARGETS.routingNs} ns`, verdict(r.nsPerOpMedian <= TARGETS.routingNs)]);
  }

  if (options.parts.includes('local')) {
    progress(`local: ${formatInt(options.localCalls)} calls x ${options.runs} runs per path`);
    const r = await measureLocalInvoke(options.localCalls, options.runs);
    const overhead = r.invoker.wallNs - r.direct.wallNs;
    console.log(`\n## Local invoke overhead (${formatInt(r.callsPerRun)} calls per run, median of ${r.runs} runs)\n\n${localDetail(r)}`);
    summary.push(['local invoke overhead (Invoker.invoke − direct async call)', `${overhead.toFixed(0)} ns/call (CPU ${(r.invoker.cpuNs - r.direct.cpuNs).toFixed(0)})`, '≤ 1 µs', verdict(overhead <= TARGETS.localOverheadNs)]);
  }

  if (options.parts.includes('remote')) {
    progress(`remote: C in {${options.concurrency.join(', ')}}, ${options.rounds} rounds of ${options.warmup} s warm-up + ${options.seconds} s per side`);
    const { rows, ratios } = await measureRemote({ concurrency: options.concurrency, rounds: options.rounds, warmupSeconds: options.warmup, measureSeconds: options.seconds, payloadBytes: options.payloadBytes }, progress);
    console.log(`\n## Remote invoke throughput (payload ${options.payloadBytes} bytes of JSON, median round of ${options.rounds})\n\n${remoteDetail(rows)}\n\n${remoteRatios(ratios)}`);
    for (const r of ratios) {
      const cutover = rows.find((row) => row.side === 'cutover' && row.concurrency === r.concurrency)!;
      const bare = rows.find((row) => row.side === 'bare' && row.concurrency === r.concurrency)!;
      summary.push([`remote invoke throughput, C=${r.concurrency}, Cutover / bare grpc-js`, `${r.pairedMedian.toFixed(2)}× (median rounds ${formatInt(cutover.callsPerSecond)} vs ${formatInt(bare.callsPerSecond)} calls/s; CPU ratio ${r.cpuRatio.toFixed(2)}×)`, `≥ ${TARGETS.remoteRatio}×`, verdict(r.pairedMedian >= TARGETS.remoteRatio)]);
    }
  }

  if (options.parts.includes('propagation')) {
    progress(`propagation: ${options.changes} routing changes, ${options.gapMs} ms apart`);
    const r = await measurePropagation({ changes: options.changes, gapMs: options.gapMs, dataParent: options.dataDir }, progress);
    console.log(`\n## Routing change propagation (3 node processes; Put on the leader → each node's KV watch)\n\n${propagationDetail(r)}`);
    summary.push([`routing change → every node's watch, p99 (${r.allNodes.count} changes)`, `${ms(r.allNodes.p99)} ms (p50 ${ms(r.allNodes.p50)}, max ${ms(r.allNodes.max)})`, `≤ ${TARGETS.propagationP99Ms} ms`, verdict(r.missed === 0 && r.allNodes.p99 <= TARGETS.propagationP99Ms)]);
  }

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`\n## Results (${seconds.toFixed(0)} s, 1-min load average now ${os.loadavg()[0]?.toFixed(2)})\n\n${markdownTable(['measurement', 'result', 'target', 'verdict'], summary, 4)}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench:invoker: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
