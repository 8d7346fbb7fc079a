/**
 * Closed-loop proposers: each logical client has at most one proposal outstanding and proposes
 * again once its entry is applied on the leader. With P proposers up to P entries are in flight,
 * which is what lets one Ready cycle carry several proposals.
 */
import type { Entry, RawNode } from '../../src/raft/index.ts';
import { assert } from '../../src/util/assert.ts';
import { CutoverError } from '../../src/util/errors.ts';
import type { SeededRandom } from '../../src/util/random.ts';

/** A proposal waiting to be applied on the leader. */
interface Outstanding {
  readonly proposer: number;
  readonly term: number;
  readonly startMs: number;
  readonly startCycle: number;
}

/** What the workload measured since the last `resetStats`. */
export interface WorkloadStats {
  committed: number;
  latencyMsSum: number;
  latencyCyclesSum: number;
  dropped: number;
}

/** Distinct payloads to draw from, so entries differ without paying for randomness per entry. */
const PAYLOAD_POOL_SIZE = 1024;

/** P closed-loop clients proposing fixed-size entries to the leader. */
export class ClosedLoopProposers {
  stats: WorkloadStats = emptyStats();
  private readonly idle: number[] = [];
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly payloads: Uint8Array[] = [];
  private nextPayload = 0;

  constructor(proposerCount: number, entryBytes: number, random: SeededRandom) {
    assert(proposerCount > 0 && entryBytes > 0, 'ClosedLoopProposers: need proposers and a payload size');
    for (let p = proposerCount - 1; p >= 0; p--) this.idle.push(p);
    for (let i = 0; i < PAYLOAD_POOL_SIZE; i++) {
      const payload = new Uint8Array(entryBytes);
      for (let b = 0; b < entryBytes; b++) payload[b] = random.nextUint32() & 0xff;
      this.payloads.push(payload);
    }
  }

  /** Every idle proposer proposes one entry to `leader`. Returns how many proposed. */
  proposeIdle(leader: RawNode, nowMs: number, cycle: number): number {
    let proposed = 0;
    while (this.idle.length > 0) {
      const proposer = this.idle.pop()!;
      // A fresh buffer per entry, as if decoded from a client request.
      const data = this.payloads[this.nextPayload++ % PAYLOAD_POOL_SIZE]!.slice();
      const accepted = this.tryPropose(leader, data);
      if (accepted === undefined) {
        // Flow control refused it: retry in a later cycle, once applied entries free the budget.
        this.idle.push(proposer);
        break;
      }
      this.outstanding.set(accepted.index, { proposer, term: accepted.term, startMs: nowMs, startCycle: cycle });
      proposed++;
    }
    return proposed;
  }

  /** Proposes `data`; undefined when the leader dropped it (PROPOSAL_DROPPED). */
  private tryPropose(leader: RawNode, data: Uint8Array): { index: number; term: number } | undefined {
    try {
      return leader.propose(data);
    } catch (error) {
      if (!(error instanceof CutoverError) || error.code !== 'PROPOSAL_DROPPED') throw error;
      this.stats.dropped++;
      return undefined;
    }
  }

  /** Completes the proposals among entries the leader applied. */
  onLeaderApplied(entries: readonly Entry[], nowMs: number, cycle: number): void {
    for (const entry of entries) {
      const waiting = this.outstanding.get(entry.index);
      if (waiting === undefined) continue;
      // Without a leader change the entry at our index is ours; a different term means it was lost.
      assert(waiting.term === entry.term, `proposal at ${entry.index} (term ${waiting.term}) replaced by term ${entry.term}`);
      this.outstanding.delete(entry.index);
      this.idle.push(waiting.proposer);
      this.stats.committed++;
      this.stats.latencyMsSum += nowMs - waiting.startMs;
      this.stats.latencyCyclesSum += cycle - waiting.startCycle;
    }
  }

  /** Starts a new measurement window (proposals already in flight count when they complete). */
  resetStats(): void {
    this.stats = emptyStats();
  }
}

function emptyStats(): WorkloadStats {
  return { committed: 0, latencyMsSum: 0, latencyCyclesSum: 0, dropped: 0 };
}
