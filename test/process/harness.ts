/**
 * Real node processes on 127.0.0.1 for process tests: each node is `cutover node` in its own
 * process with its own LevelDB directory; clients are real gRPC clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { freePort, sleep, waitFor } from '../../src/platform/wait.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type UnaryClient = grpc.Client & Record<string, (request: object, options: grpc.CallOptions, callback: Callback) => void>;
type PublishClient = grpc.Client & { Publish: (options: grpc.CallOptions, callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer }> };

/** The `cutover.v1` services a test calls. */
export type ManagementService = 'KV' | 'Cluster' | 'Slices' | 'RollingUpdates' | 'Events' | 'Notifications' | 'Health';

export interface ProcNode {
  readonly id: number;
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  process: ChildProcess | undefined;
  exit: Promise<number | null> | undefined;
}

export class ProcessCluster {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'cutover-proc-'));
  readonly nodes = new Map<number, ProcNode>();
  private readonly clients = new Map<string, UnaryClient>();
  private peers: string;

  private constructor(
    members: { id: number; address: string }[],
    private readonly settings: Record<string, number>,
    private readonly slices: Record<string, number> = {},
  ) {
    this.peers = members.map((m) => `${m.id}=${m.address}`).join(',');
    for (const m of members) this.nodes.set(m.id, { ...m, dataDir: path.join(this.root, `node-${m.id}`), logFile: path.join(this.root, `node-${m.id}.log`), process: undefined, exit: undefined });
  }

  /** Starts `size` nodes and waits for a leader. `slices` goes to each node's `slices` config section. */
  static async start(size: number, settings: Record<string, number> = {}, slices: Record<string, number> = {}): Promise<ProcessCluster> {
    const members = [];
    for (let id = 1; id <= size; id++) members.push({ id, address: `127.0.0.1:${await freePort()}` });
    const cluster = new ProcessCluster(members, { tickMs: 50, ...settings }, slices);
    for (const id of cluster.nodes.keys()) cluster.launch(id);
    await cluster.waitForLeader();
    return cluster;
  }

  /** Adds a node entry (not a member yet) with a fresh port; launch it with `peers` of the cluster. */
  async prepareNode(id: number): Promise<ProcNode> {
    const address = `127.0.0.1:${await freePort()}`;
    const node: ProcNode = { id, address, dataDir: path.join(this.root, `node-${id}`), logFile: path.join(this.root, `node-${id}.log`), process: undefined, exit: undefined };
    this.nodes.set(id, node);
    return node;
  }

  launch(id: number, peers = this.peers, join = false): ProcNode {
    const node = this.node(id);
    const config = path.join(this.root, `node-${id}.json`);
    writeFileSync(config, JSON.stringify({ id, dataDir: node.dataDir, listen: node.address, peers, join, logLevel: 'info', settings: this.settings, slices: this.slices }));
    const log = openSync(node.logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'node', '--config', config], { stdio: ['ignore', log, log] });
    node.process = child;
    node.exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    return node;
  }

  node(id: number): ProcNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** kill -9. */
  async kill(id: number): Promise<void> {
    const node = this.node(id);
    node.process?.kill('SIGKILL');
    await node.exit;
    node.process = undefined;
  }

  /** SIGTERM and wait for a clean exit. */
  async stop(id: number): Promise<number | null> {
    const node = this.node(id);
    node.process?.kill('SIGTERM');
    const code = (await node.exit) ?? null;
    node.process = undefined;
    return code;
  }

  running(): ProcNode[] {
    return [...this.nodes.values()].filter((n) => n.process !== undefined);
  }

  client(service: ManagementService, address: string): UnaryClient {
    const key = `${service}@${address}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      // Nodes restart during tests: reconnect quickly instead of gRPC's default back-off (up to 120 s).
      client = new definition.cutover.v1[service]!(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 }) as unknown as UnaryClient;
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * One call to node `id`. A refusal for want of a leader (NOT_LEADER naming none: an election is
   * under way, common on a loaded machine) is retried until `timeoutMs`; it was never proposed,
   * so retrying cannot apply a request twice. Every other error is the caller's.
   */
  async call(id: number, service: ManagementService, method: string, request: object, timeoutMs = 3000): Promise<Record<string, unknown>> {
    const deadline = deadlineIn(timeoutMs);
    for (;;) {
      try {
        return await this.callOnce(id, service, method, request, deadline);
      } catch (error) {
        const metadata = (error as grpc.ServiceError).metadata;
        const noLeader = metadata?.get('cutover-error-code')[0] === 'NOT_LEADER' && String(metadata.get('cutover-leader-id')[0] ?? '0') === '0';
        if (!noLeader || deadlineIn(100) >= deadline) throw error;
        await sleep(100);
      }
    }
  }

  /** Packs the slice directory `dir` and publishes it through node `id` (Slices/Publish). */
  async publish(id: number, dir: string, timeoutMs = 10_000): Promise<void> {
    const packed = await packArtifact(dir);
    const client = new definition.cutover.v1['Slices']!(this.node(id).address, grpc.credentials.createInsecure()) as unknown as PublishClient;
    const deadline = deadlineIn(timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (error) => (error ? reject(error) : resolve())));
      await new Promise((resolve, reject) => {
        const stream = client.Publish({ deadline }, (error, response) => (error ? reject(error) : resolve(response)));
        stream.write({ chunk: Buffer.from(packed.bytes) });
        stream.end();
      });
    } finally {
      client.close();
    }
  }

  private callOnce(id: number, service: ManagementService, method: string, request: object, deadline: number): Promise<Record<string, unknown>> {
    const client = this.client(service, this.node(id).address);
    // A channel that found the node not yet listening fails calls fast; wait for it instead.
    return new Promise((resolve, reject) =>
      client.waitForReady(deadline, (notReady) => {
        if (notReady) reject(new Error(`node ${id} (${this.node(id).address}) not reachable for ${service}/${method}: ${notReady.message}`));
        else client[method]!(request, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
      }),
    );
  }

  /** The leader id as seen by any running node, once one is known. */
  async waitForLeader(attempts = 200): Promise<number> {
    return waitFor('a leader', async () => {
      for (const n of this.running()) {
        try {
          const status = await this.call(n.id, 'Cluster', 'Status', {}, 500);
          const leader = Number(status.leader_id);
          if (leader !== 0 && this.nodes.get(leader)?.process !== undefined) return leader;
        } catch {
          /* not up yet */
        }
      }
      return undefined;
    }, { attempts, intervalMs: 50 });
  }

  log(id: number): string {
    return readFileSync(this.node(id).logFile, 'utf8');
  }

  async destroy(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    for (const n of this.nodes.values()) n.process?.kill('SIGKILL');
    for (const n of this.nodes.values()) await n.exit;
    await sleep(10);
    rmSync(this.root, { recursive: true, force: true });
  }
}
