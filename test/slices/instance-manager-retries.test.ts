import test from 'ava';
import { eventKey } from '../../src/events/event.ts';
import { parseHealthSpec } from '../../src/health/spec.ts';
import type { RoundResult } from '../../src/health/types.ts';
import type { Compare, Operation } from '../../src/kv/types.ts';
import { MemoryClusterPort, type TxnResult } from '../../src/node/cluster-port.ts';
import { InstanceManager, type InstanceHealthChecks } from '../../src/slices/instance-manager.ts';
import { artifactBase, assignmentKey, instanceKey } from '../../src/slices/keys.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

// Two retries of the instance manager, found by the health scenario of the simulator
// (cluster-sim/health/): a health report whose answer was lost wrote its audit event again when
// retried (seeds 23, 24, 34, 38), and a stale record that changed after the node read it at start
// (its previous run's DRAINING report committed after the crash) was never deleted (seed 15).

const BASE = artifactBase('org.example', 'greeter');
const KEY = instanceKey(nodeId(1), BASE, '1.0.0', 'i1');

/** A port whose next transaction carrying an audit event commits, then answers with a timeout. */
class LosingPort extends MemoryClusterPort {
  loseNextEventWrite = false;
  eventWrites = 0;

  override async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
    const result = await super.txn(compare, success, failure);
    const carriesEvent = success.some((op) => op.type === 'put' && op.key.startsWith('event/'));
    if (carriesEvent && result.succeeded) this.eventWrites++;
    if (carriesEvent && this.loseNextEventWrite) {
      this.loseNextEventWrite = false;
      throw new CutoverError('TIMEOUT', 'the answer was lost');
    }
    return result;
  }
}

const FAILING: RoundResult = { pass: false, results: [{ check: 'healthz', type: 'http', status: 'failure', at: 0, durationMs: 1, attempts: 1, detail: 'HTTP 503 in 1 ms' }] };

test('an UNHEALTHY report retried after a lost answer writes its audit event once', async (t) => {
  const port = new LosingPort(1, true);
  const clock = new ManualClock();
  let onChange: ((change: { state: 'healthy' | 'unhealthy'; round: RoundResult }) => void) | undefined;
  const healthChecks: InstanceHealthChecks = {
    watch: (options) => {
      onChange = options.onChange;
      return { firstVerdict: () => Promise.resolve({ state: 'healthy', reason: 'passed 1 consecutive round' }), stop: () => {} };
    },
  };
  const spec = parseHealthSpec({ checks: [{ type: 'http', name: 'healthz', path: '/healthz', port: 8080 }] });
  const loader = { load: () => Promise.resolve({ methods: [], health: false, healthChecks: spec, factory: () => ({}) }) };
  await port.txn([], [{ type: 'put', key: assignmentKey(nodeId(1), BASE, '1.0.0', 'i1'), value: '{}' }]);
  const instances = new InstanceManager({ port, loader, clock, logger: silentLogger, address: '127.0.0.1:7001', healthChecks, wallClockMs: () => 1_700_000_000_000 });
  await instances.start();
  await instances.settled();
  t.is((JSON.parse(port.kv.get(KEY)!.value) as { state: string }).state, 'ACTIVE');

  port.loseNextEventWrite = true;
  onChange!({ state: 'unhealthy', round: FAILING });
  await flush();
  await clock.advance(5000);
  await instances.settled();
  const events = port.kv.range('event/', 0).kvs;
  t.is(events.length, 1);
  t.is(events[0]!.version, 1, 'the retry did not put the event again');
  t.is(port.eventWrites, 1);
  t.is(events[0]!.key, eventKey(JSON.parse(events[0]!.value).id as string));
  t.is((JSON.parse(port.kv.get(KEY)!.value) as { state: string }).state, 'UNHEALTHY');
  await instances.stop();
});

test('a stale record that changed after start-up read it is still deleted', async (t) => {
  const port = new MemoryClusterPort(1, false);
  const record = (state: string): string => JSON.stringify({ state, nodeId: 1, address: '127.0.0.1:7001', instanceId: 'i1', artifact: BASE, version: '1.0.0' });
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: KEY, value: record('ACTIVE') } });
  const clock = new ManualClock();
  const loader = { load: () => Promise.resolve({ methods: [], health: false, factory: () => ({}) }) };
  const instances = new InstanceManager({ port, loader, clock, logger: silentLogger, address: '127.0.0.1:7001' });
  await instances.start();
  await flush();
  // The previous run's last report commits now, after this run read the record.
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: KEY, value: record('DRAINING') } });
  port.setLeader(true);
  await clock.advance(5000);
  t.is(port.kv.get(KEY), undefined);
  await instances.stop();
});
