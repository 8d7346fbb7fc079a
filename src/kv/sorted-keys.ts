/** A sorted set of strings (code-unit order) with prefix scans; O(log n) search, O(n) insert. */
export class SortedKeys {
  private keys: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** Index of the first key >= `key`. */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(key: string): void {
    const at = this.lowerBound(key);
    if (this.keys[at] !== key) this.keys.splice(at, 0, key);
  }

  delete(key: string): void {
    const at = this.lowerBound(key);
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  /** Keys starting with `prefix`, in order, at most `limit` (0 = no limit); `more` if cut. */
  withPrefix(prefix: string, limit: number): { keys: string[]; more: boolean } {
    const result: string[] = [];
    for (let i = this.lowerBound(prefix); i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (!key.startsWith(prefix)) break;
      if (limit > 0 && result.length === limit) return { keys: result, more: true };
      result.push(key);
    }
    return { keys: result, more: false };
  }

  all(): readonly string[] {
    return this.keys;
  }

  reset(keys: readonly string[]): void {
    this.keys = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
