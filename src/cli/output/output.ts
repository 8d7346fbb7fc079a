/**
 * What commands print: `-o table` (for people: aligned columns that fit the terminal, or 80
 * columns when stdout is not a terminal), `-o json` (for scripts: one stable document, the API's
 * message with .proto field names unless a command says otherwise) and `-o yaml` (the same data).
 * Colour only on a terminal, never with NO_COLOR set or --no-color.
 */
import { UsageError } from '../cli-errors.ts';
import { epochMs } from '../../platform/wall-clock.ts';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** Checks an `-o` value. */
export function parseOutputFormat(text: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat;
  throw new UsageError(`-o must be one of ${OUTPUT_FORMATS.join(', ')}, got "${text}"`, 'for example `-o json`');
}

/** ANSI styles, or identity functions when colour is off. */
export interface Styles {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
}

function ansi(open: number, close: number): (text: string) => string {
  return (text) => `\u001b[${open}m${text}\u001b[${close}m`;
}

const plain = (text: string): string => text;

/** Colour for `stream` under `env`: a TTY, NO_COLOR unset or empty, and not turned off by a flag. */
export function stylesFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, colourFlag: boolean): Styles {
  const enabled = colourFlag && stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
  if (!enabled) return { enabled, bold: plain, dim: plain, green: plain, yellow: plain, red: plain };
  return { enabled, bold: ansi(1, 22), dim: ansi(2, 22), green: ansi(32, 39), yellow: ansi(33, 39), red: ansi(31, 39) };
}

/** Where a command writes, and how. */
export interface Output {
  readonly format: OutputFormat;
  readonly styles: Styles;
  /** Width tables must fit in. */
  readonly width: number;
  /** Current wall-clock time for relative ages (fixed in golden tests through CUTOVER_NOW_MS). */
  readonly nowMs: number;
  write(text: string): void;
}

/** The Output for this process's stdout. */
export function stdoutOutput(format: OutputFormat, colourFlag: boolean, env: NodeJS.ProcessEnv): Output {
  const stdout = process.stdout;
  const columns = Number(env.COLUMNS);
  // A terminal that reports no size (0 columns: a pty nobody sized, as under `script` or some CI
  // runners) counts as unknown, like a pipe: COLUMNS, else 80.
  const ttyColumns = stdout.isTTY === true && stdout.columns > 0 ? stdout.columns : undefined;
  const width = ttyColumns ?? (Number.isInteger(columns) && columns > 0 ? columns : 80);
  const fixedNow = Number(env.CUTOVER_NOW_MS);
  return {
    format,
    styles: stylesFor(stdout, env, colourFlag),
    width: Math.max(40, width),
    nowMs: Number.isFinite(fixedNow) && fixedNow > 0 ? fixedNow : epochMs(),
    write: (text) => void stdout.write(text),
  };
}

let yamlStringify: ((data: unknown) => string) | undefined;

/** Loads what the format needs before a command prints (the yaml package only for -o yaml). */
export async function prepareOutput(output: Output): Promise<void> {
  // Loaded only for -o yaml: the yaml package costs tens of milliseconds at start-up.
  // `default` is the CommonJS module.exports, in Node's ESM and in the esbuild bundle alike.
  if (output.format === 'yaml' && yamlStringify === undefined) yamlStringify = (await import('yaml')).default.stringify;
}

function toYaml(data: unknown): string {
  if (yamlStringify === undefined) throw new Error('prepareOutput() must run before YAML output');
  return yamlStringify(data);
}

/** Prints `data` as JSON or YAML, or calls `table()` for the table form. */
export function emit(output: Output, data: unknown, table: () => string): void {
  if (output.format === 'json') output.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (output.format === 'yaml') output.write(toYaml(data));
  else {
    const text = table();
    output.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  }
}

/** One streamed item (a watch event): a JSON line, a YAML document, or a table-format line. */
export function emitItem(output: Output, data: unknown, line: () => string): void {
  if (output.format === 'json') output.write(`${JSON.stringify(data)}\n`);
  else if (output.format === 'yaml') output.write(`---\n${toYaml(data)}`);
  else output.write(`${line()}\n`);
}

/** A table column: a header, how to get a cell, and whether it may be cut to fit the width. */
export interface Column<Row> {
  readonly header: string;
  readonly cell: (row: Row) => string;
  /**
   * May be shortened (with …) when the table is too wide. Columns with a higher number give up
   * width first (down to a minimum); among equals, the widest goes first.
   */
  readonly flexible?: number;
  readonly align?: 'left' | 'right';
  /** Styles a cell's text (colour does not count toward the width). */
  readonly style?: (padded: string, row: Row, styles: Styles) => string;
}

/** Narrowest a flexible column is cut to. */
const FLEXIBLE_WIDTH_MIN = 8;
const GAP = '  ';

/** Renders rows as aligned columns that fit `output.width`; `empty` is printed when there are none. */
export function table<Row>(output: Output, columns: readonly Column<Row>[], rows: readonly Row[], empty: string): string {
  if (rows.length === 0) return `${empty}\n`;
  const cells = rows.map((row) => columns.map((c) => c.cell(row).replace(/\s+/g, ' ')));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  fitWidths(columns, widths, output.width);
  const pad = (text: string, i: number): string => {
    const width = widths[i]!;
    const cut = text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
    return columns[i]!.align === 'right' ? cut.padStart(width) : cut.padEnd(width);
  };
  const header = columns.map((c, i) => pad(c.header, i)).join(GAP).trimEnd();
  const lines = [output.styles.bold(header)];
  rows.forEach((row, r) => {
    const parts = columns.map((c, i) => {
      const padded = pad(cells[r]![i]!, i);
      if (c.style === undefined) return padded;
      // Style the text, not its padding, so that trailing blanks stay outside escape codes.
      const text = padded.trim();
      if (text === '') return padded;
      const start = padded.indexOf(text);
      return `${padded.slice(0, start)}${c.style(text, row, output.styles)}${padded.slice(start + text.length)}`;
    });
    lines.push(parts.join(GAP).trimEnd());
  });
  return `${lines.join('\n')}\n`;
}

function fitWidths<Row>(columns: readonly Column<Row>[], widths: number[], width: number): void {
  const total = (): number => widths.reduce((sum, w) => sum + w, 0) + GAP.length * (widths.length - 1);
  // Water-filling within the highest priority that can still give: cut the widest columns down
  // toward the next widest, so that no column is cut to nothing while another stays long.
  while (total() > width) {
    const giving = columns.flatMap((c, i) => (c.flexible !== undefined && widths[i]! > FLEXIBLE_WIDTH_MIN ? [i] : []));
    if (giving.length === 0) return;
    const priority = Math.max(...giving.map((i) => columns[i]!.flexible!));
    const flexible = giving.filter((i) => columns[i]!.flexible === priority);
    const widest = Math.max(...flexible.map((i) => widths[i]!));
    const tied = flexible.filter((i) => widths[i] === widest);
    const next = Math.max(FLEXIBLE_WIDTH_MIN, ...flexible.filter((i) => widths[i]! < widest).map((i) => widths[i]!));
    const cut = Math.min(widest - next, Math.ceil((total() - width) / tied.length));
    for (const i of tied) widths[i] = widest - Math.max(1, cut);
  }
}

/** `key: value` lines with the keys aligned. */
export function keyValues(output: Output, pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${output.styles.dim(`${k}:`.padEnd(width + 1))} ${v}`).join('\n')}\n`;
}
