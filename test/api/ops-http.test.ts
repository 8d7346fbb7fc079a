import test from 'ava';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeMetrics, startOpsHttp } from '../../src/api/ops-http.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { waitFor } from '../../src/platform/wait.ts';

function fetchText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('/healthz, /readyz and /metrics report the node: readiness follows the leader, metrics carry Raft state', async (t) => {
  const node = new CutoverNode({ id: 1, initialMembers: [{ id: 1, address: '127.0.0.1:1' }], storage: MemoryStorage.bootstrap([1]), transport: new MemoryHub().transport(1), clock: realClock, random: new SeededRandom(3), logger: silentLogger, settings: { tickMs: 10 } });
  const metrics = new NodeMetrics();
  const server = await startOpsHttp('127.0.0.1:0', metrics, node);
  t.teardown(async () => {
    server.close();
    await node.stop();
  });
  const { port } = server.address() as AddressInfo;
  t.is((await fetchText(port, '/healthz')).status, 200);
  await node.start();
  metrics.attach({ node, peerQueueDepth: () => new Map([[2, 5]]) });
  await waitFor('ready', async () => ((await fetchText(port, '/readyz')).status === 200 ? true : undefined));
  await node.propose({ type: 'put', key: 'k', value: 'v' });
  metrics.observeSyncWrite(1.5);
  const text = (await fetchText(port, '/metrics')).body;
  t.regex(text, /cutover_raft_is_leader 1/);
  t.regex(text, /cutover_raft_term [1-9]/);
  t.regex(text, /cutover_proposals_total [1-9]/);
  t.regex(text, /cutover_peer_queue_depth\{peer="2"\} 5/);
  t.regex(text, /cutover_storage_sync_write_seconds_count 1/);
  t.is((await fetchText(port, '/nope')).status, 404);
});
