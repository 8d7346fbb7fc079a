/**
 * Golden tests of `cutover events` and of the recent events in `cutover update status`, against a
 * fixture server with the real RollingUpdates and Events protos and real reflection (fixed
 * answers), "now" fixed by CUTOVER_NOW_MS and TZ=UTC, stdout not a terminal (80 columns, no
 * colour).
 *
 * `update status` runs the real binary. `events` runs in process, on a commander program with the
 * binary's global options and `registerEventsCommands`, because the binary's command list
 * (src/cli/main.ts) is wired by the lead; once it is, these cases can run through `CliRunner` as
 * they are.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import test from 'ava';
import { Command, Option } from 'commander';
import { LOADER_OPTIONS, PROTO_ROOT } from '../../src/api/protos.ts';
import { parseAge, registerEventsCommands } from '../../src/cli/commands/events-commands.ts';
import { freePort } from '../../src/platform/wait.ts';
import { assertGolden, CliRunner } from './cli-harness.ts';
import { FIXED_NOW_MS } from './fixture-server.ts';

const MIN = 60_000;
const UPDATE_ID = 'greeter-2.0.0-r42';
const GREETER = 'org.example:greeter';

function event(n: number, agoMs: number, action: string, actor: string, reason: string, target: Partial<Record<string, string | number>> = {}, revision = 800 + n): Record<string, unknown> {
  const at = FIXED_NOW_MS - agoMs;
  return {
    id: `${at}-u.${UPDATE_ID}.${n}`,
    at_ms: at,
    actor: { kind: ['controller', 'health-gate'].includes(actor) ? 'system' : 'user', name: actor },
    action,
    target: { artifact: GREETER, update_id: UPDATE_ID, version: '2.0.0', instance_id: '', node_id: 0, member_id: 0, ...target },
    reason,
    details_json: '{}',
    revision,
  };
}

const trail = [
  event(0, 2 * 86_400_000, 'member.added', 'erin', 'member 4 added as a learner at 10.0.0.4:7001', { artifact: '', update_id: '', version: '', member_id: 4 }),
  event(1, 3 * 3600_000, 'slice.deployed', 'carol', 'deployed org.example:greeter:1.0.0 with 3 instance(s)', { update_id: '', version: '1.0.0' }),
  event(2, 5 * MIN, 'update.started', 'ada', 'CANARY update of org.example:greeter from 1.0.0 to 2.0.0'),
  event(3, 4 * MIN, 'update.step', 'controller', '3 new instances ACTIVE'),
  event(4, 3 * MIN, 'update.routing', 'controller', 'hold passed, health holds'),
  event(5, 2 * MIN, 'update.paused', 'health-gate', 'health breach 1/3 consecutive breaches: error rate 1.47% above 1.00% (9 of 612 calls), and a reason long enough to be cut at the edge of the terminal'),
  event(6, 30_000, 'update.resumed', 'bob', 'dashboards look fine'),
];

const update = {
  id: UPDATE_ID,
  artifact: GREETER,
  old_version: '1.0.0',
  new_version: '2.0.0',
  state: 'ROUTING',
  paused: false,
  pause_reason: '',
  strategy: 'CANARY',
  routing: '1:9',
  step_index: 1,
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
  transitions: [{ step: 'resume', at_ms: FIXED_NOW_MS - 30_000, actor: { kind: 'user', name: 'bob' }, reason: 'dashboards look fine' }],
  initiated_by: 'ada',
  created_at_ms: FIXED_NOW_MS - 5 * MIN,
  updated_at_ms: FIXED_NOW_MS - 30_000,
  revision: 806,
  record_json: '{}',
};

let server: grpc.Server;
let address: string;
let cli: CliRunner;
const requests: Record<string, unknown>[] = [];
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'cutover-events-golden-'));

type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;

/** The fixture's List: filters by update, actor and action, newest first when asked, limited. */
function listAnswer(request: Record<string, unknown>): Record<string, unknown> {
  requests.push(request);
  let events = trail.filter((e) => (request.update_id === '' || (e.target as { update_id: string }).update_id === request.update_id) && (request.actor === '' || (e.actor as { name: string }).name === request.actor));
  events = events.filter((e) => request.action === '' || e.action === request.action).filter((e) => Number(e.at_ms) >= Number(request.since_ms));
  if (request.order === 'NEWEST_FIRST') events = [...events].reverse();
  const limit = Number(request.limit) || 100;
  return { events: events.slice(0, limit), more: events.length > limit, revision: 900, invalid: 0 };
}

