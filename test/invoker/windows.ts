/**
 * Sliding-window exactness check shared by the weighted and routing-table tests (not a test file:
 * ava runs only `*.test.ts`).
 */

/**
 * Checks every window of `window` consecutive picks, at every offset, against `expected[i]` picks
 * of choice i. Returns a description of the first violation, or undefined when all hold.
 * O(picks.length) with a running count, so periods of a million stay fast.
 */
export function windowViolation(picks: ArrayLike<number>, window: number, expected: readonly number[]): string | undefined {
  if (picks.length < window) return `only ${picks.length} picks for a window of ${window}`;
  const counts = new Array<number>(expected.length).fill(0);
  for (let i = 0; i < window; i++) counts[picks[i]!]!++;
  for (let start = 0; ; start++) {
    for (let c = 0; c < expected.length; c++) {
      if (counts[c] !== expected[c]) return `window at offset ${start}: choice ${c} picked ${counts[c]} times, expected ${expected[c]}`;
    }
    const end = start + window;
    if (end >= picks.length) return undefined;
    counts[picks[start]!]!--;
    counts[picks[end]!]!++;
  }
}
