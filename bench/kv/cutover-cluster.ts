/**
 * A local 3-node Cutover cluster for the benchmark: `cutover node` processes on free 127.0.0.1
 * ports, each with a JSON config (log level warn, default timing: 100 ms tick, election after 10
 * ticks) and its own LevelDB directory under a temporary root.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cutoverServiceClient, unaryCall, type UnaryClient } from './cutover-client.ts';
import type { LocalCluster } from './local-cluster.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { ServerProcess } from './processes.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
const STATUS_TIMEOUT_MS = 500;

/** How to run the Cutover cluster. */
export interface CutoverClusterOptions {
  readonly size: number;
  /** Parent of the temporary data root. */
  readonly dataParent: string;
  /** When set, nodes run with `node --cpu-prof` and write profiles here on a clean stop. */
  readonly cpuProfileDir: string | undefined;
}

/** See the module comment. */
export class CutoverCluster implements LocalCluster {
  readonly system = 'cutover';
  readonly endpoints: string[] = [];
  readonly root: string;
  private readonly members: ServerProcess[] = [];
  private readonly statusClients: UnaryClient[] = [];

  private constructor(private readonly options: CutoverClusterOptions) {
    this.root = mkdtempSync(path.join(options.dataParent, 'cutover-bench-'));
  }

  /** Picks ports and writes configs; `start()` launches the nodes. */
  static async create(options: CutoverClusterOptions): Promise<CutoverCluster> {
    const cluster = new CutoverCluster(options);
    for (let i = 0; i < options.size; i++) cluster.endpoints.push(`127.0.0.1:${await freePort()}`);
    cluster.configure();
    return cluster;
  }

  async start(): Promise<void> {
    for (const member of this.members) member.start();
    await this.leader();
  }

  async leader(): Promise<number> {
    return waitFor('a Cutover leader', () => this.agreedLeader(), { attempts: Number.POSITIVE_INFINITY, timeoutMs: 20_000 });
  }

  kill(member: number): Promise<bigint> {
    return this.member(member).kill();
  }

  async restart(member: number): Promise<void> {
    this.member(member).start();
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const leader = await waitFor('every Cutover node to agree on a leader', () => this.agreedLeader(), { attempts: Number.POSITIVE_INFINITY, timeoutMs: timeoutMs });
    const commitIndex = Number((await this.status(leader)).commit_index);
    await waitFor(`every Cutover node to apply index ${commitIndex}`, async () => {
      const applied = await Promise.all(this.members.map((_, i) => this.status(i).then((s) => Number(s.applied_index))));
      return applied.every((index) => index >= commitIndex) ? true : undefined;
    }, { attempts: Number.POSITIVE_INFINITY, timeoutMs });
  }

  serverCpuMs(): number {
    return this.members.reduce((sum, member) => sum + member.cpuMs(), 0);
  }

  version(): string {
    const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
    return `cutover ${version}`;
  }

  async destroy(keepData: boolean): Promise<void> {
    for (const client of this.statusClients) client.close();
    await Promise.all(this.members.map((member) => member.stop()));
    if (!keepData) rmSync(this.root, { recursive: true, force: true });
  }

  /** The leader's member number if every running node names the same running leader. */
  private async agreedLeader(): Promise<number | undefined> {
    const running = this.members.map((m, i) => (m.running ? i : -1)).filter((i) => i >= 0);
    const leaders = await Promise.all(running.map((i) => this.status(i).then((s) => Number(s.leader_id) - 1)));
    const first = leaders[0];
    if (first === undefined || first < 0 || !leaders.every((l) => l === first)) return undefined;
    return this.members[first]?.running === true ? first : undefined;
  }

  private status(member: number): Promise<Record<string, unknown>> {
    return unaryCall(this.statusClients[member]!, 'Status', {}, STATUS_TIMEOUT_MS);
  }

  private configure(): void {
    const peers = this.endpoints.map((address, i) => `${i + 1}=${address}`).join(',');
    const nodeFlags = this.options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', this.options.cpuProfileDir];
    this.endpoints.forEach((listen, i) => {
      const id = i + 1;
      const config = path.join(this.root, `node-${id}.json`);
      // Timing is written out although it equals the defaults, so the run documents what it used.
      const settings = { tickMs: 100, electionTicks: 10, heartbeatTicks: 1 };
      writeFileSync(config, JSON.stringify({ id, dataDir: path.join(this.root, `node-${id}`), listen, peers, logLevel: 'warn', settings }));
      const args = [...nodeFlags, '--import', 'tsx', MAIN, 'node', '--config', config];
      this.members.push(new ServerProcess(`cutover-${id}`, process.execPath, args, path.join(this.root, `node-${id}.log`)));
      this.statusClients.push(cutoverServiceClient('Cluster', listen));
    });
  }

  private member(member: number): ServerProcess {
    const process = this.members[member];
    if (process === undefined) throw new Error(`no Cutover member ${member}`);
    return process;
  }
}
