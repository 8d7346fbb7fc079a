/**
 * Injected randomness. Production code never calls `Math.random`; it is handed a `Random`, which
 * is seeded by the simulator (so a run replays from its seed) or by `src/platform/` in production.
 */
export interface Random {
  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number;
  /** A uniformly distributed float in [0, 1). */
  nextFloat(): number;
  /** A uniformly distributed integer in [min, maxExclusive). Requires min < maxExclusive. */
  nextInt(min: number, maxExclusive: number): number;
}

/**
 * sfc32 ("small fast chaotic", Chris Doty-Humphrey), seeded through splitmix32 so that nearby
 * seeds give unrelated streams. Deterministic: the same seed always yields the same sequence.
 */
export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let state = seed >>> 0;
    const splitmix = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  nextInt(min: number, maxExclusive: number): number {
    if (!(maxExclusive > min)) throw new RangeError(`nextInt: empty range [${min}, ${maxExclusive})`);
    return min + Math.floor(this.nextFloat() * (maxExclusive - min));
  }

  /** A child generator with its own stream, so one component's draws do not shift another's. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}
