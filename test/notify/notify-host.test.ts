/**
 * NotifyHost on a real (single-node, in-memory storage) CutoverNode through `nodeClusterPort`, as
 * `cutover node` will wire it: the node's leadership, linearizable reads and watch feed the
 * dispatcher; a signed webhook reaches a real receiver on 127.0.0.1; stop() leaves the cursor.
 */
import test from 'ava';
import { eventWrite } from '../../src/events/event.ts';
import { nodeClusterPort } from '../../src/node/cluster-port.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { NotifyHost } from '../../src/node/notify-host.ts';
import { CURSOR_KEY, channelKey, formatChannel, validateChannel } from '../../src/notify/channel.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/notify/signing.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { epochMs } from '../../src/platform/wall-clock.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { SECRET, auditEvent } from './fixtures.ts';
import { Receiver } from './receiver.ts';

test('the leader node delivers a committed event to a webhook and keeps its cursor', async (t) => {
  const receiver = await Receiver.start({ status: 200 });
  const hub = new MemoryHub();
  const node = new CutoverNode({ id: 1, initialMembers: [{ id: 1, address: '127.0.0.1:1' }], storage: MemoryStorage.bootstrap([1]), transport: hub.transport(1), clock: realClock, random: new SeededRandom(3), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: false });
  const port = nodeClusterPort(node);
  const host = new NotifyHost({ port, clock: realClock, wallClockMs: epochMs, random: new SeededRandom(4), logger: silentLogger, settings: { cursorWriteIntervalMs: 50 } });
  t.teardown(async () => {
    await host.stop();
    await node.stop();
    await receiver.close();
  });
  await node.start();
  host.start();
  await waitFor('a leader', () => node.isLeader(), { attempts: 600, timeoutMs: 30_000 });
  const channel = validateChannel({ name: 'ops', type: 'webhook', url: receiver.url, secret: SECRET, updatedBy: 'test', updatedAt: epochMs() });
  await port.txn([], [{ type: 'put', key: channelKey('ops'), value: formatChannel(channel) }]);
  await waitFor('the dispatcher leading', () => host.stats().leading && host.stats().channels.ops !== undefined, { attempts: 600, timeoutMs: 30_000 });
  const event = auditEvent('update.completed');
  const { revision } = await port.txn([], [eventWrite(event), { type: 'put', key: 'rolling-update/u-1', value: '{}' }]);
  await receiver.until(1);
  const request = receiver.requests[0]!;
  t.true(verifySignature(SECRET, String(request.headers[TIMESTAMP_HEADER]), request.body, String(request.headers[SIGNATURE_HEADER])));
  t.like(JSON.parse(request.body), { id: event.id, revision, action: 'update.completed' });
  await waitFor('the cursor at the event', async () => {
    const kv = await port.get(CURSOR_KEY);
    return kv !== undefined && (JSON.parse(kv.value) as { revision: number }).revision >= revision;
  }, { attempts: 600, timeoutMs: 30_000 });
  t.like(host.stats(), { delivered: 1, failed: 0 });
});
