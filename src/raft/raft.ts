import { assert } from '../util/assert.ts';
import { CutoverError, InvalidArgumentError, NotLeaderError, ProposalDroppedError } from '../util/errors.ts';
import { resolveRaftConfig, type RaftConfig, type ResolvedRaftConfig } from './config.ts';
import { decodeConfChange } from './confchange.ts';
import { RaftLog } from './log.ts';
import { Inflights, Progress } from './progress.ts';
import { ReadOnly } from './readonly.ts';
import { EARLY_MESSAGE, entrySize, type ConfChange, type ConfState, type Entry, type Message, type MessageType, type ReadState, type Role, type Snapshot } from './types.ts';

const NONE = 0;
const TRANSFER = 'transfer';
const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

type Campaign = 'preElection' | 'election' | 'transfer';

/** The fields a message needs beyond its defaults. */
type Outgoing = Partial<Message> & Pick<Message, 'type' | 'to'>;

/**
 * The private Raft state machine (etcd-io/raft's raft.go). Single-threaded and synchronous: no
 * I/O, no timers. `RawNode` wraps it with the Ready/advance contract.
 */
export class Raft {
  readonly id: number;
  readonly config: ResolvedRaftConfig;
  readonly log: RaftLog;
  term = 0;
  vote = NONE;
  lead = NONE;
  role: Role = 'follower';
  /**
   * Progress of every member (voters and learners), this peer included. This peer's own `match`
   * is the last index of its log that is durable (RawNode.advance reports it), never more: a
   * leader counts toward a commit only what it has persisted itself.
   */
  readonly progress = new Map<number, Progress>();
  /** Outgoing messages that must wait until the Ready's write is durable (Ready.messages). */
  msgs: Message[] = [];
  /** Outgoing messages that may leave before it (Ready.earlyMessages; EARLY_MESSAGE). */
  earlyMsgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee = NONE;
  /** No new membership change may be proposed until this index is applied. */
  pendingConfIndex = 0;
  private uncommittedBytes = 0;
  private readonly matchScratch: number[] = [];
  /** A broadcast of appends is owed at the next ready() (see flushBroadcast). */
  bcastPending = false;
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before this term's first entry committed. */
  private pendingReads: { from: number; context: string }[] = [];
  private votes = new Map<number, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  constructor(config: RaftConfig) {
    this.config = resolveRaftConfig(config);
    this.id = this.config.id;
    this.log = new RaftLog(this.config.storage, this.config.maxApplyBytesPerReady);
    const { hardState, confState } = this.config.storage.initialState();
    // The initial membership lives in the bootstrap snapshot, not in the log, so a member started
    // without one never learns it: once promoted it would count itself as the only voter.
    if (confState.voters.length === 0) throw new InvalidArgumentError('storage', 'holds no membership; start a new member from storage bootstrapped with the membership it joins');
    this.applyConfState(confState);
    if (hardState.term > 0 || hardState.commit > 0) {
      assert(hardState.commit >= this.log.committed && hardState.commit <= this.log.lastIndex(), `hard state commit ${hardState.commit} outside the log [${this.log.committed}, ${this.log.lastIndex()}]`);
      this.log.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    // The snapshot's state is applied by definition, even when entries before it are still kept.
    const applied = this.config.applied ?? this.config.storage.snapshot().metadata.index;
    if (applied > this.log.applied) this.log.appliedTo(applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---- membership -------------------------------------------------------------------------

  confState(): ConfState {
    const voters: number[] = [];
    const learners: number[] = [];
    for (const [id, pr] of this.progress) (pr.isLearner ? learners : voters).push(id);
    return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
  }

  private applyConfState(confState: ConfState): void {
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of confState.voters) this.progress.set(id, this.newProgress(id, next, false));
    for (const id of confState.learners) this.progress.set(id, this.newProgress(id, next, true));
  }

  private newProgress(id: number, next: number, isLearner: boolean): Progress {
    const pr = new Progress(0, next, isLearner, new Inflights(this.config.maxInflightMsgs, this.config.maxInflightBytes));
    // Only what is durable: entries still being written count once RawNode.advance reports them.
    if (id === this.id) pr.match = Math.min(next - 1, this.log.stableIndex());
    pr.recentActive = true;
    return pr;
  }

  private voterIds(): number[] {
    const ids: number[] = [];
    for (const [id, pr] of this.progress) if (!pr.isLearner) ids.push(id);
    return ids;
  }

  private quorum(): number {
    return Math.floor(this.voterIds().length / 2) + 1;
  }

  /** A voter that has not been removed may campaign. */
  promotable(): boolean {
    const pr = this.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  /** Applies a committed membership change; returns the new membership. */
  applyConfChange(change: ConfChange): ConfState {
    const existing = this.progress.get(change.nodeId);
    switch (change.type) {
      case 'addNode':
        if (existing === undefined) this.progress.set(change.nodeId, this.newProgress(change.nodeId, this.log.lastIndex() + 1, false));
        else existing.isLearner = false;
        break;
      case 'addLearner':
        // Demoting a voter in one step is not supported: remove it, then add it as a learner.
        if (existing === undefined) this.progress.set(change.nodeId, this.newProgress(change.nodeId, this.log.lastIndex() + 1, true));
        break;
      case 'removeNode':
        this.progress.delete(change.nodeId);
        break;
    }
    this.afterMembershipChange(change);
    return this.confState();
  }

  private afterMembershipChange(change: ConfChange): void {
    if (this.role !== 'leader') return;
    if (change.type === 'removeNode' && change.nodeId === this.id) {
      // A removed leader steps down; the remaining members elect a new one.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.progress.has(this.leadTransferee)) this.abortLeaderTransfer();
    // The quorum may have shrunk, which can commit entries at once.
    if (this.voterIds().length > 0 && this.maybeCommit()) this.bcastAppend();
  }

  // ---- role changes -----------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.random.nextInt(this.config.electionTicks, 2 * this.config.electionTicks);
    this.abortLeaderTransfer();
    this.votes = new Map();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.progress) this.progress.set(id, this.newProgress(id, next, pr.isLearner));
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.pendingReads = [];
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> preCandidate');
    // Pre-vote changes neither the term nor the vote, so a partitioned node does not disrupt.
    this.votes = new Map();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', `invalid transition ${this.role} -> leader`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.progress.get(this.id)?.becomeReplicate();
    // No membership change until everything up to here (incl. any earlier change) is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of this term: committing it commits every earlier entry (§5.4.2, §8).
    this.appendEntries([{ term: this.term, index: this.log.lastIndex() + 1, type: 'normal', data: new Uint8Array(0) }]);
  }

  // ---- ticks ------------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.config.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(undefined);
    }
  }

