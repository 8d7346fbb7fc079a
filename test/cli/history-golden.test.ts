/**
 * Golden tests of `cutover update history` and `update stats`: the real binary against a fixture
 * RollingUpdates server (the real .proto and real reflection, fixed answers), "now" fixed by
 * CUTOVER_NOW_MS and TZ=UTC, stdout not a terminal (80 columns, no colour). The JSON forms
 * are parsed back.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import test from 'ava';
import { LOADER_OPTIONS, PROTO_ROOT } from '../../src/api/protos.ts';
import { freePort } from '../../src/platform/wait.ts';
import { assertGolden, CliRunner } from './cli-harness.ts';
import { FIXED_NOW_MS } from './fixture-server.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const GREETER = 'org.example:greeter';

const release = (revision: number, fields: Record<string, unknown>): Record<string, unknown> => ({
  revision,
  artifact: GREETER,
  previous_version: '',
  update_id: `greeter-r${revision}`,
  settings_json: '{}',
  initiated_by: 'ada',
  reason: '',
  rollback_of_revision: 0,
  ...fields,
});
const releases = [
  release(1, { version: '2.0.0', previous_version: '1.0.0', status: 'COMPLETED', strategy: 'MANUAL', started_at_ms: FIXED_NOW_MS - 50 * HOUR, finished_at_ms: FIXED_NOW_MS - 49 * HOUR, duration_ms: HOUR }),
  release(2, { version: '2.1.0-bad', previous_version: '2.0.0', status: 'ROLLED_BACK', strategy: 'CANARY', started_at_ms: FIXED_NOW_MS - 3 * HOUR, finished_at_ms: FIXED_NOW_MS - 3 * HOUR + 95_000, duration_ms: 95_000, initiated_by: 'bob', reason: 'automatic rollback after 3/3 consecutive breaches: error rate 20.00% above 1.00%' }),
  release(3, { version: '2.0.0', previous_version: '2.1.0-bad', status: 'CANCELLED', strategy: 'BLUE_GREEN', started_at_ms: FIXED_NOW_MS - 20 * MIN, finished_at_ms: FIXED_NOW_MS - 19 * MIN, duration_ms: 4_200, reason: 'cancelled by an operator' }),
  release(4, { version: '1.0.0', previous_version: '2.0.0', status: 'COMPLETED', strategy: 'ROLLING', started_at_ms: FIXED_NOW_MS - 5 * MIN, finished_at_ms: FIXED_NOW_MS - 30_000, duration_ms: 270_000, rollback_of_revision: 1 }),
];
const statistics = { artifact: GREETER, total: 4, successful: 2, failed: 1, cancelled: 1, success_rate: 50, average_duration_seconds: 1043.55 };
const empty = 'org.example:nothing';

let server: grpc.Server;
let cli: CliRunner;

test.before(async () => {
  const address = `127.0.0.1:${await freePort()}`;
  const definition = protoLoader.loadSync([path.join(PROTO_ROOT, 'cutover/v1/updates.proto')], LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { cutover: { v1: { RollingUpdates: { service: grpc.ServiceDefinition } } } };
  server = new grpc.Server();
  type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
  server.addService(loaded.cutover.v1.RollingUpdates.service, {
    History: (call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, { releases: call.request.artifact === GREETER ? releases : [] }),
    Statistics: (call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, call.request.artifact === GREETER ? statistics : { artifact: call.request.artifact, total: 0, successful: 0, failed: 0, cancelled: 0, success_rate: 0, average_duration_seconds: 0 }),
  });
  new ReflectionService(definition).addToServer(server);
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  cli = new CliRunner(address, { CUTOVER_NOW_MS: String(FIXED_NOW_MS) });
});

test.after.always(() => {
  server?.forceShutdown();
  cli?.dispose();
});

const cases: [name: string, args: string[], env?: Record<string, string>][] = [
  ['update-history', ['update', 'history', GREETER]],
  ['update-history-empty', ['update', 'history', empty]],
  ['update-stats', ['update', 'stats', GREETER]],
  ['update-stats-empty', ['update', 'stats', empty]],
];

for (const [name, args, env] of cases) {
  test.serial(`golden: cutover ${args.join(' ')}${env?.COLUMNS ? ` (${env.COLUMNS} columns)` : ''}`, async (t) => {
    const result = await cli.run(args, env === undefined ? {} : { env });
    t.is(result.code, 0, result.stderr);
    for (const line of result.stdout.split('\n')) t.true(line.length <= Number(env?.COLUMNS ?? 80), `fits: ${line}`);
    assertGolden(t, name, result.stdout);
  });
}

test.serial('history and stats -o json parse back to the server\'s answer, the same twice', async (t) => {
  const history = await cli.json<{ releases: Record<string, unknown>[] }>(['update', 'history', GREETER]);
  t.deepEqual(history.releases.map((r) => [r.revision, r.version, r.status, r.rollback_of_revision]), releases.map((r) => [r.revision, r.version, r.status, r.rollback_of_revision]));
  t.like(history.releases[1], { duration_ms: 95_000, initiated_by: 'bob', strategy: 'CANARY' });
  t.deepEqual(await cli.json(['update', 'stats', GREETER]), statistics);
  const first = await cli.run(['update', 'history', GREETER, '-o', 'json']);
  const second = await cli.run(['update', 'history', GREETER, '-o', 'json']);
  t.is(first.stdout, second.stdout);
});
