import test from 'ava';
import { EventQueue } from '../../cluster-sim/events.ts';

test('events run in time order, and events due at the same time in the order they were scheduled', (t) => {
  const queue = new EventQueue();
  const order: string[] = [];
  queue.after(5, () => order.push('b@5'));
  queue.after(1, () => order.push('a@1'));
  queue.after(5, () => order.push('c@5'));
  queue.after(0, () => {
    order.push('d@0');
    queue.after(5, () => order.push('e@5'));
  });
  queue.runUntil(Number.POSITIVE_INFINITY, () => false);
  t.deepEqual(order, ['d@0', 'a@1', 'b@5', 'c@5', 'e@5']);
  t.is(queue.nowMs, 5);
});

test('runUntil stops at the time limit or when asked, and time only moves forward', (t) => {
  const queue = new EventQueue();
  const seen: number[] = [];
  for (let i = 10; i >= 1; i--) queue.after(i, () => seen.push(queue.nowMs));
  queue.runUntil(4.5, () => false);
  t.deepEqual(seen, [1, 2, 3, 4]);
  t.is(queue.nowMs, 4.5);
  queue.runUntil(100, () => seen.length === 6);
  t.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
  t.is(queue.size, 4);
  t.throws(() => queue.after(-1, () => undefined));
});
