/**
 * Formatting of the KV benchmark's output: machine description, the throughput/latency table,
 * the Cutover/etcd ratios, failover, and the issue's targets. Tables are Markdown, readable in
 * a terminal and pasteable into docs/benchmarks.md.
 */
import os from 'node:os';
import type { FailoverSummary } from './failover.ts';
import type { LoadResult } from './loadgen.ts';

/** One measured (system, mix) pair with the servers' CPU cost. */
export interface MixRow {
  /** The median round's result (by throughput). */
  readonly result: LoadResult;
  /** CPU time of all server processes per acknowledged request, warm-up included. */
  readonly serverCpuUsPerOp: number;
  /** How many rounds this row summarises, and the throughput range they spanned. */
  readonly rounds: number;
  readonly throughputMin: number;
  readonly throughputMax: number;
}

/** Lines describing the machine and runtimes; `loadAverageAtStart` is os.loadavg()[0] then. */
export function machineLines(versions: readonly string[], loadAverageAtStart: number): string[] {
  const cpus = os.cpus();
  const memoryGiB = (os.totalmem() / 1024 ** 3).toFixed(1);
  return [
    `CPU: ${cpus[0]?.model.trim() ?? 'unknown'}, ${cpus.length} logical cores; memory ${memoryGiB} GiB; ${os.type()} ${os.release()} ${os.arch()}`,
    `Runtimes: Node.js ${process.version}; ${versions.join('; ')}`,
    `1-minute load average: ${loadAverageAtStart.toFixed(2)} before the run, ${(os.loadavg()[0] ?? 0).toFixed(2)} after (other work on the machine skews every figure)`,
  ];
}

/** A Markdown table with the first `leftColumns` columns left-aligned, the rest right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], leftColumns: number): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${widths.map((w, i) => (i < leftColumns ? (cells[i] ?? '').padEnd(w) : (cells[i] ?? '').padStart(w))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

const fixed = (value: number, digits: number): string => value.toFixed(digits);
const rate = (value: number): string => Math.round(value).toLocaleString('en-US');

/** The main table: one row per system and mix. */
export function resultsTable(rows: readonly MixRow[]): string {
  return markdownTable(
    ['system', 'mix', 'clients', 'throughput ops/s', 'range (rounds)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'server CPU µs/op', 'client CPU µs/op'],
    rows.map(({ result: r, serverCpuUsPerOp, rounds, throughputMin, throughputMax }) => [
      r.system, mixName(r.mix), String(r.clients), rate(r.throughputOpsPerSecond), `${rate(throughputMin)}–${rate(throughputMax)} (${rounds})`,
      fixed(r.latency.p50Ms, 2), fixed(r.latency.p99Ms, 2), fixed(r.latency.p999Ms, 2), fixed(r.latency.maxMs, 1),
      String(r.errors), rate(serverCpuUsPerOp), rate((r.loadgenCpuMs * 1000) / Math.max(1, r.ops)),
    ]),
    2,
  );
}

/** Cutover ÷ etcd per mix (throughput > 1 and latency < 1 favour Cutover). */
export function ratioTable(rows: readonly MixRow[]): string | undefined {
  const pairs = rows
    .filter((row) => row.result.system === 'cutover')
    .map((cutover) => [cutover.result, rows.find((row) => row.result.system === 'etcd' && row.result.mix === cutover.result.mix)?.result] as const)
    .filter((pair): pair is readonly [LoadResult, LoadResult] => pair[1] !== undefined);
  if (pairs.length === 0) return undefined;
  return markdownTable(
    ['mix', 'throughput Cutover/etcd', 'p50 Cutover/etcd', 'p99 Cutover/etcd'],
    pairs.map(([c, e]) => [mixName(c.mix), ratio(c.throughputOpsPerSecond, e.throughputOpsPerSecond), ratio(c.latency.p50Ms, e.latency.p50Ms), ratio(c.latency.p99Ms, e.latency.p99Ms)]),
    1,
  );
}

/** One row per system: median and every trial. */
export function failoverTable(summaries: readonly FailoverSummary[]): string {
  const ms = (value: number | null): string => (value === null ? 'none' : value.toFixed(0));
  return markdownTable(
    ['system', 'trials', 'median ms', 'min ms', 'max ms', 'each trial ms'],
    summaries.map((s) => {
      const values = s.trials.map((t) => t.failoverMs);
      const known = values.filter((v): v is number => v !== null);
      return [s.system, String(values.length), ms(s.medianMs), ms(known.length ? Math.min(...known) : null), ms(values.includes(null) ? null : known.length ? Math.max(...known) : null), values.map(ms).join(', ')];
    }),
    1,
  );
}

/** The issue's targets and whether this run met them (undefined comparisons say so). */
export function targetLines(rows: readonly MixRow[], failover: readonly FailoverSummary[]): string[] {
  const lines: string[] = [];
  const cutover = rows.find((r) => r.result.system === 'cutover' && r.result.mix === 'put')?.result;
  const etcd = rows.find((r) => r.result.system === 'etcd' && r.result.mix === 'put')?.result;
  if (cutover === undefined || etcd === undefined) {
    lines.push('Write target (throughput ≥ etcd at a p99 no worse): not evaluated, the put-only mix did not run on both systems.');
  } else {
    const throughputMet = cutover.throughputOpsPerSecond >= etcd.throughputOpsPerSecond;
    const p99Met = cutover.latency.p99Ms <= etcd.latency.p99Ms;
    lines.push(`Write target (put-only throughput ≥ etcd's at a p99 no worse): ${throughputMet && p99Met ? 'MET' : 'NOT MET'} — ` +
      `${rate(cutover.throughputOpsPerSecond)} vs ${rate(etcd.throughputOpsPerSecond)} ops/s, p99 ${fixed(cutover.latency.p99Ms, 2)} vs ${fixed(etcd.latency.p99Ms, 2)} ms.`);
  }
  const cutoverFailover = failover.find((f) => f.system === 'cutover');
  if (cutoverFailover === undefined) lines.push('Failover target (median < 1 s): not evaluated, failover did not run.');
  else {
    const median = cutoverFailover.medianMs;
    lines.push(`Failover target (kill -9 of the leader to the first acknowledged write, median < 1000 ms): ${median !== null && median < 1000 ? 'MET' : 'NOT MET'} — median ${median === null ? 'none' : `${median.toFixed(0)} ms`}.`);
  }
  return lines;
}

function mixName(mix: string): string {
  return mix === 'put' ? 'put-only' : '50/50 put/get';
}

function ratio(numerator: number, denominator: number): string {
  return denominator === 0 ? 'n/a' : `${(numerator / denominator).toFixed(2)}×`;
}
