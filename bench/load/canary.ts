/**
 * Benchmark set-up, not an operator tool: puts a second version of the example greeter next to
 * 1.0.0 on a running local cluster and splits calls between them, so that `npm run load` has two
 * versions to report. It publishes the version through the Slices API, then writes its blueprint
 * and the routing record with KV Put, as the rolling-update controller would (Slices/Deploy
 * refuses a second version of a running artifact).
 *
 *   npx tsx bench/load/canary.ts --version 2.1.0-bad --weights 1:3   # publish, deploy, route new:old = 1:3
 *   npx tsx bench/load/canary.ts --clear --version 2.1.0-bad         # route back to 1.0.0 only, undeploy
 *
 * `--endpoint` (default 127.0.0.1:7001) is any node; writes go to the leader it names. The
 * version's files come from examples/slices/greeter/<version>/.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase, blueprintKey } from '../../src/slices/keys.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { parseEndpoints } from './options.ts';

const ARTIFACT = 'org.example:greeter';
const OLD_VERSION = '1.0.0';
const ROUTING_KEY = `version-routing/${ARTIFACT}`;
const TIMEOUT_MS = 30_000;

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Client = grpc.Client & Record<string, (request: object, options: grpc.CallOptions, callback: Callback) => void>;

const services = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };

function client(service: 'KV' | 'Cluster' | 'Slices', address: string): Client {
  return new services.cutover.v1[service]!(address, grpc.credentials.createInsecure()) as unknown as Client;
}

function call(c: Client, method: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => c[method]!.call(c, request, { deadline: deadlineIn(TIMEOUT_MS) }, (error, response) => (error ? reject(error) : resolve(response))));
}

function parseWeights(text: string): [number, number] {
  const match = /^(\d{1,9}):(\d{1,9})$/.exec(text);
  if (match === null || Number(match[1]) + Number(match[2]) === 0) throw new InvalidArgumentError(`expected new:old integer weights like 1:3, not both 0, got '${text}'.`);
  return [Number(match[1]), Number(match[2])];
}

async function publish(slices: grpc.Client, version: string): Promise<void> {
  const dir = fileURLToPath(new URL(`../../examples/slices/greeter/${version}/`, import.meta.url));
  if (!existsSync(dir)) throw new Error(`no example version ${version} in examples/slices/greeter/`);
  const packed = await packArtifact(dir);
  await new Promise<void>((resolve, reject) => {
    const stream = (slices as unknown as { Publish(o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): grpc.ClientWritableStream<object> }).Publish({ deadline: deadlineIn(TIMEOUT_MS) }, (error) => (error === null || error.code === grpc.status.ALREADY_EXISTS ? resolve() : reject(error)));
    stream.write({ chunk: packed.bytes });
    stream.end();
  });
}

async function main(): Promise<void> {
  const program = new Command('canary')
    .requiredOption('--version <version>', 'the greeter version to put next to 1.0.0 (a directory of examples/slices/greeter/)')
    .addOption(new Option('--weights <new:old>', 'routing weights, new version : 1.0.0').default([1, 3], '1:3').argParser(parseWeights))
    .addOption(new Option('--instances <n>', 'instances of the new version').default('3'))
    .addOption(new Option('--endpoint <host:port>', 'any node').default('127.0.0.1:7001'))
    .option('--clear', 'route everything to 1.0.0 again (delete the record) and undeploy the version')
    .showHelpAfterError();
  program.parse(process.argv);
  const o = program.opts<{ version: string; weights: [number, number]; instances: string; endpoint: string; clear?: boolean }>();
  const instances = Number(o.instances);
  if (!Number.isInteger(instances) || instances < 1 || instances > 64) program.error(`--instances: expected an integer in [1, 64], got '${o.instances}'`);
  const [endpoint] = parseEndpoints(o.endpoint);
  const status = client('Cluster', endpoint!);
  const leaderAddress = String((await call(status, 'Status', {})).leader_address);
  status.close();
  if (leaderAddress === '') throw new Error(`${endpoint} knows no leader`);
  const kv = client('KV', leaderAddress);
  const slices = client('Slices', leaderAddress);
  try {
    if (o.clear === true) {
      await call(kv, 'Delete', { key: ROUTING_KEY });
      await call(slices, 'Undeploy', { artifact: ARTIFACT, version: o.version });
      console.log(`canary: ${ARTIFACT} routes to ${OLD_VERSION} only; ${o.version} undeployed`);
      return;
    }
    await publish(slices, o.version);
    // Slices/Deploy refuses a second version of a running artifact (that is a rolling update's
    // job, and the update controller is not there yet), so write the blueprint as it would.
    await call(kv, 'Put', { key: blueprintKey(artifactBase('org.example', 'greeter'), o.version), value: formatBlueprint({ instances }) });
    await waitFor(`${instances} ACTIVE instances of ${ARTIFACT} ${o.version}`, async () => {
      const listed = (await call(slices, 'Instances', { artifact: ARTIFACT })).instances as { version: string; state: string }[];
      return listed.filter((i) => i.version === o.version && i.state === 'ACTIVE').length >= instances ? true : undefined;
    }, { attempts: Number.POSITIVE_INFINITY, timeoutMs: 60_000, intervalMs: 250 });
    const [newWeight, oldWeight] = o.weights;
    await call(kv, 'Put', { key: ROUTING_KEY, value: JSON.stringify({ updateId: `bench-canary-${o.version}`, oldVersion: OLD_VERSION, newVersion: o.version, newWeight, oldWeight }) });
    console.log(`canary: ${ARTIFACT} ${o.version} has ${instances} ACTIVE instances; calls split ${o.version}:${OLD_VERSION} = ${newWeight}:${oldWeight}`);
  } finally {
    kv.close();
    slices.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`canary: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
