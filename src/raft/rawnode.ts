import { assert } from '../util/assert.ts';
import { NotLeaderError } from '../util/errors.ts';
import type { RaftConfig } from './config.ts';
import { encodeConfChange } from './confchange.ts';
import { Raft } from './raft.ts';
import type { ConfChange, ConfState, HardState, Message, PeerProgress, Ready, SoftState, Status } from './types.ts';

const NO_MESSAGES: readonly Message[] = Object.freeze([]);

/** What a handed-out Ready promised, so advance() acts on it even if the log moved since. */
interface InFlight {
  readonly lastEntry: { index: number; term: number } | undefined;
  readonly snapshotIndex: number;
  readonly appliedTo: number;
  readonly committedEntries: Ready['committedEntries'];
}

/**
 * The synchronous driver interface to one Raft peer (etcd-io/raft's RawNode). The caller owns
 * time (`tick`), the network (`step` in, `Ready.earlyMessages` and `Ready.messages` out) and
 * storage (the Ready contract in types.ts). Not thread-safe and not re-entrant; nothing here
 * blocks.
 *
 * Between `ready()` and `advance()` the caller may keep calling `tick`, `step` and `propose`;
 * `hasReady()` answers false until `advance()` is called, and `ready()` must not be called.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private inFlight: InFlight | undefined = undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.softState();
    this.prevHardState = this.hardState();
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Feeds a message from a peer. Messages from unknown terms or peers are handled or ignored. */
  step(message: Message): void {
    this.raft.step(message);
  }

  /** Starts an election now (tests and operators; normally elections start from ticks). */
  campaign(): void {
    this.raft.hup(this.raft.config.preVote ? 'preElection' : 'election');
  }

  /**
   * Appends `data` to the log if this peer is the leader. Throws NotLeaderError (NOT_LEADER, with
   * the known leader) or ProposalDroppedError (PROPOSAL_DROPPED). The entry is committed only if
   * `committedEntries` later contains it with the same term.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose('normal', data);
  }

  /**
   * Proposes `data` wherever this peer is: appended here on the leader (returning its index and
   * term), forwarded to the leader on a follower (returning undefined: the caller learns the
   * outcome when an entry carrying its own request id is applied). Throws NOT_LEADER when no
   * leader is known, and the errors of `propose` on the leader.
   */
  proposeOrForward(data: Uint8Array): { index: number; term: number } | undefined {
    if (this.raft.role === 'leader') return this.raft.propose('normal', data);
    this.raft.forwardProposal(data);
    return undefined;
  }

  /** Proposes a membership change; one may be pending at a time. Same errors as `propose`. */
  proposeConfChange(change: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(change, encodeConfChange(change));
  }

  /** Applies a committed membership change; call it when its entry is applied. */
  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  /**
   * Requests a linearizable read. Once a quorum confirms leadership, `Ready.readStates` holds
   * `{index, context}`: the read may be served once the state machine has applied `index`.
   * A follower forwards the request to its leader. Throws NOT_LEADER when no leader is known.
   */
  readIndex(context: string): void {
    if (this.raft.role === 'leader') this.raft.handleReadIndex(this.raft.id, context);
    else if (this.raft.lead !== 0) this.raft.send({ type: 'readIndex', to: this.raft.lead, context });
    else throw new NotLeaderError(0);
  }

  /** Asks the leader to hand leadership to `target`; forwarded when this peer is a follower. */
  transferLeader(target: number): void {
    if (this.raft.role === 'leader') {
      this.raft.validateTransferTarget(target);
      this.raft.handleTransferLeader(target);
    } else if (this.raft.lead !== 0) {
      this.raft.send({ type: 'transferLeader', to: this.raft.lead, index: target });
    } else {
      throw new NotLeaderError(0);
    }
  }

  /**
   * The peer could not be reached. On the leader: stop pipelining to it until it answers again.
   * On a follower, when `id` is its leader: campaign soon instead of after a full election
   * timeout (see `Raft.leaderUnreachable`).
   */
  reportUnreachable(id: number): void {
    if (this.raft.role !== 'leader') {
      if (id === this.raft.lead) this.raft.leaderUnreachable();
      return;
    }
    const pr = this.raft.progress.get(id);
    if (pr?.state === 'replicate') pr.becomeProbe();
  }

  /** The snapshot sent to `id` was delivered (ok) or failed. */
  reportSnapshot(id: number, ok: boolean): void {
    const pr = this.raft.role === 'leader' ? this.raft.progress.get(id) : undefined;
    if (pr?.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.probeSent = true;
  }

  hasReady(): boolean {
    if (this.inFlight !== undefined) return false;
    const r = this.raft;
    return (
      r.bcastPending ||
      r.msgs.length > 0 ||
      r.earlyMsgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.unstable.entries.length > 0 ||
      r.log.hasPendingSnapshot() ||
      r.log.hasNextCommittedEntries() ||
      !sameSoftState(this.softState(), this.prevSoftState) ||
      !sameHardState(this.hardState(), this.prevHardState)
    );
  }

  /** Hands out the next batch of work (see the Ready contract in types.ts). */
  ready(): Ready {
    assert(this.inFlight === undefined, 'ready() called again before advance()');
    const r = this.raft;
    r.flushBroadcast();
    const entries = r.log.unstable.entries.slice();
    const snapshot = r.log.unstable.snapshot;
    const committedEntries = r.log.nextCommittedEntries();
    const softState = this.softState();
    const hardState = this.hardState();
    const hardChanged = !sameHardState(hardState, this.prevHardState);
    const termOrVoteChanged = hardState.term !== this.prevHardState.term || hardState.vote !== this.prevHardState.vote;
    // A message may leave early only with a term that is already durable: when this Ready
    // changes the term or the vote, every message waits for the write.
    const anyEarly = r.earlyMsgs.length > 0;
    const rd: Ready = {
      entries,
      committedEntries,
      earlyMessages: termOrVoteChanged || !anyEarly ? NO_MESSAGES : r.earlyMsgs,
      messages: termOrVoteChanged && anyEarly ? r.earlyMsgs.concat(r.msgs) : r.msgs,
      readStates: r.readStates,
      // A snapshot replaces the log and is acknowledged to the leader, so it must be durable too.
      mustSync: entries.length > 0 || snapshot !== undefined || termOrVoteChanged,
      ...(sameSoftState(softState, this.prevSoftState) ? {} : { softState }),
      ...(hardChanged ? { hardState } : {}),
      ...(snapshot !== undefined ? { snapshot } : {}),
    };
    r.msgs = [];
    if (anyEarly) r.earlyMsgs = [];
    r.readStates = [];
    this.prevSoftState = softState;
    this.prevHardState = hardState;
    const last = entries[entries.length - 1];
    const lastCommitted = committedEntries[committedEntries.length - 1];
    this.inFlight = {
      lastEntry: last === undefined ? undefined : { index: last.index, term: last.term },
      snapshotIndex: snapshot?.metadata.index ?? 0,
      appliedTo: lastCommitted?.index ?? snapshot?.metadata.index ?? 0,
      committedEntries,
    };
    return rd;
  }

  /**
   * The last Ready was persisted, sent and applied. This is how the core learns that its entries
   * are durable: a leader counts them toward the commit quorum only from here on (see Ready).
   */
  advance(): void {
    const done = this.inFlight;
    assert(done !== undefined, 'advance() without ready()');
    this.inFlight = undefined;
    const log = this.raft.log;
    if (done.snapshotIndex > 0) log.unstable.stableSnapTo(done.snapshotIndex);
    if (done.lastEntry !== undefined) {
      log.unstable.stableTo(done.lastEntry.index, done.lastEntry.term);
      this.raft.persisted();
    }
    if (done.appliedTo > log.applied) log.appliedTo(done.appliedTo);
    this.raft.reduceUncommittedBytes(done.committedEntries);
  }

  /** Whether this peer is the leader now (cheap, unlike `status()`). */
  isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  status(): Status {
    const r = this.raft;
    const progress: PeerProgress[] = [];
    if (r.role === 'leader') {
      for (const [id, pr] of r.progress) {
        progress.push({ id, match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, inflightCount: pr.inflights.count(), inflightBytes: pr.inflights.bytes(), recentActive: pr.recentActive });
      }
      progress.sort((a, b) => a.id - b.id);
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      confState: r.confState(),
      progress,
    };
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
