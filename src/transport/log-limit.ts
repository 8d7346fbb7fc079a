/** Rate-limiting of repeated log lines without a clock. */

/** True for 1, 2, 4, 8, …: log the n-th occurrence of a repeated event at those counts only. */
export function isLogWorthy(count: number): boolean {
  return count > 0 && (count & (count - 1)) === 0;
}
