/** Progress and the in-flight window (src/raft/progress.ts). */
import test from 'ava';
import { Inflights, Progress } from '../../src/raft/progress.ts';
import { AssertionError } from '../../src/util/assert.ts';

const progress = (match: number, next: number, countMax = 4, bytesMax = 1000): Progress => new Progress(match, next, false, new Inflights(countMax, bytesMax));

test('Inflights is full at countMax messages or at bytesMax bytes, and frees every slot up to an index', (t) => {
  const byCount = new Inflights(3, 1000);
  for (const i of [2, 4, 6]) byCount.add(i, 10);
  t.true(byCount.full());
  t.throws(() => byCount.add(8, 10), { instanceOf: AssertionError });
  byCount.freeLE(4);
  t.deepEqual([byCount.count(), byCount.bytes(), byCount.full()], [1, 10, false]);

  const byBytes = new Inflights(100, 250);
  byBytes.add(1, 200);
  t.false(byBytes.full());
  byBytes.add(2, 200);
  t.true(byBytes.full(), 'one message may overshoot; then the window is closed');
  byBytes.freeFirstOne();
  t.deepEqual([byBytes.count(), byBytes.bytes()], [1, 200]);
  byBytes.reset();
  t.deepEqual([byBytes.count(), byBytes.bytes()], [0, 0]);
});

test('Inflights indexes must increase', (t) => {
  const window = new Inflights(10, 1000);
  window.add(5, 1);
  t.throws(() => window.add(5, 1), { instanceOf: AssertionError });
});

test('maybeUpdate() raises match and next, and reports stale acks', (t) => {
  const pr = progress(3, 5);
  t.true(pr.maybeUpdate(4));
  t.deepEqual([pr.match, pr.next], [4, 5]);
  t.true(pr.maybeUpdate(7));
  t.deepEqual([pr.match, pr.next], [7, 8]);
  t.false(pr.maybeUpdate(6), 'stale');
  t.deepEqual([pr.match, pr.next], [7, 8]);
});

test('maybeDecreaseTo() in probe: uses the hint, never goes below match+1, ignores stale rejections', (t) => {
  const pr = progress(2, 10);
  t.false(pr.maybeDecreaseTo(5, 3), 'rejects a probe we no longer have in flight');
  t.true(pr.maybeDecreaseTo(9, 6));
  t.is(pr.next, 7);
  t.true(pr.maybeDecreaseTo(6, 0));
  t.is(pr.next, 3, 'not below match+1');
});

test('maybeDecreaseTo() in replicate: falls back to match+1, ignores rejections at or below match', (t) => {
  const pr = progress(5, 6);
  pr.becomeReplicate();
  pr.next = 9;
  t.false(pr.maybeDecreaseTo(5, 0));
  t.true(pr.maybeDecreaseTo(7, 2));
  t.is(pr.next, 6);
});

test('isPaused(): probe after one send, replicate when the window is full, always in snapshot', (t) => {
  const pr = progress(0, 1, 2);
  t.false(pr.isPaused());
  pr.probeSent = true;
  t.true(pr.isPaused());
  pr.becomeReplicate();
  t.false(pr.isPaused());
  pr.inflights.add(1, 1);
  pr.inflights.add(2, 1);
  t.true(pr.isPaused());
  pr.becomeSnapshot(10);
  t.true(pr.isPaused());
  t.is(pr.inflights.count(), 0, 'state changes empty the window');
});

test('becomeProbe() from snapshot resumes after the pending snapshot; from replicate at match+1', (t) => {
  const pr = progress(3, 9);
  pr.becomeSnapshot(20);
  pr.becomeProbe();
  t.deepEqual([pr.state, pr.next, pr.pendingSnapshot], ['probe', 21, 0]);
  pr.becomeReplicate();
  pr.next = 30;
  pr.becomeProbe();
  t.is(pr.next, 4);
});
