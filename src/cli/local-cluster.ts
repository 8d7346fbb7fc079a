import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadManagementDefinition } from '../api/protos.ts';
import { packArtifact } from '../slices/artifact-package.ts';
import { sleep } from '../platform/wait.ts';
import { deadlineIn } from '../platform/wall-clock.ts';

export interface LocalClusterOptions {
  readonly size: number;
  readonly dataRoot: string;
  /** First API/peer port; node i listens on basePort + i - 1, metrics on metricsBasePort + i - 1. */
  readonly basePort: number;
  readonly metricsBasePort: number;
  readonly host: string;
  readonly logLevel: string;
}

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

interface StatusClient extends grpc.Client {
  Status(request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: { leader_id: number; term: number }) => void): void;
}

function statusOf(client: StatusClient): Promise<{ leader_id: number; term: number } | undefined> {
  return new Promise((resolve) => client.Status({}, { deadline: deadlineIn(1000) }, (error, response) => resolve(error ? undefined : response)));
}

/**
 * The main command: starts `size` `cutover node` processes on loopback with data under
 * `dataRoot` and a log file per node, waits for a leader, prints how to use the cluster, and
 * stops every node cleanly on Ctrl-C. Running it again restarts on the same data.
 */
export async function runLocalCluster(options: LocalClusterOptions): Promise<void> {
  const ids = Array.from({ length: options.size }, (_, i) => i + 1);
  const address = (id: number) => `${options.host}:${options.basePort + id - 1}`;
  const peers = ids.map((id) => `${id}=${address(id)}`).join(',');
  mkdirSync(options.dataRoot, { recursive: true });
  const children = new Map<number, ChildProcess>();
  for (const id of ids) {
    const log = openSync(path.join(options.dataRoot, `node-${id}.log`), 'a');
    const args = ['--import', 'tsx', MAIN, 'node', '--id', String(id), '--data-dir', path.join(options.dataRoot, `node-${id}`), '--listen', address(id), '--peers', peers, '--metrics-listen', `${options.host}:${options.metricsBasePort + id - 1}`, '--log-level', options.logLevel];
    // stdin is a pipe the node watches: if this launcher dies without stopping it, the node exits.
    const child = spawn(process.execPath, args, { stdio: ['pipe', log, log], env: { ...process.env, CUTOVER_EXIT_WITH_PARENT: '1' } });
    children.set(id, child);
    child.on('exit', (code, signal) => {
      children.delete(id);
      if (!stopping) console.error(`node ${id} exited (${signal ?? `code ${code}`}); see ${path.join(options.dataRoot, `node-${id}.log`)}`);
    });
  }
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the cluster…');
    for (const child of children.values()) child.kill('SIGTERM');
    for (let i = 0; i < 100 && children.size > 0; i++) await sleep(100);
    for (const child of children.values()) child.kill('SIGKILL');
    console.log('stopped; data kept in', options.dataRoot);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  const leader = await waitForLeader(ids.map(address));
  if (leader === undefined) {
    console.error(`no leader after 30 s; the logs are in ${options.dataRoot}/node-*.log`);
    await stop();
    return;
  }
  const example = await deployExample(address(leader.id)).catch((error: unknown) => `could not deploy the example: ${error instanceof Error ? error.message : String(error)}`);
  printWelcome(options, ids, address, leader, example);
}

/** The example slice the main command deploys, so that there is something to update. */
const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/slices/greeter/1.0.0/', import.meta.url));
const EXAMPLE_INSTANCES = 3;

interface SlicesClient extends grpc.Client {
  Publish(options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: { created: boolean }) => void): grpc.ClientWritableStream<{ chunk: Uint8Array }>;
  Deploy(request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void): void;
}

/**
 * Publishes examples/slices/greeter 1.0.0 and deploys it with 3 instances, unless it is already
 * deployed (a rerun on the same data). Returns a line for the welcome text.
 */
