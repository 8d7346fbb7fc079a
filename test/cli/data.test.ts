/**
 * The data commands of the real `cutover` binary against a real 3-node cluster (node processes on
 * 127.0.0.1): kv, slice, invoke, describe and call, their JSON and YAML parsed back, and a refused
 * operation's exit code. One cluster for the file; the tests run in order and build on each other.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { waitFor } from '../../src/platform/wait.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { ProcessCluster } from '../process/harness.ts';
import { CliRunner } from './cli-harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));

interface KeyValue {
  key: string;
  value: string;
  mod_revision: number;
}
interface Instance {
  version: string;
  state: string;
  assigned: boolean;
  node_id: number;
}

let cluster: ProcessCluster;
let cli: CliRunner;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cutover-cli-data-'));

test.before(async () => {
  cluster = await ProcessCluster.start(3);
  cli = new CliRunner([...cluster.nodes.values()].map((n) => n.address).join(','));
});

test.after.always(async () => {
  await cluster?.destroy();
  cli?.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

test.serial('kv put, get, range and del; JSON parsed back', async (t) => {
  const put = await cli.json<{ revision: number }>(['kv', 'put', 'cli/a', 'one']);
  t.true(put.revision > 0);
  await cli.json(['kv', 'put', 'cli/b', 'two']);
  t.like(await cli.json(['kv', 'get', 'cli/a']), { found: true, kv: { key: 'cli/a', value: 'one', mod_revision: put.revision } });
  t.like(await cli.json(['kv', 'get', 'cli/a', '--serializable']), { found: true, kv: { value: 'one' } });
  const range = await cli.json<{ kvs: KeyValue[]; more: boolean }>(['kv', 'range', 'cli/']);
  t.deepEqual(range.kvs.map((kv) => [kv.key, kv.value]), [['cli/a', 'one'], ['cli/b', 'two']]);
  const limited = await cli.json<{ kvs: KeyValue[]; more: boolean }>(['kv', 'range', 'cli/', '--limit', '1']);
  t.is(limited.kvs.length, 1);
  t.true(limited.more);
  const table = await cli.ok(['kv', 'range', 'cli/']);
  t.regex(table, /^KEY\s+VALUE\s+MOD-REV\s+VERSION\ncli\/a\s+one\s+\d+\s+1\ncli\/b\s+two\s+\d+\s+1\n$/);
  const deleted = await cli.json<{ deleted: KeyValue[] }>(['kv', 'del', 'cli/', '--prefix']);
  t.deepEqual(deleted.deleted.map((kv) => kv.key), ['cli/a', 'cli/b']);
});

test.serial('kv get of a missing key exits 1 with one line; -o json still prints found=false', async (t) => {
  const table = await cli.run(['kv', 'get', 'cli/missing']);
  t.is(table.code, 1);
  t.is(table.stdout, '');
  t.regex(table.stderr, /^cutover: key "cli\/missing" does not exist \(revision \d+\) — list keys with `cutover kv range <prefix>`\n$/);
  const json = await cli.run(['kv', 'get', 'cli/missing', '-o', 'json']);
  t.is(json.code, 1);
  t.like(JSON.parse(json.stdout), { found: false });
});

test.serial('kv watch from a revision prints the events, one JSON line each, and stops after --count', async (t) => {
  const first = await cli.json<{ revision: number }>(['kv', 'put', 'watched/x', '1']);
  await cli.ok(['kv', 'put', 'watched/y', '2']);
  await cli.ok(['kv', 'del', 'watched/x']);
  const out = await cli.ok(['kv', 'watch', 'watched/', '--rev', String(first.revision), '--count', '3', '-o', 'json']);
  const events = out.trim().split('\n').map((line) => JSON.parse(line) as { type: string; kv: KeyValue });
  t.deepEqual(events.map((e) => [e.type, e.kv.key]), [['PUT', 'watched/x'], ['PUT', 'watched/y'], ['DELETE', 'watched/x']]);
  const table = await cli.ok(['kv', 'watch', 'watched/', '--rev', String(first.revision), '--count', '2']);
  t.deepEqual(table.trim().split('\n').map((l) => l.replace(/\(revision \d+\)/, '(revision N)')), ['PUT watched/x = 1 (revision N)', 'PUT watched/y = 2 (revision N)']);
});

test.serial('kv watch from now sees a put made while it runs', async (t) => {
  const watch = cli.run(['kv', 'watch', 'live/', '--count', '1', '-o', 'json', '--timeout', '30s']);
  // The watch starts from the revision current when it is set up: put until it reports one.
  let n = 0;
  const done = { value: false };
  void watch.then(() => (done.value = true));
  await waitFor('the watch to see a put', async () => {
    await cli.ok(['kv', 'put', 'live/k', String(n++)]);
    return done.value;
  }, { attempts: 40, intervalMs: 250 });
  const result = await watch;
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout.trim()), { type: 'PUT', kv: { key: 'live/k' } });
});

test.serial('slice publish: a directory, the same again (not created), and a .tgz', async (t) => {
  const first = await cli.json<{ created: boolean; artifact: { artifact: string; version: string; methods: string[] } }>(['slice', 'publish', path.join(EXAMPLES, '1.0.0')]);
  t.like(first, { created: true, artifact: { artifact: GREETER, version: '1.0.0', methods: ['hello'] } });
  const again = await cli.ok(['slice', 'publish', path.join(EXAMPLES, '1.0.0')]);
  t.regex(again, /^already published with the same bytes: org\.example:greeter 1\.0\.0 \(sha256 [0-9a-f]{12}…, \d+ B, methods hello\)\n$/);
  const tgz = path.join(scratch, 'greeter-2.0.0.tgz');
  writeFileSync(tgz, (await packArtifact(path.join(EXAMPLES, '2.0.0'))).bytes);
  const second = await cli.ok(['slice', 'publish', tgz]);
  t.regex(second, /^published org\.example:greeter 2\.0\.0 \(sha256 [0-9a-f]{12}…/);
  const missing = await cli.run(['slice', 'publish', path.join(scratch, 'nothing-here')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^cutover: cannot pack .*nothing-here/);
});

test.serial('slice list: JSON and YAML parsed back, the table', async (t) => {
  const json = await cli.json<{ versions: { artifact: string; version: string; deployed: boolean; published_at_ms: number }[] }>(['slice', 'list']);
  t.deepEqual(json.versions.map((v) => [v.artifact, v.version, v.deployed]), [[GREETER, '1.0.0', false], [GREETER, '2.0.0', false]]);
  const yaml = await cli.ok(['slice', 'list', '-o', 'yaml']);
  t.deepEqual(parseYaml(yaml), json);
  const table = await cli.ok(['slice', 'list', GREETER]);
  t.regex(table, /^ARTIFACT\s+VERSION\s+INSTANCES\s+METHODS\s+PUBLISHED\norg\.example:greeter\s+1\.0\.0\s+-\s+hello\s+\d{4}-\d\d-\d\d \d\d:\d\d \(\d+s ago\)\n/);
});

test.serial('slice deploy, then instances become ACTIVE on every node; invoke answers', async (t) => {
  const deployed = await cli.json(['slice', 'deploy', GREETER, '1.0.0', '-i', '3']);
  t.like(deployed, { blueprint: { artifact: GREETER, version: '1.0.0', instances: 3 } });
  const active = await waitFor('3 ACTIVE instances', async () => {
    const response = await cli.json<{ instances: Instance[] }>(['slice', 'instances', GREETER]);
    const running = response.instances.filter((i) => i.assigned && i.state === 'ACTIVE');
    return running.length === 3 ? running : undefined;
  }, { attempts: 60, intervalMs: 250 });
  t.deepEqual(active.map((i) => i.node_id).sort(), [1, 2, 3]);
  t.regex(await cli.ok(['slice', 'instances']), /^ARTIFACT\s+VERSION\s+INSTANCE\s+NODE\s+STATE\s+REASON\n(org\.example:greeter\s+1\.0\.0\s+i\S+\s+\d\s+ACTIVE\n){3}$/);
  t.deepEqual(await cli.json(['invoke', GREETER, 'hello', '{"name":"Ada"}']), { message: 'Hello, Ada!', version: '1.0.0' });
  t.is(await cli.ok(['invoke', GREETER, 'hello', '{"name":"Bo"}']), '{\n  "message": "Hello, Bo!",\n  "version": "1.0.0"\n}\n');
  // The generic call takes lowerCamelCase JSON names too (payloadJson for payload_json).
  const called = await cli.json<{ payload_json: string }>(['call', 'Slices/Invoke', JSON.stringify({ artifact: GREETER, method: 'hello', payloadJson: '{"name":"Cy"}' })]);
  t.deepEqual(JSON.parse(called.payload_json), { message: 'Hello, Cy!', version: '1.0.0' });
});

test.serial('refused operations exit 1 with the cluster\'s code and what to do', async (t) => {
  const again = await cli.run(['slice', 'deploy', GREETER, '1.0.0', '-i', '3']);
  t.is(again.code, 1);
  t.regex(again.stderr, /^cutover: .*\[ALREADY_DEPLOYED\] — change the instance count with `cutover slice scale`.*\n$/);
  const other = await cli.run(['slice', 'deploy', GREETER, '2.0.0', '-i', '1']);
  t.is(other.code, 1);
  t.regex(other.stderr, /\[VERSION_RUNNING\] — run `cutover update start <group:artifact> <version>` for that\n$/);
  const unknown = await cli.run(['invoke', GREETER, 'nope']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /\[UNKNOWN_METHOD\]/);
  t.is(unknown.stderr.trim().split('\n').length, 1, 'one line, no stack');
});

test.serial('slice scale and undeploy', async (t) => {
  t.like(await cli.json(['slice', 'scale', GREETER, '1.0.0', '-i', '2']), { blueprint: { instances: 2 } });
  await waitFor('2 assigned instances', async () => {
    const response = await cli.json<{ instances: Instance[] }>(['slice', 'instances', GREETER]);
    return response.instances.filter((i) => i.assigned).length === 2;
  }, { attempts: 60, intervalMs: 250 });
  t.regex(await cli.ok(['slice', 'list']), /org\.example:greeter\s+1\.0\.0\s+2\s+hello/);
  const undeployed = await cli.ok(['slice', 'undeploy', GREETER, '1.0.0']);
  t.is(undeployed, 'undeployed org.example:greeter 1.0.0 (was 2 instances); its instances drain and stop\n');
  const json = await cli.json<{ versions: { deployed: boolean }[] }>(['slice', 'list', GREETER]);
  t.true(json.versions.every((v) => !v.deployed));
});

test.serial('describe: every service, one service, a method with its messages, a message', async (t) => {
  const all = await cli.json<{ services: { name: string; methods: { name: string }[] }[] }>(['describe']);
  const names = all.services.map((s) => s.name);
  for (const service of ['cutover.v1.KV', 'cutover.v1.Cluster', 'cutover.v1.Slices', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']) t.true(names.includes(service), service);
  t.regex(await cli.ok(['describe', 'Slices']), /^service cutover\.v1\.Slices \{\n {2}rpc Publish\(stream PublishRequest\) returns \(PublishResponse\);\n/);
  const method = await cli.ok(['describe', 'Slices/Invoke']);
  t.true(method.includes('rpc Invoke(InvokeRequest) returns (InvokeResponse);'));
  t.true(method.includes('message InvokeRequest {\n  string artifact = 1;\n  string method = 2;\n  string payload_json = 3;\n  uint32 timeout_ms = 4;\n}'));
  t.like(await cli.json(['describe', 'cutover.v1.Member']), { message: 'cutover.v1.Member', fields: [{ name: 'id', type: 'uint64' }, { name: 'address', type: 'string' }, { name: 'learner', type: 'bool' }] });
  const unknown = await cli.run(['describe', 'cutover.v1.Nothing']);
  t.is(unknown.code, 2);
});

test.serial('call: unary, stdin, client streaming, a bidi stream, and a strict request check', async (t) => {
  const put = await cli.json<{ revision: number; prev_kv: unknown }>(['call', 'cutover.v1.KV/Put', '{"key":"called","value":"yes"}']);
  t.true(put.revision > 0);
  t.is(put.prev_kv, null);
  t.like(await cli.json(['call', 'KV/Get', '{"key":"called"}']), { found: true, kv: { value: 'yes' } });
  t.like(await cli.json(['call', 'KV/Range', '{"prefix":"called","limit":1}']), { kvs: [{ key: 'called' }] });
  const fromStdin = await cli.run(['call', 'cutover.v1.Cluster/ListMembers', '-', '-o', 'json'], { input: '{}' });
  t.is((JSON.parse(fromStdin.stdout) as { members: unknown[] }).members.length, 3);
  const services = await cli.run(['call', 'grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '[{"list_services":"*"}]', '-o', 'json']);
  t.is(services.code, 0, services.stderr);
  const answer = JSON.parse(services.stdout.trim()) as { list_services_response: { service: { name: string }[] } };
  t.true(answer.list_services_response.service.some((s) => s.name === 'cutover.v1.KV'));
  // Client streaming, bytes as base64: the .tgz of greeter 2.1.0-bad in one Publish message.
  const packed = await packArtifact(path.join(EXAMPLES, '2.1.0-bad'));
  const request = [{ chunk: Buffer.from(packed.bytes).toString('base64'), expected_sha256: packed.sha256 }];
  t.like(await cli.json(['call', 'cutover.v1.Slices/Publish', JSON.stringify(request)]), { created: true, artifact: { artifact: GREETER, version: '2.1.0-bad', sha256: packed.sha256 } });
  const wrong = await cli.run(['call', 'KV/Get', '{"kee":"called"}']);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr, /cutover\.v1\.GetRequest has no field "kee" \(at GetRequest\); its fields are key, serializable/);
  const noMethod = await cli.run(['call', 'KV/Fetch', '{}']);
  t.is(noMethod.code, 2);
  t.regex(noMethod.stderr, /cutover\.v1\.KV has no method "Fetch"; it has Put, Get, Range, Delete, Txn, Watch/);
});
