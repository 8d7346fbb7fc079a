/**
 * Golden tests of `cutover update status` and `update list` tables: the real binary against a
 * fixture RollingUpdates server (the real .proto and real reflection, fixed answers), "now" fixed
 * by CUTOVER_NOW_MS and TZ=UTC, stdout not a terminal (80 columns, no colour).
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
const actor = (name: string) => (name === 'system' ? { kind: 'system', name: 'controller' } : { kind: 'user', name });

const routing = {
  id: 'greeter-2.0.0-r42',
  artifact: 'org.example:greeter',
  old_version: '1.0.0',
  new_version: '2.0.0',
  state: 'ROUTING',
  paused: false,
  pause_reason: '',
  strategy: 'CANARY',
  routing: '1:3',
  step_index: 2,
  steps_total: 4,
  target_instances: 3,
  max_error_rate: 0.01,
  max_latency_ms: 500,
  consecutive_breaches: 1,
  failure_threshold: 3,
  auto_rollback_enabled: true,
  cleanup_policy: 'GRACE_PERIOD',
  grace_cleanup_at_ms: 0,
  next_step_at_ms: FIXED_NOW_MS + 40_000,
  monitoring_until_ms: 0,
  rollback: null,
  transitions: [
    { step: 'start', at_ms: FIXED_NOW_MS - 5 * MIN, actor: actor('ada'), reason: 'CANARY update of org.example:greeter to 2.0.0' },
    { step: 'PENDING -> VALIDATING', at_ms: FIXED_NOW_MS - 5 * MIN + 100, actor: actor('system'), reason: 'picked up by the controller' },
    { step: 'VALIDATING -> DEPLOYING', at_ms: FIXED_NOW_MS - 5 * MIN + 200, actor: actor('system'), reason: 'validation passed; starting 3 of 3 new instances' },
    { step: 'DEPLOYING -> DEPLOYED', at_ms: FIXED_NOW_MS - 4 * MIN, actor: actor('system'), reason: '3 new instances ACTIVE' },
    { step: 'route 1:9 (step 1/4)', at_ms: FIXED_NOW_MS - 3 * MIN, actor: actor('system'), reason: 'hold passed, health holds' },
    { step: 'route 1:3 (step 2/4)', at_ms: FIXED_NOW_MS - MIN, actor: actor('system'), reason: 'hold passed, health holds after a long and detailed explanation that does not fit' },
  ],
  initiated_by: 'ada',
  created_at_ms: FIXED_NOW_MS - 5 * MIN,
  updated_at_ms: FIXED_NOW_MS - MIN,
  revision: 812,
  record_json: '{}',
};
const rolledBack = {
  ...routing,
  id: 'ledger-service-12.4.1-rc.2-r977',
  artifact: 'com.example.payments:ledger-service',
  old_version: '12.4.0',
  new_version: '12.4.1-rc.2',
  state: 'ROLLED_BACK',
  strategy: 'MANUAL',
  routing: '0:1',
  paused: false,
  next_step_at_ms: 0,
  rollback: { reason: 'automatic rollback after 3/3 consecutive breaches: error rate 20.00% above 1.00%', initiated_at_ms: FIXED_NOW_MS - 2 * 3600_000, initiated_by: actor('system'), current_failures: 3, rolled_back_instances: [], rolled_back_count: 3 },
  transitions: routing.transitions.slice(0, 2),
  created_at_ms: FIXED_NOW_MS - 3 * 3600_000,
};
const paused = { ...routing, id: 'billing-3.0.0-r1204', artifact: 'org.example:billing', old_version: '2.9.9', new_version: '3.0.0', strategy: 'STAGED', paused: true, pause_reason: 'lunch', routing: '', state: 'DEPLOYING', created_at_ms: FIXED_NOW_MS - 42_000 };
const health = {
  update_id: routing.id,
  old_version: { version: '1.0.0', request_count: 1840, error_count: 1, error_rate: 1 / 1840, avg_latency_ms: 4.2, p99_latency_ms: 12.5, collected_at_ms: FIXED_NOW_MS - 1000 },
  new_version: { version: '2.0.0', request_count: 612, error_count: 9, error_rate: 9 / 612, avg_latency_ms: 5.1, p99_latency_ms: 14, collected_at_ms: FIXED_NOW_MS - 1000 },
  window_ms: 11_000,
  verdict: 'breach',
  reasons: ['error rate 1.47% above 1.00% (9 of 612 calls)'],
  collected_at_ms: FIXED_NOW_MS,
};
const byId: Record<string, unknown> = { [routing.id]: routing, [rolledBack.id]: rolledBack, [paused.id]: paused };

let server: grpc.Server;
let cli: CliRunner;

test.before(async () => {
  const address = `127.0.0.1:${await freePort()}`;
  const definition = protoLoader.loadSync([path.join(PROTO_ROOT, 'cutover/v1/updates.proto')], LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { cutover: { v1: { RollingUpdates: { service: grpc.ServiceDefinition } } } };
  server = new grpc.Server();
  type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
  const notFound = (id: unknown) => Object.assign(new Error(`no rolling update ${String(id)}`), { code: grpc.status.NOT_FOUND, metadata: Object.assign(new grpc.Metadata(), {}) });
  server.addService(loaded.cutover.v1.RollingUpdates.service, {
    Get: (call: Call, cb: grpc.sendUnaryData<unknown>) => (byId[String(call.request.update_id)] === undefined ? cb(notFound(call.request.update_id)) : cb(null, { update: byId[String(call.request.update_id)], changed: false, detail: '' })),
    Health: (call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, call.request.update_id === routing.id ? health : { ...health, update_id: call.request.update_id, verdict: 'inconclusive', reasons: ['no traffic'], new_version: { ...health.new_version, request_count: 0 }, old_version: { ...health.old_version, request_count: 0 } }),
    List: (call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, { updates: call.request.all === true ? [rolledBack, routing, paused] : [routing, paused], revision: 1300 }),
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
  ['update-status', ['update', 'status', routing.id]],
  ['update-status-rolled-back', ['update', 'status', rolledBack.id]],
  ['update-status-60-columns', ['update', 'status', routing.id], { COLUMNS: '60' }],
  ['update-list', ['update', 'list']],
  ['update-list-all', ['update', 'list', '--all']],
  ['update-health', ['update', 'health', routing.id]],
];

for (const [name, args, env] of cases) {
  test.serial(`golden: cutover ${args.join(' ')}${env?.COLUMNS ? ` (${env.COLUMNS} columns)` : ''}`, async (t) => {
    const result = await cli.run(args, env === undefined ? {} : { env });
    t.is(result.code, 0, result.stderr);
    for (const line of result.stdout.split('\n')) t.true(line.length <= Number(env?.COLUMNS ?? 80), `fits: ${line}`);
    assertGolden(t, name, result.stdout);
  });
}

test.serial('golden: update status -o json is stable for scripts', async (t) => {
  const first = await cli.run(['update', 'status', routing.id, '-o', 'json']);
  const second = await cli.run(['update', 'status', routing.id, '-o', 'json']);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout, second.stdout);
  t.like(JSON.parse(first.stdout), { update: { id: routing.id, routing: '1:3' }, health: { verdict: 'breach' } });
  assertGolden(t, 'update-status-json', first.stdout);
});

test.serial('golden: status --watch of a finished update prints it once and exits 1 (ROLLED_BACK)', async (t) => {
  const result = await cli.run(['update', 'status', rolledBack.id, '--watch']);
  t.is(result.code, 1, result.stderr);
  assertGolden(t, 'update-status-watch-rolled-back', result.stdout);
});
