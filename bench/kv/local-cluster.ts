/**
 * The contract both local clusters of the benchmark (Cutover and etcd) fulfil, so the driver and
 * the failover measurement treat them alike.
 */
import type { SystemName } from './kv-client.ts';

/** A local cluster of three (or more) member processes on 127.0.0.1 with its own data dirs. */
export interface LocalCluster {
  readonly system: SystemName;
  /** host:port of each member's client API, in member order (index = member number). */
  readonly endpoints: readonly string[];
  /** Starts every member and resolves once the cluster has a leader. */
  start(): Promise<void>;
  /** The member number of the current leader, as the members report it (bounded wait). */
  leader(): Promise<number>;
  /** kill -9 of member `member`; resolves with CLOCK_MONOTONIC ns taken just before the signal. */
  kill(member: number): Promise<bigint>;
  /** Starts a killed member again on its own data. */
  restart(member: number): Promise<void>;
  /** Resolves once every member agrees on a live leader and has applied what it had committed. */
  waitHealthy(timeoutMs: number): Promise<void>;
  /** CPU time (ms) of the live member processes, summed (Linux; 0 elsewhere). */
  serverCpuMs(): number;
  /** The server's version string, for the report. */
  version(): string;
  /** The temporary directory holding the members' data and logs. */
  readonly root: string;
  /** Stops every member (SIGTERM, so CPU profiles get written), then removes `root` unless `keepData`. */
  destroy(keepData: boolean): Promise<void>;
}
