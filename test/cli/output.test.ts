/**
 * The CLI's pieces that need no process: colour rules, table fitting, times, argument parsers,
 * the strict JSON → message check, and the exit code of each kind of error.
 */
import test from 'ava';
import protobuf from 'protobufjs';
import { CommandFailedError, EXIT, UnreachableError, UsageError, errorLine, exitCodeOf } from '../../src/cli/cli-errors.ts';
import { messageFromJson } from '../../src/cli/client/schema.ts';
import { parseArtifact, parseCount, parseDuration, parseEndpoints } from '../../src/cli/commands/context.ts';
import { relativeAge, timeWithAge } from '../../src/cli/output/formats.ts';
import { stylesFor, table, type Column, type Output } from '../../src/cli/output/output.ts';
import { CutoverError } from '../../src/util/errors.ts';

test('colour only on a TTY, never with NO_COLOR set (non-empty) or --no-color', (t) => {
  t.true(stylesFor({ isTTY: true }, {}, true).enabled);
  t.true(stylesFor({ isTTY: true }, { NO_COLOR: '' }, true).enabled, 'an empty NO_COLOR does not count (no-color.org)');
  t.false(stylesFor({ isTTY: true }, { NO_COLOR: '1' }, true).enabled);
  t.false(stylesFor({ isTTY: false }, {}, true).enabled);
  t.false(stylesFor({}, {}, true).enabled);
  t.false(stylesFor({ isTTY: true }, {}, false).enabled);
  t.is(stylesFor({ isTTY: true }, {}, true).green('ok'), '\u001b[32mok\u001b[39m');
  t.is(stylesFor({ isTTY: false }, {}, true).green('ok'), 'ok');
});

function output(width: number, colour = false): Output {
  return { format: 'table', styles: stylesFor({ isTTY: colour }, {}, colour), width, nowMs: 0, write: () => {} };
}

interface Row {
  name: string;
  value: string;
  n: number;
}
const COLUMNS: Column<Row>[] = [
  { header: 'NAME', cell: (r) => r.name, flexible: 1 },
  { header: 'VALUE', cell: (r) => r.value, flexible: 2 },
  { header: 'N', cell: (r) => String(r.n), align: 'right', style: (text, r, s) => (r.n > 1 ? s.red(text) : text) },
];

test('table: aligned columns, right-aligned numbers, no trailing blanks', (t) => {
  const rows = [
    { name: 'a', value: 'x', n: 1 },
    { name: 'longer', value: '', n: 10 },
  ];
  t.is(table(output(80), COLUMNS, rows, 'none'), 'NAME    VALUE   N\na       x       1\nlonger         10\n');
  t.is(table(output(80), COLUMNS, [], 'nothing here'), 'nothing here\n');
});

test('table: too wide, the higher-priority flexible column gives first, then both, never below 8', (t) => {
  const rows = [{ name: 'n'.repeat(30), value: 'v'.repeat(60), n: 1 }];
  const fit = (width: number): string[] => table(output(width), COLUMNS, rows, '').split('\n').slice(0, 2);
  const [header60, row60] = fit(60);
  t.is(row60!.length, 60);
  t.true(row60!.startsWith(`${'n'.repeat(30)}  ${'v'.repeat(24)}…`), 'NAME kept whole while VALUE can give');
  t.is(header60!.length <= 60, true);
  const [, row30] = fit(30);
  t.is(row30, `${'n'.repeat(16)}…  ${'v'.repeat(7)}…  1`, 'VALUE stops at 8; then NAME gives');
  const [, row10] = fit(10);
  t.is(row10, `${'n'.repeat(7)}…  ${'v'.repeat(7)}…  1`, 'nothing goes below 8, even past the width');
});

test('table: colour wraps the text only and does not change the layout', (t) => {
  const rows = [{ name: 'a', value: 'x', n: 2 }];
  const coloured = table(output(80, true), COLUMNS, rows, '');
  const ESC = String.fromCharCode(27);
  t.is(coloured.replaceAll(`${ESC}[1m`, '').replaceAll(`${ESC}[22m`, '').replaceAll(`${ESC}[31m`, '').replaceAll(`${ESC}[39m`, ''), table(output(80), COLUMNS, rows, ''));
  t.true(coloured.includes('\u001b[31m2\u001b[39m'));
  t.true(coloured.startsWith('\u001b[1mNAME'), 'bold header');
});

