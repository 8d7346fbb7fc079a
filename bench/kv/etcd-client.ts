/**
 * The etcd side of the load generator: the `etcd3` npm client over all members. Like the Cutover
 * client, it sends each request to a member drawn at random (etcd3 shuffles its hosts per call)
 * and makes one attempt: its default retry and circuit-breaker policies are replaced by no-ops,
 * so errors surface in the load loop for both systems alike. Gets are linearizable (etcd's
 * default: `serializable` is false).
 */
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { CHANNEL_OPTIONS } from './cutover-client.ts';
import type { KvClient } from './kv-client.ts';

/** An etcd3 client over `addresses` (host:port of each member's client URL), plain-text. */
export function etcdClient(addresses: readonly string[]): Etcd3 {
  if (addresses.length === 0) throw new Error('etcdClient: no addresses');
  return new Etcd3({
    hosts: addresses.map((address) => `http://${address}`),
    grpcOptions: CHANNEL_OPTIONS,
    faultHandling: { host: () => noop, global: noop },
  });
}

/** A KvClient over an etcd cluster. */
export class EtcdKvClient implements KvClient {
  private readonly client: Etcd3;

  constructor(addresses: readonly string[]) {
    this.client = etcdClient(addresses);
  }

  async put(key: string, value: string, timeoutMs: number): Promise<void> {
    await this.client.put(key).value(value).options({ deadline: deadlineIn(timeoutMs) }).exec();
  }

  async get(key: string, timeoutMs: number): Promise<void> {
    await this.client.get(key).options({ deadline: deadlineIn(timeoutMs) }).exec();
  }

  close(): void {
    this.client.close();
  }
}
