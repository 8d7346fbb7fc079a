/**
 * `cutover notify …` in process: the commands registered on a commander program with the global
 * flags of src/cli/main.ts, talking by reflection to a real gRPC server on 127.0.0.1 that serves
 * cutover.v1.Notifications over a MemoryClusterPort; stdout captured, errors checked as main.ts
 * reports them (the one line and the exit code). Serial: stdout is shared.
 */
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { Command, Option } from 'commander';
import { notificationsService } from '../../src/api/notifications-service.ts';
import { LOADER_OPTIONS, PROTO_ROOT } from '../../src/api/protos.ts';
import { errorLine, exitCodeOf } from '../../src/cli/cli-errors.ts';
import { registerNotifyCommands } from '../../src/cli/commands/notify-commands.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { channelKey } from '../../src/notify/channel.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { Receiver } from './receiver.ts';

const SECRET = 'cli-secret-that-must-not-show-1234';
const NOW_MS = 1_750_000_000_000;

Object.assign(process.env, { CUTOVER_CACHE_DIR: 'off', NO_COLOR: '1', COLUMNS: '160', CUTOVER_NOW_MS: String(NOW_MS), TZ: 'UTC', NOTIFY_TEST_SECRET: SECRET });

async function serve(t: ExecutionContext): Promise<{ endpoint: string; port: MemoryClusterPort }> {
  const packageDefinition = protoLoader.loadSync(path.join(PROTO_ROOT, 'cutover/v1/notifications.proto'), LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as { cutover: { v1: { Notifications: { service: grpc.ServiceDefinition } } } };
  const port = new MemoryClusterPort();
  const server = new grpc.Server();
  server.addService(loaded.cutover.v1.Notifications.service, notificationsService({ port, clock: realClock, wallClockMs: () => NOW_MS - 60_000 }));
  new ReflectionService(packageDefinition).addToServer(server);
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return { endpoint: `127.0.0.1:${bound}`, port };
}

/** Runs `cutover <args>` in process; resolves with stdout, or with the error main.ts would report. */
async function cli(endpoint: string, args: readonly string[]): Promise<{ stdout: string; error?: unknown }> {
  const program = new Command('cutover')
    .addOption(new Option('-e, --endpoints <list>').default(endpoint))
    .addOption(new Option('--timeout <duration>').default('10s'))
    .addOption(new Option('-o, --output <format>').choices(['table', 'json', 'yaml']).default('table'))
    .option('--no-color')
    .option('--debug')
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerNotifyCommands(program);
  const write = process.stdout.write.bind(process.stdout);
  let stdout = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'cutover', ...args]);
    return { stdout };
  } catch (error) {
    return { stdout, error };
  } finally {
    process.stdout.write = write;
  }
}

