import test from 'ava';
import { artifactBase } from '../../src/slices/keys.ts';
import { createUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import {
  activeUpdateKey,
  formatActiveUpdate,
  formatRelease,
  nextRevision,
  parseActiveUpdate,
  parseRelease,
  parseReleaseKey,
  readReleases,
  releaseKey,
  releaseOf,
  releaseStatistics,
  rollbackTarget,
  settingsOf,
  terminalTxnParts,
  type ReleaseRecord,
} from '../../src/updates/release.ts';
import { parseStartRequest } from '../../src/updates/request.ts';
import { transition } from '../../src/updates/transitions.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { BASE, T0, pendingRecord } from './fixtures.ts';

const base = artifactBase('org.example', 'greeter');
const system = { kind: 'system' as const, name: 'controller' };

function cancelled(record: UpdateRecord, atMs = T0 + 5000): UpdateRecord {
  return transition(record, 'CANCELLED', { actor: system, reason: 'stop', nowMs: atMs });
}

function release(revision: number, version: string, status: ReleaseRecord['status'], durationMs = 1000): ReleaseRecord {
  return { revision, base, version, previousVersion: '1.0.0', status, updateId: `u${revision}`, settings: {}, startedAt: T0, finishedAt: T0 + durationMs, initiatedBy: 'alice', reason: '', rollbackOfRevision: null };
}

test('release keys sort by revision and read back; malformed keys are not releases', (t) => {
  t.is(releaseKey(base, 7), 'release/org.example:greeter/0000000007');
  t.deepEqual(parseReleaseKey(releaseKey(base, 12)), { base, revision: 12 });
  t.true(releaseKey(base, 9) < releaseKey(base, 10));
  for (const key of ['release/org.example:greeter/7', 'release/greeter/0000000001', 'release/org.example:greeter/0000000000', 'blueprint/org.example:greeter/1.0.0']) t.is(parseReleaseKey(key), undefined, key);
  t.is(t.throws(() => releaseKey(base, 0), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  t.is(nextRevision(base, [{ key: releaseKey(base, 3), value: '' }, { key: releaseKey(base, 1), value: '' }, { key: 'release/org.other:x/0000000009', value: '' }]), 4);
  t.is(nextRevision(base, []), 1);
});

test('a finished update makes a release with its version, settings, status and times; it parses back', (t) => {
  const record = cancelled(pendingRecord({ strategy: 'CANARY', canaryPercentage: 20, gracePeriodSeconds: 60 }));
  const rel = releaseOf(record, 4, 2);
  t.like(rel, { revision: 4, base: BASE, version: '2.0.0', previousVersion: '1.0.0', status: 'CANCELLED', updateId: 'u1', startedAt: T0, finishedAt: T0 + 5000, initiatedBy: 'alice', reason: 'stop', rollbackOfRevision: 2 });
  t.like(rel.settings, { strategy: 'CANARY', canaryPercentage: 20, gracePeriodSeconds: 60, steps: [25, 50, 75] });
  const back = parseRelease(formatRelease(rel));
  t.true(back.ok);
  if (back.ok) t.deepEqual(back.value, rel);
  t.is(t.throws(() => releaseOf(pendingRecord(), 1, null), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  for (const bad of ['[]', '{}', formatRelease({ ...rel, status: 'DONE' as never }), formatRelease({ ...rel, finishedAt: T0 - 1 })]) t.false(parseRelease(bad).ok, bad);
});

test('settings of every strategy parse back to the same plan (what RollbackTo repeats)', (t) => {
  const requests: Record<string, unknown>[] = [
    { strategy: 'MANUAL' },
    { strategy: 'CANARY', steps: [100] },
    { strategy: 'CANARY', canaryPercentage: 5, steps: [30, 60] },
    { strategy: 'ROLLING', batchSize: 3, maxUnavailablePercentage: 40, instances: 9 },
    { strategy: 'BLUE_GREEN', cleanupPolicy: 'MANUAL' },
    { strategy: 'RECREATE', cleanupPolicy: 'IMMEDIATE' },
    { strategy: 'STAGED', steps: [100], requireManualApproval: true },
    { strategy: 'STAGED', steps: [10, 50], maxErrorRate: 0.2, healthEvaluationIntervalSeconds: 3 },
  ];
  for (const fields of requests) {
    const record = pendingRecord(fields);
    const again = createUpdateRecord(parseStartRequest({ artifactBase: BASE, version: '2.0.0', initiatedBy: 'alice', ...settingsOf(record) }), { id: 'u1', oldVersion: '1.0.0', nowMs: T0 });
    t.deepEqual(again, record, JSON.stringify(fields));
  }
});

test('statistics: total, successful, failed (failed or rolled back), success rate, average duration', (t) => {
  const releases = [release(1, '2.0.0', 'COMPLETED', 10_000), release(2, '2.1.0', 'ROLLED_BACK', 20_000), release(3, '2.1.0', 'FAILED', 30_000), release(4, '2.2.0', 'CANCELLED', 0)];
  t.deepEqual(releaseStatistics(base, releases), { base, total: 4, successful: 1, failed: 2, cancelled: 1, successRate: 25, averageDurationSeconds: 15 });
  t.deepEqual(releaseStatistics(base, []), { base, total: 0, successful: 0, failed: 0, cancelled: 0, successRate: 0, averageDurationSeconds: 0 });
});

test('rollback targets: revision N, or the last COMPLETED revision of another version than the current one', (t) => {
  const releases = [release(1, '2.0.0', 'COMPLETED'), release(2, '2.1.0', 'ROLLED_BACK'), release(3, '2.2.0', 'COMPLETED'), release(4, '2.3.0', 'COMPLETED')];
  t.is(rollbackTarget(releases, { lastSuccessful: true }, '2.3.0').revision, 3);
  t.is(rollbackTarget(releases, { lastSuccessful: true }, '2.2.0').revision, 4);
  t.is(rollbackTarget(releases, { revision: 2 }, '2.3.0').revision, 2, 'any revision may be named, whatever its status');
  const code = (fn: () => unknown): string | undefined => t.throws(fn, { instanceOf: CutoverError })?.code;
  t.is(code(() => rollbackTarget(releases, { revision: 9 }, '2.3.0')), 'RELEASE_NOT_FOUND');
  t.is(code(() => rollbackTarget(releases, { revision: 4 }, '2.3.0')), 'ALREADY_CURRENT');
  t.is(code(() => rollbackTarget([release(1, '2.0.0', 'COMPLETED')], { lastSuccessful: true }, '2.0.0')), 'NO_SUCCESSFUL_RELEASE');
});

test('the terminal transaction writes the release guarded by "absent" and deletes only its own active-update key', (t) => {
  const record = cancelled(pendingRecord());
  const own = { value: formatActiveUpdate({ updateId: 'u1', rollbackOfRevision: 3 }), modRevision: 17 };
  const parts = terminalTxnParts(record, 5, own);
  t.deepEqual(parts.compare, [
    { key: releaseKey(base, 5), target: 'exists', op: '=', value: false },
    { key: activeUpdateKey(base), target: 'modRevision', op: '=', value: 17 },
  ]);
  t.deepEqual(parts.success[1], { type: 'delete', key: activeUpdateKey(base) });
  const written = readReleases([{ key: releaseKey(base, 5), value: (parts.success[0] as { value: string }).value }]);
  t.like(written[0], { revision: 5, rollbackOfRevision: 3, status: 'CANCELLED' });
  const other = terminalTxnParts(record, 5, { value: formatActiveUpdate({ updateId: 'u9', rollbackOfRevision: null }), modRevision: 17 });
  t.is(other.compare.length, 1);
  t.is(other.success.length, 1);
  t.deepEqual(parseActiveUpdate(own.value), { ok: true, value: { updateId: 'u1', rollbackOfRevision: 3 } });
  t.false(parseActiveUpdate('{"updateId":""}').ok);
});

test('readReleases skips values that disagree with their key', (t) => {
  const good = releaseOf(cancelled(pendingRecord()), 1, null);
  const invalid: string[] = [];
  const read = readReleases(
    [
      { key: releaseKey(base, 2), value: formatRelease(good) },
      { key: releaseKey(base, 1), value: formatRelease(good) },
      { key: releaseKey(base, 3), value: 'nope' },
    ],
    (key) => invalid.push(key),
  );
  t.deepEqual(read.map((r) => r.revision), [1]);
  t.deepEqual(invalid, [releaseKey(base, 2), releaseKey(base, 3)]);
});