  /** Check-quorum: did a quorum of voters talk to us since the last check? Resets the marks. */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner && (id === this.id || pr.recentActive)) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  // ---- elections --------------------------------------------------------------------------

  hup(kind: Campaign): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // An unapplied membership change may remove us or change the quorum: wait for it.
    if (this.hasUnappliedConfChange()) return;
    this.campaign(kind);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const entries = this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return entries.some((e) => e.type === 'confChange');
  }

  private campaign(kind: Campaign): void {
    let voteTerm: number;
    let type: MessageType;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      type = 'preVote';
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = 'vote';
    }
    if (this.poll(this.id, true) === 'won') {
      this.afterElectionWon();
      return;
    }
    for (const id of this.voterIds()) {
      if (id === this.id) continue;
      this.send({ type, to: id, term: voteTerm, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), ...(kind === 'transfer' ? { context: TRANSFER } : {}) });
    }
  }

  private afterElectionWon(): void {
    if (this.role === 'preCandidate') {
      this.campaign('election');
    } else {
      this.becomeLeader();
      this.bcastAppend();
    }
  }

  private poll(from: number, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const id of this.voterIds()) {
      const v = this.votes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    const quorum = this.quorum();
    if (yes >= quorum) return 'won';
    if (this.voterIds().length - no < quorum) return 'lost';
    return 'pending';
  }

  // ---- messages ---------------------------------------------------------------------------

  send(m: Outgoing): void {
    // One object literal with every field in a fixed order: all messages share one hidden class,
    // so step() and the driver read them monomorphically (a spread gives each caller's own shape).
    const message: { -readonly [K in keyof Message]: Message[K] } = {
      type: m.type,
      from: m.from ?? this.id,
      to: m.to,
      term: m.term ?? this.term,
      logTerm: m.logTerm ?? 0,
      index: m.index ?? 0,
      entries: m.entries ?? NO_ENTRIES,
      commit: m.commit ?? 0,
      reject: m.reject ?? false,
      rejectHint: m.rejectHint ?? 0,
    };
    if (m.snapshot !== undefined) message.snapshot = m.snapshot;
    if (m.context !== undefined) message.context = m.context;
    if (EARLY_MESSAGE[message.type]) this.earlyMsgs.push(message);
    else this.msgs.push(message);
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerLowerTerm(m);
      return;
    }
    switch (m.type) {
      case 'preVote':
      case 'vote':
        this.handleVoteRequest(m);
        return;
      default:
        if (this.role === 'leader') this.stepLeader(m);
        else if (this.role === 'follower') this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  /** A message from a higher term: maybe ignore it, else become a follower of that term. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      // Leader stickiness: while we hear from a live leader we ignore votes, except a transfer.
      const inLease = this.config.checkQuorum && this.lead !== NONE && this.electionElapsed < this.config.electionTicks;
      if (m.context !== TRANSFER && inLease) return false;
    }
    if (m.type === 'preVote') return true; // a pre-vote never changes our term
    if (m.type === 'preVoteResp' && !m.reject) return true; // granted for the term we will campaign in
    const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  private answerLowerTerm(m: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
      // A stale leader (e.g. back from a partition) learns our term and steps down; without this
      // it would never hear a higher term once pre-vote stops others from raising theirs.
      this.send({ type: 'appResp', to: m.from });
    } else if (m.type === 'prop' || m.type === 'readIndex' || m.type === 'transferLeader') {
      // A node that still follows an old leader (say, one removed while cut off) forwards its
      // requests to us with its old term: tell it the term, so it stops forwarding into the void
      // and its callers get NOT_LEADER at once instead of timing out forever.
      this.send({ type: 'appResp', to: m.from });
    } else if (m.type === 'preVote') {
      this.send({ type: 'preVoteResp', to: m.from, reject: true });
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleFromLeader(m);
        return;
      case 'timeoutNow':
        this.hup('transfer');
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context ?? '' });
        return;
      case 'readIndex':
      case 'transferLeader':
      case 'prop':
        // Forwarded to us as if we were leader; pass it on if we know one.
        if (this.lead !== NONE) this.send({ ...m, to: this.lead, term: this.term });
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleFromLeader(m);
        return;
      case 'preVoteResp':
      case 'voteResp': {
        const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
        if (m.type !== expected) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') this.afterElectionWon();
        else if (result === 'lost') this.becomeFollower(this.term, NONE);
        return;
      }
      default:
        return;
    }
  }

  private handleFromLeader(m: Message): void {
    if (m.type === 'app') this.handleAppend(m);
    else if (m.type === 'heartbeat') this.handleHeartbeat(m);
    else this.handleSnapshot(m);
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', to: m.from, ...(m.context !== undefined ? { context: m.context } : {}) });
  }

  private handleSnapshot(m: Message): void {
    assert(m.snapshot !== undefined, 'snap message without a snapshot');
    if (this.restore(m.snapshot)) this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
    else this.send({ type: 'appResp', to: m.from, index: this.log.committed });
  }

  /**
   * Installs a leader's snapshot; false when it brings nothing new. The snapshot may predate our
   * own addition (the leader's latest snapshot often does): we install it anyway and learn our
   * membership from the entries after it. Until then we are in no configuration, so we cannot
   * campaign (see promotable()).
   */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We already have the entry: just fast-forward the commit index.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.applyConfState(confState);
    return true;
  }

  // ---- leader -----------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    if (m.type === 'readIndex') {
      this.handleReadIndex(m.from, m.context ?? '');
      return;
    }
    if (m.type === 'transferLeader') {
      this.handleTransferLeader(m.index);
      return;
    }
    if (m.type === 'prop') {
      this.handleForwardedProposals(m.entries);
      return;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    if (m.type === 'appResp') {
      pr.recentActive = true;
      if (m.reject) this.handleAppendRejected(m, pr);
      else this.handleAppendAccepted(m, pr);
    } else if (m.type === 'heartbeatResp') {
      pr.recentActive = true;
      pr.probeSent = false;
      // A window filled by appends that were all lost would never drain: the follower answers
      // heartbeats but has nothing else to answer. Free one slot so an append goes out; if the
      // earlier ones were lost, its rejection sends the peer back to probe.
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
      if (m.context !== undefined) this.handleReadAck(m.from, m.context);
    }
  }

  private handleAppendRejected(m: Message, pr: Progress): void {
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) [nextProbe] = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
    if (pr.maybeDecreaseTo(m.index, nextProbe)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      this.sendAppend(m.from);
    }
  }

  private handleAppendAccepted(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (pr.match > this.log.committed && this.maybeCommit()) {
      this.releasePendingReads();
      // Tell followers the new commit once per Ready, not once per acknowledgement.
      this.bcastPending = true;
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Keep the pipeline full while there is more to send and room in the window.
    while (this.maybeSendAppend(m.from, false)) {
      /* sends until paused or caught up */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: m.from });
  }

  /** Commits the highest index a quorum of voters has (current-term entries only). */
  maybeCommit(): boolean {
    // Insertion sort (descending) into a reused array: clusters are small and this runs per ack.
    const matches = this.matchScratch;
    matches.length = 0;
    for (const pr of this.progress.values()) {
      if (pr.isLearner) continue;
      let i = matches.length;
      while (i > 0 && matches[i - 1]! < pr.match) {
        matches[i] = matches[i - 1]!;
        i--;
      }
      matches[i] = pr.match;
    }
    const index = matches[Math.floor(matches.length / 2)];
    if (index === undefined) return false;
    return this.log.maybeCommit(index, this.term, this.config.unsafe?.commitPreviousTermByCount === true);
  }

  sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.entriesFrom(pr.next, this.config.maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      if (pr.state === 'replicate') {
        pr.next = last.index + 1;
        pr.inflights.add(last.index, entries.reduce((sum, e) => sum + entrySize(e), 0));
      } else if (pr.state === 'probe') {
        pr.probeSent = true;
      }
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: number, pr: Progress): boolean {
    // Only to a peer we heard from recently: a dead peer would waste the transfer.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, `peer ${to} needs a snapshot but none exists`);
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: 'snap', to, snapshot });
    return true;
  }

  /** Sends the appends deferred by propose() and commit advances; RawNode calls it in ready(). */
  flushBroadcast(): void {
    if (!this.bcastPending) return;
    this.bcastPending = false;
    if (this.role === 'leader') this.bcastAppend();
  }

  bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: string | undefined): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // A follower may lack entries up to our commit: never tell it to commit past its match.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', to: id, commit, ...(context !== undefined ? { context } : {}) });
    }
  }

  /** Appends entries of the current term on the leader; false when over the uncommitted limit. */
  private appendEntries(entries: Entry[]): boolean {
    const bytes = entries.reduce((sum, e) => sum + (e.data.byteLength > 0 ? entrySize(e) : 0), 0);
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedEntriesSize) return false;
    this.uncommittedBytes += bytes;
    // Our own progress does not move here: the entries count toward a commit once they are
    // durable (persisted), which the driver reports through RawNode.advance (see persisted()).
    this.log.append(entries);
    return true;
  }

  /**
   * The driver made the log durable up to `log.stableIndex()` (RawNode.advance). A leader now
   * counts its own log up to there toward the commit quorum, which may commit entries that the
   * followers had already acknowledged.
   */
  persisted(): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(this.id);
    if (pr === undefined || !pr.maybeUpdate(this.log.stableIndex())) return;
    if (pr.match > this.log.committed && this.maybeCommit()) {
      this.releasePendingReads();
      // Tell followers the new commit in the next Ready, as after an acknowledgement.
      this.bcastPending = true;
    }
  }

  /** Called as committed entries are applied, to release the uncommitted-bytes budget. */
  reduceUncommittedBytes(entries: readonly Entry[]): void {
    if (this.role !== 'leader') return;
    const bytes = entries.reduce((sum, e) => sum + (e.data.byteLength > 0 ? entrySize(e) : 0), 0);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  /** Proposes one entry; throws NOT_LEADER or PROPOSAL_DROPPED. Returns its index and term. */
  propose(type: Entry['type'], data: Uint8Array): { index: number; term: number } {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (!this.progress.has(this.id)) throw new ProposalDroppedError('this node was removed from the cluster');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    if (!this.appendEntries([entry])) throw new ProposalDroppedError(`uncommitted entries exceed ${this.config.maxUncommittedEntriesSize} bytes`);
    // Coalesce: every proposal made before the next ready() goes out in one append per follower.
    this.bcastPending = true;
    return { index: entry.index, term: entry.term };
  }

  /**
   * Proposals a follower forwarded. They are appended like local ones; any that would be
   * refused (transfer in progress, over the uncommitted limit) are dropped silently: the
   * follower's caller times out and retries, as with any message lost in the network.
   */
  private handleForwardedProposals(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== 'normal') continue; // membership changes are never forwarded
      try {
        this.propose('normal', entry.data);
      } catch (error) {
        if (!(error instanceof CutoverError)) throw error;
        return;
      }
    }
  }

  /** Sends a proposal to the leader (a follower's write); throws NOT_LEADER when none is known. */
  forwardProposal(data: Uint8Array): void {
    if (this.lead === NONE) throw new NotLeaderError(NONE);
    this.send({ type: 'prop', to: this.lead, entries: [{ term: 0, index: 0, type: 'normal', data }] });
  }

  proposeConfChange(change: ConfChange, data: Uint8Array): { index: number; term: number } {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (this.pendingConfIndex > this.log.applied) throw new ProposalDroppedError(`a membership change at index ${this.pendingConfIndex} is not yet applied`);
    this.validateConfChange(change);
    const result = this.propose('confChange', data);
    this.pendingConfIndex = result.index;
    return result;
  }

  private validateConfChange(change: ConfChange): void {
    const pr = this.progress.get(change.nodeId);
    if (change.type === 'addNode' && pr !== undefined && !pr.isLearner) throw new CutoverError('MEMBER_EXISTS', `node ${change.nodeId} is already a voter`);
    if (change.type === 'addLearner' && pr !== undefined) throw new CutoverError('MEMBER_EXISTS', `node ${change.nodeId} is already a ${pr.isLearner ? 'learner' : 'voter'}`);
    if (change.type === 'removeNode' && pr === undefined) throw new CutoverError('MEMBER_NOT_FOUND', `node ${change.nodeId} is not a member`);
    if (change.type === 'removeNode' && !pr!.isLearner && this.voterIds().length === 1) throw new CutoverError('LAST_VOTER', 'cannot remove the last voter');
    if (change.type === 'addNode' && pr?.isLearner === true && this.log.lastIndex() - pr.match > this.config.learnerPromotionLagMax) {
      throw new ProposalDroppedError(`learner ${change.nodeId} is ${this.log.lastIndex() - pr.match} entries behind; promote it once it has caught up`);
    }
  }

  // ---- ReadIndex ----------------------------------------------------------------------------

  /** A linearizable read request from `from` (this node or a follower that forwarded it). */
  handleReadIndex(from: number, context: string): void {
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may lag the previous leader's until our no-op commits.
      this.pendingReads.push({ from, context });
      return;
    }
    if (this.voterIds().length === 1 && this.progress.has(this.id)) {
      this.answerRead(from, this.log.committed, context);
      return;
    }
    if (!this.readOnly.add(this.log.committed, from, context)) return;
    this.handleReadAck(this.id, context);
    this.bcastHeartbeat(context);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const r of reads) this.handleReadIndex(r.from, r.context);
  }

  private handleReadAck(from: number, context: string): void {
    const pr = this.progress.get(from);
    if (pr === undefined || pr.isLearner) return;
    const acks = this.readOnly.ack(context, from);
    if (acks === undefined) return;
    let voters = 0;
    for (const id of acks) if (this.progress.get(id)?.isLearner === false) voters++;
    if (voters < this.quorum()) return;
    for (const request of this.readOnly.advance(context)) this.answerRead(request.from, request.index, request.context);
  }

  private answerRead(to: number, index: number, context: string): void {
    if (to === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResp', to, index, context });
  }

  // ---- leader transfer ------------------------------------------------------------------------

  handleTransferLeader(target: number): void {
    const pr = this.progress.get(target);
    if (pr === undefined || pr.isLearner) return;
    if (this.leadTransferee === target || target === this.id) return;
    if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    // The transfer must finish within one election timeout or it is abandoned.
    this.electionElapsed = 0;
    this.leadTransferee = target;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: target });
    else this.sendAppend(target);
  }

  validateTransferTarget(target: number): void {
    const pr = this.progress.get(target);
    if (pr === undefined) throw new InvalidArgumentError('target', `node ${target} is not a member`);
    if (pr.isLearner) throw new InvalidArgumentError('target', `node ${target} is a learner and cannot lead`);
  }

  /**
   * The transport lost this follower's connection to its leader (a crashed leader's sockets
   * close at once). Rather than wait out a whole election timeout, drop the leader lease (so
   * this node grants other followers' votes) and campaign after a short random delay. Safe: an
   * election is always safe in Raft, and pre-vote keeps a false alarm from disrupting a leader
   * that is alive, since the followers still hearing it reject the pre-vote.
   */
  leaderUnreachable(): void {
    if (this.role !== 'follower' || this.lead === NONE) return;
    // Spread over a few ticks so that followers that noticed together rarely split the vote.
    const soon = this.config.random.nextInt(1, Math.max(2, Math.ceil(this.config.electionTicks / 2)));
    this.electionElapsed = Math.max(this.electionElapsed, this.config.electionTicks, this.randomizedElectionTimeout - soon);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---- helpers for RawNode ------------------------------------------------------------------

  decodeConfChange(entry: Entry): ConfChange {
    return decodeConfChange(entry.data);
  }
}
