/**
 * The rolling-update benchmark's cluster: three `cutover node` processes started as bench/kv does
 * (`bench/kv/cutover-cluster.ts`: free 127.0.0.1 ports, default timing, log level warn, a
 * temporary data root under --data-dir), greeter 1.0.0, 2.0.0 and 2.1.0-bad published through
 * the Slices API and 1.0.0 deployed with 3 instances. Management calls go through plain grpc-js
 * clients of cutover.v1.RollingUpdates / Slices / KV, one channel per node and service.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { CutoverCluster } from '../kv/cutover-cluster.ts';
import { CHANNEL_OPTIONS } from '../kv/cutover-client.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';

export const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
const VERSIONS = ['1.0.0', '2.0.0', '2.1.0-bad'] as const;

type Service = 'RollingUpdates' | 'Slices' | 'KV' | 'Cluster';
type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** The transition-log entry and record fields the benchmark reads (proto field names). */
export interface UpdateView {
  readonly id: string;
  readonly state: string;
  readonly routing: string;
  readonly transitions: readonly { readonly step: string; readonly reason: string; readonly at_ms: string }[];
  readonly rollback: { readonly reason: string; readonly initiated_at_ms: string } | null;
}

let constructors: Record<string, grpc.ServiceClientConstructor> | undefined;

function constructorOf(service: Service): grpc.ServiceClientConstructor {
  if (constructors === undefined) {
    const loaded = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };
    constructors = loaded.cutover.v1;
  }
  const Client = constructors[service];
  if (Client === undefined) throw new Error(`cutover.v1.${service} is not in the management API`);
  return Client;
}

/** See the module comment. Members are numbered from 0; node ids are member + 1. */
export class UpdatesCluster {
  private readonly clients = new Map<string, AnyClient>();

  private constructor(readonly nodes: CutoverCluster) {}

  static async create(dataParent: string): Promise<UpdatesCluster> {
    return new UpdatesCluster(await CutoverCluster.create({ size: 3, dataParent, cpuProfileDir: undefined }));
  }

  get root(): string {
    return this.nodes.root;
  }

  get endpoints(): readonly string[] {
    return this.nodes.endpoints;
  }

  /** Starts the nodes, publishes greeter's three versions and runs 1.0.0 on 3 instances. */
  async start(progress: (line: string) => void): Promise<void> {
    await this.nodes.start();
    await this.nodes.waitHealthy(20_000);
    const leader = await this.leader();
    progress(`updates: cluster up in ${this.root}, leader node ${leader + 1}; publishing greeter ${VERSIONS.join(', ')}`);
    for (const version of VERSIONS) await this.publish(leader, version);
    await this.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 });
    await this.waitActive('1.0.0', 3);
  }

  /** Member index of the leader every running node agrees on. */
  leader(): Promise<number> {
    return this.nodes.leader();
  }

  async waitActive(version: string, count: number): Promise<void> {
    await waitFor(`${count} ACTIVE instances of ${GREETER} ${version}`, async () => {
      const reply = (await this.call(await this.leader(), 'Slices', 'Instances', { artifact: GREETER })) as { instances: { state: string; version: string }[] };
      return reply.instances.filter((i) => i.state === 'ACTIVE' && i.version === version).length >= count ? true : undefined;
    }, { attempts: 600, intervalMs: 100 });
  }

  client(member: number, service: Service): AnyClient {
    const address = this.endpoints[member];
    if (address === undefined) throw new Error(`no member ${member}`);
    const key = `${service}@${address}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const Client = constructorOf(service);
      client = new Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as AnyClient;
      this.clients.set(key, client);
    }
    return client;
  }

  /** One unary call to `member`, waiting for its channel within the deadline. */
  call(member: number, service: Service, method: string, request: object, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const client = this.client(member, service);
    const deadline = deadlineIn(timeoutMs);
    return new Promise((resolve, reject) =>
      client.waitForReady(deadline, (notReady) => {
        if (notReady) reject(new Error(`member ${member} (${this.endpoints[member]}) not reachable for ${service}/${method}: ${notReady.message}`));
        else client[method]!(request, { deadline }, ((error, response) => (error ? reject(error) : resolve(response))) as Callback);
      }),
    );
  }

  /** Get of an update on `member` (any node answers reads). */
  async get(member: number, id: string): Promise<UpdateView> {
    return (await this.call(member, 'RollingUpdates', 'Get', { update_id: id })).update as UpdateView;
  }

  /** Polls Get on any running node every `intervalMs` until the update is in one of `states`. */
  async untilState(id: string, states: readonly string[], timeoutMs: number, intervalMs = 50): Promise<UpdateView> {
    let last: UpdateView | undefined;
    try {
      return await waitFor(`update ${id} in ${states.join(' or ')}`, async () => {
        for (let m = 0; m < this.endpoints.length; m++) {
          try {
            last = await this.get(m, id);
            return states.includes(last.state) ? last : undefined;
          } catch {
            /* that node is down: the next one */
          }
        }
        return undefined;
      }, { attempts: Number.POSITIVE_INFINITY, intervalMs, timeoutMs });
    } catch (error) {
      throw new Error(`${(error as Error).message}: it is ${last?.state}, last steps ${JSON.stringify(last?.transitions.slice(-3))}`, { cause: error });
    }
  }

  /** Opens a RollingUpdates Watch on `member` from now, for the greeter artifact. */
  watchUpdates(member: number, onEvent: (event: { kind: string; update_id: string; state: string; transition: { step: string } | null; routing: { ratio: string } | null }) => void): () => void {
    const stream = this.client(member, 'RollingUpdates').Watch!({ from_revision: 0, artifact: GREETER }) as grpc.ClientReadableStream<never>;
    stream.on('data', onEvent);
    stream.on('error', () => {
      /* cancelled or the node went away */
    });
    return () => stream.cancel();
  }

  kill(member: number): Promise<bigint> {
    return this.nodes.kill(member);
  }

  restart(member: number): Promise<void> {
    return this.nodes.restart(member);
  }

  async destroy(keepData: boolean): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    await this.nodes.destroy(keepData);
  }

  private async publish(member: number, version: string): Promise<void> {
    const packed = await packArtifact(path.join(EXAMPLES, version));
    const client = this.client(member, 'Slices');
    const deadline = deadlineIn(20_000);
    await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (error) => (error ? reject(error) : resolve())));
    await new Promise((resolve, reject) => {
      const stream = client.Publish!({ deadline }, ((error, response) => (error ? reject(error) : resolve(response))) as Callback) as grpc.ClientWritableStream<{ chunk: Buffer }>;
      stream.write({ chunk: Buffer.from(packed.bytes) });
      stream.end();
    });
  }
}
