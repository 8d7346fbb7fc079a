/**
 * Formatting of the benchmark's output: the machine line and the results table.
 */
import os from 'node:os';

/** The measured outcome of one configuration. */
export interface RunResult {
  readonly nodes: number;
  readonly proposers: number;
  readonly entryBytes: number;
  readonly measuredSeconds: number;
  readonly committed: number;
  readonly committedPerSecond: number;
  /** Committed entries per CPU-second of this process: less sensitive to other load than wall time. */
  readonly committedPerCpuSecond: number;
  /** CPU time over wall time while measuring (100% = one core all the time, GC threads add). */
  readonly cpuPercent: number;
  /** How many runs this row summarises; with several, it is the median run and these its range. */
  readonly runs: number;
  readonly committedPerSecondMin: number;
  readonly committedPerSecondMax: number;
  readonly latencyUsMean: number;
  readonly latencyCyclesMean: number;
  /** Entries the leader persisted per Ready that persisted any: the batching achieved. */
  readonly entriesPerLeaderReady: number;
  /** Messages delivered (all types, all links) per committed entry. */
  readonly messagesPerEntry: number;
  readonly cyclesPerSecond: number;
}

/** One line describing the machine and runtime, for the table's caption. */
export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  // No load average here: it lags by a minute. The CPU % column shows contention per row.
  return `${model}, ${cpus.length} cores, ${os.platform()} ${os.arch()}, node ${process.version}`;
}

const COLUMNS: readonly { title: string; cell: (r: RunResult) => string }[] = [
  { title: 'nodes', cell: (r) => String(r.nodes) },
  { title: 'proposers', cell: (r) => String(r.proposers) },
  { title: 'entry bytes', cell: (r) => String(r.entryBytes) },
  { title: 'committed/s', cell: (r) => formatRate(r.committedPerSecond) },
  { title: 'range (runs)', cell: (r) => `${formatRate(r.committedPerSecondMin)}–${formatRate(r.committedPerSecondMax)} (${r.runs})` },
  { title: 'committed/CPU-s', cell: (r) => formatRate(r.committedPerCpuSecond) },
  { title: 'CPU %', cell: (r) => r.cpuPercent.toFixed(0) },
  { title: 'mean latency µs', cell: (r) => r.latencyUsMean.toFixed(1) },
  { title: 'mean latency cycles', cell: (r) => r.latencyCyclesMean.toFixed(2) },
  { title: 'entries/leader Ready', cell: (r) => r.entriesPerLeaderReady.toFixed(1) },
  { title: 'msgs/entry', cell: (r) => r.messagesPerEntry.toFixed(2) },
  { title: 'cycles/s', cell: (r) => Math.round(r.cyclesPerSecond).toLocaleString('en-US') },
];

function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** The results as a Markdown table (readable in a terminal and pasteable into docs). */
export function resultsTable(results: readonly RunResult[]): string {
  const rows = [COLUMNS.map((c) => c.title), ...results.map((r) => COLUMNS.map((c) => c.cell(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 3 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}