test.before(async () => {
  address = `127.0.0.1:${await freePort()}`;
  const definition = protoLoader.loadSync([path.join(PROTO_ROOT, 'cutover/v1/updates.proto'), path.join(PROTO_ROOT, 'cutover/v1/events.proto')], LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { cutover: { v1: Record<string, { service: grpc.ServiceDefinition }> } };
  server = new grpc.Server();
  server.addService(loaded.cutover.v1.RollingUpdates!.service, {
    Get: (_call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, { update, changed: false, detail: '' }),
    Health: (_call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, { update_id: UPDATE_ID, old_version: null, new_version: null, window_ms: 11_000, verdict: 'inconclusive', reasons: ['no traffic'], collected_at_ms: FIXED_NOW_MS }),
  });
  server.addService(loaded.cutover.v1.Events!.service, {
    List: (call: Call, cb: grpc.sendUnaryData<unknown>) => cb(null, listAnswer(call.request)),
    Watch: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      requests.push(call.request);
      // Committed after the list's revision (900); the first one is a repeat the CLI must skip.
      call.write(event(6, 30_000, 'update.resumed', 'bob', 'dashboards look fine'));
      call.write(event(7, 10_000, 'update.routing', 'controller', 'hold passed, health holds', {}, 901));
      call.write(event(8, 0, 'update.rollback-started', 'health-gate', 'automatic rollback after 3/3 consecutive breaches: p99 latency 900 ms above 500 ms', {}, 902));
      call.end();
    },
  });
  new ReflectionService(definition).addToServer(server);
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  cli = new CliRunner(address, { CUTOVER_NOW_MS: String(FIXED_NOW_MS) });
  Object.assign(process.env, { CUTOVER_NOW_MS: String(FIXED_NOW_MS), CUTOVER_CACHE_DIR: cacheDir, NO_COLOR: '1', TZ: 'UTC', COLUMNS: '80' });
});

test.after.always(() => {
  server?.forceShutdown();
  cli?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

/** `cutover <args>` in process with the binary's global options; returns what it printed. */
async function events(args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  const program = new Command('cutover')
    .addOption(new Option('-e, --endpoints <list>').default(address))
    .addOption(new Option('--timeout <duration>').default('10s'))
    .addOption(new Option('-o, --output <format>').choices(['table', 'json', 'yaml']).default('table'))
    .option('--no-color')
    .option('--debug')
    .exitOverride();
  registerEventsCommands(program);
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'cutover', ...args]);
  } finally {
    process.stdout.write = write;
    process.env = saved;
  }
  return out;
}

function fits(t: { true: (value: boolean, message: string) => void }, text: string, width = 80): void {
  for (const line of text.split('\n')) t.true(line.length <= width, `fits ${width}: ${line}`);
}

test.serial('golden: cutover events (the newest, oldest first, each reason under its row)', async (t) => {
  const text = await events(['events']);
  fits(t, text);
  assertGolden(t, 'events', text);
  t.like(requests.at(-1), { order: 'NEWEST_FIRST', limit: 20, update_id: '', since_ms: 0 });
});

test.serial('golden: cutover events --update --limit 3 says that older events match', async (t) => {
  const text = await events(['events', '--update', UPDATE_ID, '--limit', '3']);
  fits(t, text);
  assertGolden(t, 'events-limit', text);
});

test.serial('golden: cutover events at 60 columns', async (t) => {
  const text = await events(['events', '--actor', 'health-gate'], { COLUMNS: '60' });
  fits(t, text, 60);
  assertGolden(t, 'events-60-columns', text);
});

test.serial('cutover events: filters become the request; --since is an age before now', async (t) => {
  await events(['events', '--artifact', GREETER, '--actor', 'bob', '--action', 'update.resumed', '--since', '10m']);
  t.like(requests.at(-1), { artifact: GREETER, actor: 'bob', action: 'update.resumed', since_ms: FIXED_NOW_MS - 10 * MIN });
  t.is(parseAge('--since', '7d'), 7 * 86_400_000);
  t.like(t.throws(() => parseAge('--since', '10 minutes')), { code: 'USAGE' });
  t.is(await events(['events', '--action', 'update.failed']), 'no events match\n');
});

test.serial('golden: cutover events -o json is the list, oldest first', async (t) => {
  const text = await events(['events', '--update', UPDATE_ID, '-o', 'json']);
  const parsed = JSON.parse(text) as { events: { id: string }[]; more: boolean; revision: number };
  t.deepEqual(
    parsed.events.map((e) => e.id),
    trail.slice(2).map((e) => e.id),
  );
  t.like(parsed, { more: false, revision: 900 });
  assertGolden(t, 'events-json', text);
});

test.serial('golden: cutover events --watch prints the recent ones, then each new one as a line, from the list\'s revision', async (t) => {
  const text = await events(['events', '--update', UPDATE_ID, '--limit', '2', '--watch']);
  fits(t, text);
  assertGolden(t, 'events-watch', text);
  t.like(requests.at(-1), { update_id: UPDATE_ID, from_revision: 901 });
});

test.serial('golden: update status shows the update\'s recent events', async (t) => {
  const result = await cli.run(['update', 'status', UPDATE_ID]);
  t.is(result.code, 0, result.stderr);
  fits(t, result.stdout);
  assertGolden(t, 'update-status-events', result.stdout);
  t.like(requests.at(-1), { update_id: UPDATE_ID, limit: 5, order: 'NEWEST_FIRST' });
});