test.serial('set, list, get and delete a channel; the secret never shows', async (t) => {
  const { endpoint, port } = await serve(t);
  const set = await cli(endpoint, ['notify', 'set', 'ops', '--type', 'webhook', '--url', 'https://hooks.example.com/cutover', '--secret-env', 'NOTIFY_TEST_SECRET', '--events', 'update.failed,update.rolled-back', '--actor', 'ada']);
  t.is(set.error, undefined);
  t.is(set.stdout, 'created channel ops: webhook to https://hooks.example.com/cutover, cluster-wide, events update.rolled-back,update.failed, signed\ntry it with `cutover notify test ops`\n');
  t.true((await port.get(channelKey('ops')))!.value.includes(SECRET));
  await cli(endpoint, ['notify', 'set', 'greeter', '--type', 'slack', '--url', 'https://hooks.slack.com/services/T0/B0/slacktoken', '--artifact', 'org.example:greeter', '--actor', 'bob']);
  const list = await cli(endpoint, ['notify', 'list']);
  t.is(
    list.stdout,
    [
      'NAME     TYPE     SCOPE                EVENTS                            SECRET  URL',
      'greeter  slack    org.example:greeter  all                               -       https://hooks.slack.com/services/T0/B0/****',
      'ops      webhook  cluster              update.rolled-back,update.failed  set     https://hooks.example.com/cutover',
      '',
    ].join('\n'),
  );
  const get = await cli(endpoint, ['notify', 'get', 'ops']);
  t.regex(get.stdout, /^name: +ops$/m);
  t.regex(get.stdout, /^secret: +set \(write-only\)$/m);
  t.regex(get.stdout, /^updated: .* by ada$/m);
  for (const args of [['notify', 'list', '-o', 'json'], ['notify', 'get', 'ops', '-o', 'yaml'], ['notify', 'list']]) {
    const out = (await cli(endpoint, args)).stdout;
    t.false(out.includes(SECRET) || out.includes('slacktoken'), args.join(' '));
  }
  const deleted = await cli(endpoint, ['notify', 'delete', 'ops']);
  t.regex(deleted.stdout, /^deleted channel ops \(revision \d+\)\n$/);
  const missing = await cli(endpoint, ['notify', 'get', 'ops']);
  t.is(errorLine(missing.error), 'no notification channel "ops" — list them with `cutover notify list`');
  t.is(exitCodeOf(missing.error), 1);
});

test.serial('notify test says whether the receiver took it; a failure exits 1', async (t) => {
  const receiver = await Receiver.start({ status: 200 });
  t.teardown(() => receiver.close());
  const { endpoint } = await serve(t);
  await cli(endpoint, ['notify', 'set', 'ops', '--type', 'discord', '--url', receiver.url]);
  const ok = await cli(endpoint, ['notify', 'test', 'ops', '--actor', 'ada']);
  t.is(ok.error, undefined);
  t.regex(ok.stdout, /^delivered to ops: HTTP 200 in \d+ ms \(event \d{13}-test\.ops, delivery test-1-1\)\n$/);
  t.like(receiver.bodies()[0], { content: 'Test notification: the cluster, by ada: test of notification channel ops' });
  receiver.behaviour = { status: 403, body: 'forbidden' };
  const failed = await cli(endpoint, ['notify', 'test', 'ops']);
  t.regex(errorLine(failed.error), /^test notification to ops failed after \d+ ms: status: HTTP 403: forbidden — check the URL/);
  t.is(exitCodeOf(failed.error), 1);
});

test.serial('bad arguments are usage errors (exit 2) before anything is sent; the cluster names a bad field', async (t) => {
  const { endpoint } = await serve(t);
  const base = ['notify', 'set', 'ops', '--type', 'webhook', '--url', 'https://hooks.example.com/x'];
  const usage = async (args: string[], line: RegExp): Promise<void> => {
    const { error } = await cli(endpoint, args);
    t.is(exitCodeOf(error), 2, args.join(' '));
    t.regex(errorLine(error), line);
  };
  await usage([...base, '--events', 'update.routing'], /^--events: "update\.routing" is not an action that notify/);
  await usage([...base, '--secret', SECRET, '--secret-env', 'NOTIFY_TEST_SECRET'], /^give --secret or --secret-env, not both/);
  await usage([...base, '--secret-env', 'NOTIFY_TEST_UNSET_VARIABLE'], /^--secret-env: the environment variable NOTIFY_TEST_UNSET_VARIABLE is not set/);
  await usage([...base, '--artifact', 'greeter'], /^"greeter" is not groupId:artifactId/);
  const badType = await cli(endpoint, ['notify', 'set', 'ops', '--type', 'email', '--url', 'https://x.example.com']);
  t.is((badType.error as { code?: string }).code, 'commander.invalidArgument');
  const badUrl = await cli(endpoint, ['notify', 'set', 'ops', '--type', 'webhook', '--url', 'ftp://x.example.com/']);
  t.regex(errorLine(badUrl.error), /^url: must use http or https, got ftp \[INVALID_ARGUMENT\]/);
  t.is(exitCodeOf(badUrl.error), 1);
});