async function deployExample(leaderAddress: string): Promise<string> {
  const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: { Slices: grpc.ServiceClientConstructor } } };
  const client = new definition.cutover.v1.Slices(leaderAddress, grpc.credentials.createInsecure()) as unknown as SlicesClient;
  try {
    const packed = await packArtifact(EXAMPLE_DIR);
    await new Promise<void>((resolve, reject) => {
      const stream = client.Publish({ deadline: deadlineIn(30_000) }, (error) => (error ? reject(error) : resolve()));
      stream.write({ chunk: packed.bytes });
      stream.end();
    });
    const deployed = await new Promise<string>((resolve, reject) => {
      client.Deploy({ artifact: 'org.example:greeter', version: '1.0.0', instances: EXAMPLE_INSTANCES }, { deadline: deadlineIn(30_000) }, (error) => {
        if (error === null) resolve(`deployed org.example:greeter 1.0.0 with ${EXAMPLE_INSTANCES} instances`);
        else if (error.code === grpc.status.ALREADY_EXISTS || error.code === grpc.status.FAILED_PRECONDITION) resolve(`org.example:greeter is already deployed (${error.details})`);
        else reject(error);
      });
    });
    return deployed;
  } finally {
    client.close();
  }
}

async function waitForLeader(addresses: string[]): Promise<{ id: number; term: number } | undefined> {
  const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: { Cluster: grpc.ServiceClientConstructor } } };
  const clients = addresses.map((a) => new definition.cutover.v1.Cluster(a, grpc.credentials.createInsecure()) as unknown as StatusClient);
  try {
    for (let attempt = 0; attempt < 300; attempt++) {
      for (const client of clients) {
        const s = await statusOf(client);
        if (s !== undefined && s.leader_id !== 0) return { id: s.leader_id, term: s.term };
      }
      await sleep(100);
    }
    return undefined;
  } finally {
    for (const c of clients) c.close();
  }
}

function printWelcome(options: LocalClusterOptions, ids: number[], address: (id: number) => string, leader: { id: number; term: number }, example: string): void {
  console.log(`Cutover local cluster: ${ids.length} nodes on ${options.host}, data in ${options.dataRoot}\n`);
  for (const id of ids) {
    console.log(`  node ${id}  api+peer ${address(id)}  metrics http://${options.host}:${options.metricsBasePort + id - 1}/metrics${id === leader.id ? '   <- leader' : ''}`);
  }
  console.log(`\nLeader: node ${leader.id} (term ${leader.term}). Logs: ${options.dataRoot}/node-<id>.log`);
  console.log(`Example slice: ${example}`);
  console.log('\nTry it (any reflection-capable gRPC client works):');
  console.log(`  npx @bufbuild/buf curl --protocol grpc --http2-prior-knowledge --list-services http://${address(1)}`);
  console.log(`  npx @bufbuild/buf curl --protocol grpc --http2-prior-knowledge -d '{"key":"hello","value":"world"}' http://${address(1)}/cutover.v1.KV/Put`);
  console.log(`  npx @bufbuild/buf curl --protocol grpc --http2-prior-knowledge -d '{"key":"hello"}' http://${address(ids.length)}/cutover.v1.KV/Get`);
  console.log(`  npx @bufbuild/buf curl --protocol grpc --http2-prior-knowledge -d '{"artifact":"org.example:greeter"}' http://${address(2)}/cutover.v1.Slices/Instances`);
  console.log(`  npx @bufbuild/buf curl --protocol grpc --http2-prior-knowledge -d '{"artifact":"org.example:greeter","method":"hello","payload_json":"{\\"name\\":\\"Ada\\"}"}' http://${address(3)}/cutover.v1.Slices/Invoke`);
  console.log('  npm run load -- --rps 200 --duration 30s');
  console.log('\nCtrl-C stops every node; running this again restarts on the same data.');
}