test('times: local time with a relative age', (t) => {
  t.is(relativeAge(1000, 1000), '0s ago');
  t.is(relativeAge(0, 59_000), '59s ago');
  t.is(relativeAge(0, 61_000), '1m ago');
  t.is(relativeAge(0, 7_200_000), '2h ago');
  t.is(relativeAge(0, 3 * 86_400_000), '3d ago');
  t.is(relativeAge(5000, 1000), 'in 4s');
  t.is(timeWithAge(0, 1000), '-');
  t.regex(timeWithAge(1_750_000_000_000, 1_750_000_300_000), /^\d{4}-\d\d-\d\d \d\d:\d\d \(5m ago\)$/);
});

test('argument parsers: durations, endpoints, counts, artifacts; a bad value is a UsageError', (t) => {
  t.is(parseDuration('--timeout', '500ms'), 500);
  t.is(parseDuration('--timeout', '10s'), 10_000);
  t.is(parseDuration('--timeout', '2m'), 120_000);
  t.is(parseDuration('--timeout', '1.5'), 1500);
  for (const bad of ['', 'soon', '0s', '-1s', '10h']) t.throws(() => parseDuration('--timeout', bad), { instanceOf: UsageError }, bad);
  t.deepEqual(parseEndpoints('127.0.0.1:7001, localhost:7002,,[::1]:7003'), ['127.0.0.1:7001', 'localhost:7002', '[::1]:7003']);
  for (const bad of ['', ',', 'host', 'host:port', 'http://a:1']) t.throws(() => parseEndpoints(bad), { instanceOf: UsageError }, bad);
  t.is(parseCount('-i', '3'), 3);
  t.is(parseCount('--limit', '0', { min: 0 }), 0);
  for (const bad of ['0', '-1', '1.5', 'x', '']) t.throws(() => parseCount('-i', bad), { instanceOf: UsageError }, bad);
  t.is(parseArtifact('org.example:greeter'), 'org.example:greeter');
  for (const bad of ['greeter', 'a:b:c', ':b', 'a b:c']) t.throws(() => parseArtifact(bad), { instanceOf: UsageError }, bad);
});

test('messageFromJson: .proto and lowerCamelCase names; unknown fields and wrong shapes refused', (t) => {
  const root = protobuf.parse(
    'syntax = "proto3"; package t; message Inner { string the_name = 1; } message Outer { string key = 1; repeated Inner items = 2; Inner one = 3; map<string, Inner> by_key = 4; int64 start_revision = 5; }',
    { keepCase: true },
  ).root;
  const outer = root.lookupType('t.Outer');
  t.deepEqual(messageFromJson(outer, { key: 'k', startRevision: 5, items: [{ theName: 'a' }, { the_name: 'b' }], one: { the_name: 'c' }, byKey: { x: { theName: 'd' } } }), {
    key: 'k',
    start_revision: 5,
    items: [{ the_name: 'a' }, { the_name: 'b' }],
    one: { the_name: 'c' },
    by_key: { x: { the_name: 'd' } },
  });
  const unknown = t.throws(() => messageFromJson(outer, { key: 'k', items: [{ nmae: 'a' }] }), { instanceOf: UsageError });
  t.is(unknown.message, 't.Inner has no field "nmae" (at Outer.items[0]); its fields are the_name');
  t.throws(() => messageFromJson(outer, []), { instanceOf: UsageError });
  t.throws(() => messageFromJson(outer, { items: { the_name: 'a' } }), { instanceOf: UsageError, message: /must be a JSON array/ });
});

test('exit codes: usage 2, unreachable 3, refused or failed 1; one line with what to do', (t) => {
  t.is(exitCodeOf(new UsageError('bad', 'fix it')), EXIT.USAGE);
  t.is(exitCodeOf(new UnreachableError(['a:1'], 'refused')), EXIT.UNREACHABLE);
  t.is(exitCodeOf(new CutoverError('ALREADY_DEPLOYED', 'x')), EXIT.FAILED);
  t.is(exitCodeOf(new CommandFailedError('X', 'x', 'y')), EXIT.FAILED);
  t.is(exitCodeOf(new Error('boom')), EXIT.FAILED);
  t.is(errorLine(new UsageError('bad flag', 'see --help')), 'bad flag — see --help');
  t.is(errorLine(new CutoverError('MEMBER_NOT_FOUND', 'node 9 is not a member')), 'node 9 is not a member [MEMBER_NOT_FOUND] — see the members with `cutover cluster members`');
  t.is(errorLine(new CutoverError('SOMETHING_NEW', 'odd')), 'odd [SOMETHING_NEW]');
});
