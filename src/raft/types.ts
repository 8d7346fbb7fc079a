/**
 * Wire and storage types of the Raft core. Everything here is plain data: it can be copied,
 * serialised and compared. Terms, indexes and node ids are plain numbers inside the core (the
 * arithmetic on them is constant and branded types would only add casts); the layers above brand
 * them at their boundaries (see src/util/ids.ts).
 */

/** An entry's payload kind. `normal` with empty data is the leader's no-op. */
export type EntryType = 'normal' | 'confChange';

/** One log entry. `index` starts at 1; `term` is the leader term that created it. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The durable vote/term/commit triple. Must be persisted before the Ready's messages are sent. */
export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or 0. */
  readonly vote: number;
  readonly commit: number;
}

/** Cluster membership: voters decide elections and commits; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

/** A membership change, carried in a `confChange` entry and applied once committed. */
export interface ConfChange {
  readonly type: 'addNode' | 'addLearner' | 'removeNode';
  readonly nodeId: number;
  /** Opaque to Raft: the layers above carry e.g. the member's address here. */
  readonly context?: string;
}

export interface SnapshotMetadata {
  /** The last log index the snapshot covers, and that entry's term. */
  readonly index: number;
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

/** A state-machine snapshot. `data` is opaque to Raft. Index 0 means "no snapshot". */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export type MessageType =
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'app'
  | 'appResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp'
  | 'transferLeader'
  | 'prop';

/**
 * A message between peers. Field use per type:
 * - app: `index`/`logTerm` are the entry before `entries`; `commit` the leader's commit.
 * - appResp: `index` is the last index matched (accept) or the rejected probe index (reject, with
 *   `rejectHint` the follower's hint index and `logTerm` the term at that hint: fast back-off).
 * - vote/preVote: `index`/`logTerm` are the candidate's last entry; `context` 'transfer' marks a
 *   leader-transfer campaign, which ignores leader stickiness.
 * - heartbeat: `commit` is min(leader commit, follower match); `context` carries a ReadIndex round.
 * - readIndex / readIndexResp: `context` identifies the request; resp `index` is the read index.
 * - prop: proposals a follower forwards to its leader (`entries` carry only type and data; the
 *   leader assigns term and index, or drops them as it would drop a local proposal).
 */
export interface Message {
  readonly type: MessageType;
  readonly from: number;
  readonly to: number;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly snapshot?: Snapshot;
  readonly context?: string;
}

/** A completed ReadIndex request: reads at `index` are linearizable once applied >= `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state that is useful to the driver but need not be persisted. */
export interface SoftState {
  readonly leader: number;
  readonly role: Role;
}

/**
 * Messages that may leave before the Ready's write is durable: they vouch for nothing this node
 * has not yet persisted. The leader's `app`, `heartbeat`, `snap`, `timeoutNow` and
 * `readIndexResp` carry its term (durable since it won the election) and its commit index, which
 * counts the leader's own log only up to what it has persisted (see `Ready`); `prop`, `readIndex`
 * and `transferLeader` are requests a follower forwards. Everything else is a vote or an
 * acknowledgement (`vote`, `preVote`, their responses, `appResp`, `heartbeatResp`) and promises
 * durable state: it waits for the write.
 */
export const EARLY_MESSAGE: Readonly<Record<MessageType, boolean>> = Object.freeze({
  app: true,
  heartbeat: true,
  snap: true,
  timeoutNow: true,
  readIndexResp: true,
  prop: true,
  readIndex: true,
  transferLeader: true,
  appResp: false,
  heartbeatResp: false,
  vote: false,
  voteResp: false,
  preVote: false,
  preVoteResp: false,
});

/** The message types that may leave early (EARLY_MESSAGE as a set). */
export const EARLY_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set((Object.keys(EARLY_MESSAGE) as MessageType[]).filter((type) => EARLY_MESSAGE[type]));

/**
 * What the driver must do next, in this order (the Ready contract):
 * 0. it may send `earlyMessages` at once, apply `committedEntries` (in order) and act on
 *    `readStates`, before or while step 1 runs (or do any of it later, in steps 2 and 3);
 * 1. persist `snapshot` (if any), `entries` and `hardState` (if any) in one atomic write, synced
 *    when `mustSync`;
 * 2. send `messages` (only after step 1, since they promise what was persisted);
 * 3. apply `snapshot` (only after step 1), then `committedEntries` unless step 0 did;
 * 4. call `advance()`, which tells the core that step 1 is durable.
 *
 * `committedEntries` are committed (durable on a quorum) and already durable in this node's own
 * log: the core hands out a committed entry only once the Ready that carried it was advanced. So
 * applying them need not wait for this Ready's write. A Ready with a snapshot has none.
 *
 * Why step 0 is safe (Raft thesis §10.2.1; etcd-io/raft's asynchronous storage writes): the
 * leader counts its own log toward the commit quorum only up to the entries `advance()` reported
 * durable, never the ones still being written. So the leader's appends may go to the followers
 * while its own write is in flight, and its fsync overlaps theirs; if it crashes before the write
 * completes, an entry it sent is committed only if a quorum of other nodes persisted it. Followers
 * still persist before they acknowledge (`appResp` is in `messages`). A Ready whose hard state
 * changes the term or the vote has no early messages at all (they are all in `messages`): every
 * message that leaves early carries a term this node has already made durable.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  /** May be sent before step 1 (see above): only the types in EARLY_MESSAGE_TYPES. */
  readonly earlyMessages: readonly Message[];
  /** Sent only after step 1. */
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when step 1 must be a synced write (snapshot, entries, term or vote changed). */
  readonly mustSync: boolean;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one peer. */
export interface PeerProgress {
  readonly id: number;
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly inflightCount: number;
  readonly inflightBytes: number;
  readonly recentActive: boolean;
}

export interface Status {
  readonly id: number;
  readonly term: number;
  readonly vote: number;
  readonly role: Role;
  readonly leader: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly leadTransferee: number;
  readonly confState: ConfState;
  /** Per-peer progress; empty unless this node is the leader. */
  readonly progress: readonly PeerProgress[];
}

/** An empty snapshot, meaning "none". */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: Object.freeze({ voters: [], learners: [] }) }),
  data: new Uint8Array(0),
});

/** Bytes an entry counts for in flow control: its payload plus a fixed header. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 24;
}
