/**
 * A local 3-member etcd cluster for the comparison: `etcd` processes on free 127.0.0.1 ports
 * with temporary data dirs and etcd's default timing written out (100 ms heartbeat, 1000 ms
 * election timeout: the same as Cutover's 100 ms tick × 10 election ticks).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { etcdClient } from './etcd-client.ts';
import type { LocalCluster } from './local-cluster.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { ServerProcess } from './processes.ts';

const STATUS_TIMEOUT_MS = 500;

/** How to install etcd, for the skip line. */
export const ETCD_INSTALL_HINT = 'apt-get install -y etcd-server (Debian/Ubuntu)';

/** The path of an executable `etcd` in a directory of `searchPath` (PATH by default), or undefined. */
export function findEtcd(searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter).filter((d) => d !== '')) {
    const candidate = path.join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

interface MemberStatus {
  readonly memberId: string;
  readonly leaderId: string;
  readonly raftIndex: number;
  readonly appliedIndex: number;
}

/** See the module comment. */
export class EtcdCluster implements LocalCluster {
  readonly system = 'etcd';
  readonly endpoints: string[] = [];
  private readonly peerUrls: string[] = [];
  readonly root: string;
  private readonly members: ServerProcess[] = [];
  private readonly statusClients: Etcd3[] = [];

  private constructor(private readonly binary: string, dataParent: string) {
    this.root = mkdtempSync(path.join(dataParent, 'etcd-bench-'));
  }

  /** Picks ports; `start()` launches the members. */
  static async create(binary: string, size: number, dataParent: string): Promise<EtcdCluster> {
    const cluster = new EtcdCluster(binary, dataParent);
    for (let i = 0; i < size; i++) {
      cluster.endpoints.push(`127.0.0.1:${await freePort()}`);
      cluster.peerUrls.push(`http://127.0.0.1:${await freePort()}`);
    }
    cluster.configure();
    return cluster;
  }

  async start(): Promise<void> {
    for (const member of this.members) member.start();
    await this.leader();
  }

  async leader(): Promise<number> {
    return waitFor('an etcd leader', () => this.agreedLeader(), { attempts: Number.POSITIVE_INFINITY, timeoutMs: 20_000 });
  }

  kill(member: number): Promise<bigint> {
    return this.member(member).kill();
  }

  async restart(member: number): Promise<void> {
    this.member(member).start();
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const leader = await waitFor('every etcd member to agree on a leader', () => this.agreedLeader(), { attempts: Number.POSITIVE_INFINITY, timeoutMs: timeoutMs });
    const { raftIndex } = await this.status(leader);
    await waitFor(`every etcd member to apply index ${raftIndex}`, async () => {
      const statuses = await Promise.all(this.members.map((_, i) => this.status(i)));
      return statuses.every((s) => s.appliedIndex >= raftIndex) ? true : undefined;
    }, { attempts: Number.POSITIVE_INFINITY, timeoutMs });
  }

  serverCpuMs(): number {
    return this.members.reduce((sum, member) => sum + member.cpuMs(), 0);
  }

  version(): string {
    const firstLine = execFileSync(this.binary, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
    return firstLine.replace(/^etcd Version:\s*/, 'etcd ');
  }

  async destroy(keepData: boolean): Promise<void> {
    for (const client of this.statusClients) client.close();
    await Promise.all(this.members.map((member) => member.stop()));
    if (!keepData) rmSync(this.root, { recursive: true, force: true });
  }

  /** The leader's member number if every running member names the same running leader. */
  private async agreedLeader(): Promise<number | undefined> {
    const running = this.members.map((m, i) => (m.running ? i : -1)).filter((i) => i >= 0);
    const statuses = await Promise.all(running.map((i) => this.status(i)));
    const leaderId = statuses[0]?.leaderId;
    if (leaderId === undefined || leaderId === '0' || !statuses.every((s) => s.leaderId === leaderId)) return undefined;
    const leader = running[statuses.findIndex((s) => s.memberId === leaderId)];
    return leader !== undefined && this.members[leader]?.running === true ? leader : undefined;
  }

  private async status(member: number): Promise<MemberStatus> {
    const status = await this.statusClients[member]!.maintenance.status({ deadline: deadlineIn(STATUS_TIMEOUT_MS) });
    return { memberId: status.header.member_id, leaderId: status.leader, raftIndex: Number(status.raftIndex), appliedIndex: Number(status.raftAppliedIndex) };
  }

  private configure(): void {
    const initialCluster = this.peerUrls.map((url, i) => `m${i + 1}=${url}`).join(',');
    this.endpoints.forEach((client, i) => {
      const name = `m${i + 1}`;
      const args = [
        '--name', name, '--data-dir', path.join(this.root, name),
        '--listen-client-urls', `http://${client}`, '--advertise-client-urls', `http://${client}`,
        '--listen-peer-urls', this.peerUrls[i]!, '--initial-advertise-peer-urls', this.peerUrls[i]!,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'cutover-bench',
        '--heartbeat-interval', '100', '--election-timeout', '1000', '--logger', 'zap', '--log-level', 'warn',
      ];
      this.members.push(new ServerProcess(`etcd-${name}`, this.binary, args, path.join(this.root, `${name}.log`)));
      this.statusClients.push(etcdClient([client]));
    });
  }

  private member(member: number): ServerProcess {
    const process = this.members[member];
    if (process === undefined) throw new Error(`no etcd member ${member}`);
    return process;
  }
}
