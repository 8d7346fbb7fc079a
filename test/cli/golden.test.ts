/**
 * Golden tests of the CLI's table formats: the real binary against fixture servers with fixed
 * answers (test/cli/fixture-server.ts), "now" fixed by CUTOVER_NOW_MS and TZ=UTC, stdout not a
 * terminal (so 80 columns, no colour). Each table is pinned byte for byte in test/cli/golden/.
 */
import test from 'ava';
import { assertGolden, CliRunner } from './cli-harness.ts';
import { FIXED_NOW_MS, FixtureCluster } from './fixture-server.ts';

let fixture: FixtureCluster;
let cli: CliRunner;

test.before(async () => {
  fixture = await FixtureCluster.start();
  cli = new CliRunner(fixture.endpoints, { CUTOVER_NOW_MS: String(FIXED_NOW_MS) });
});

test.after.always(() => {
  fixture?.stop();
  cli?.dispose();
});

/** The fixture's free ports as 10001…10003: the same width (ephemeral ports have 5 digits). */
function withFixedAddresses(text: string): string {
  return fixture.addresses.reduce((out, address, i) => out.replaceAll(address, `127.0.0.1:${10001 + i}`), text);
}

const cases: [name: string, args: string[], env?: Record<string, string>][] = [
  ['cluster-status', ['cluster', 'status']],
  ['cluster-members', ['cluster', 'members']],
  ['slice-list', ['slice', 'list']],
  ['slice-instances', ['slice', 'instances']],
  ['kv-get', ['kv', 'get', 'hello']],
  ['kv-range', ['kv', 'range']],
  ['kv-range-60-columns', ['kv', 'range'], { COLUMNS: '60' }],
  ['describe', ['describe']],
  ['describe-service', ['describe', 'KV']],
  ['describe-method', ['describe', 'cutover.v1.KV/Range']],
  ['describe-message', ['describe', 'cutover.v1.Compare']],
];

for (const [name, args, env] of cases) {
  test.serial(`golden: cutover ${args.join(' ')}${env?.COLUMNS ? ` (${env.COLUMNS} columns)` : ''}`, async (t) => {
    const result = await cli.run(args, env === undefined ? {} : { env });
    t.is(result.code, 0, result.stderr);
    for (const line of result.stdout.split('\n')) t.true(line.length <= Number(env?.COLUMNS ?? 80), `fits: ${line}`);
    assertGolden(t, name, withFixedAddresses(result.stdout));
  });
}

test.serial('golden: the same command gives the same JSON twice (stable for scripts)', async (t) => {
  const first = await cli.run(['slice', 'list', '-o', 'json']);
  const second = await cli.run(['slice', 'list', '-o', 'json']);
  t.is(first.code, 0);
  t.is(first.stdout, second.stdout);
  assertGolden(t, 'slice-list-json', first.stdout);
});

test.serial('golden: the sources through tsx print what the bundle prints', async (t) => {
  const bundled = await cli.run(['slice', 'list', '--debug']);
  const sources = await cli.run(['slice', 'list', '--debug'], { env: { CUTOVER_FROM_SOURCE: '1' } });
  t.is(sources.code, 0, sources.stderr);
  t.regex(sources.stderr, /running .*src\/cli\/main\.ts/);
  t.is(sources.stdout, bundled.stdout);
  // bin/cutover.js runs the bundle when `npm run build` made one and the sources have not changed since.
  if (/running .*dist\/cli\/main\.js/.test(bundled.stderr)) t.log('bundle (dist/cli) compared with the sources');
  else t.log('no fresh bundle: both runs used the sources (run `npm run build`)');
});
