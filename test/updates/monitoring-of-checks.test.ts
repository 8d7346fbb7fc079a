/**
 * The monitoring window after an update's last step defaults to its health checks' own
 * `monitoringDurationSeconds` (the update's override, else the new version's manifest) when the
 * request does not set `monitoringSeconds`.
 */
import test from 'ava';
import { artifactKey } from '../../src/slices/keys.ts';
import { BASE, UpdateHarness } from './harness.ts';

const CHECKS = (monitoringDurationSeconds: number) => ({ checks: [{ type: 'tcp', port: 6379 }], policy: { monitoringDurationSeconds } });

function manifestWithChecks(monitoringDurationSeconds: number): string {
  const manifest = { groupId: 'org.example', artifactId: 'greeter', version: '2.0.0', entry: 'index.js', methods: ['hello'], minCompatibleVersion: '1.0.0', healthChecks: { mode: 'ALL', checks: [{ type: 'tcp', name: 'tcp-0', host: '127.0.0.1', port: 6379, timeoutSeconds: 5 }], policy: { successThreshold: 1, failureThreshold: 3, intervalSeconds: 10, initialDelaySeconds: 30, monitoringDurationSeconds } } };
  return JSON.stringify({ groupId: 'org.example', artifactId: 'greeter', version: '2.0.0', sha256: 'a'.repeat(64), size: 100, chunks: 1, chunkBytes: 1024, manifest });
}

test("the version's declared checks set the monitoring window when the request does not", async (t) => {
  const h = new UpdateHarness();
  t.teardown(() => h.controller.stop());
  h.put(artifactKey(BASE, '2.0.0'), manifestWithChecks(45));
  const { record } = await h.ops.start({ artifactBase: BASE, version: '2.0.0' });
  t.is(record.strategy.monitoringMs, 45_000);
});

test("an update's own checks win over the manifest's", async (t) => {
  const h = new UpdateHarness();
  t.teardown(() => h.controller.stop());
  h.put(artifactKey(BASE, '2.0.0'), manifestWithChecks(45));
  const own = await h.ops.start({ artifactBase: BASE, version: '2.0.0', healthChecks: CHECKS(20) });
  t.is(own.record.strategy.monitoringMs, 20_000);
});

test('an explicit monitoringSeconds wins; without declared checks the default stays', async (t) => {
  const explicit = new UpdateHarness();
  t.teardown(() => explicit.controller.stop());
  explicit.put(artifactKey(BASE, '2.0.0'), manifestWithChecks(45));
  t.is((await explicit.ops.start({ artifactBase: BASE, version: '2.0.0', monitoringSeconds: 7 })).record.strategy.monitoringMs, 7000);
  const plain = new UpdateHarness();
  t.teardown(() => plain.controller.stop());
  t.is((await plain.ops.start({ artifactBase: BASE, version: '2.0.0' })).record.strategy.monitoringMs, 300_000);
});
