import { InvalidArgumentError } from '../util/errors.ts';
import type { Random } from '../util/random.ts';
import type { RaftStorage } from './storage.ts';

/** Options of one Raft peer. Times are in ticks; the driver decides how long a tick is. */
export interface RaftConfig {
  /** This peer's id, > 0. */
  readonly id: number;
  readonly storage: RaftStorage;
  /** Source of election jitter; seeded in the simulator. */
  readonly random: Random;
  /** A follower that hears nothing for a random time in [electionTicks, 2·electionTicks) campaigns. */
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Byte limit of the entries in one append message (at least one entry is always sent). */
  readonly maxSizePerMsg?: number;
  /** In-flight append messages per peer in replicate state, by count and by bytes. */
  readonly maxInflightMsgs?: number;
  readonly maxInflightBytes?: number;
  /** The leader drops proposals past this many bytes of uncommitted entries. */
  readonly maxUncommittedEntriesSize?: number;
  /** Byte limit of committed entries handed out in one Ready. */
  readonly maxApplyBytesPerReady?: number;
  /** Entries a learner may lag the leader's last index by and still be promoted. */
  readonly learnerPromotionLagMax?: number;
  /** The last applied index at restart (defaults to the snapshot index). */
  readonly applied?: number;
  /** Deliberately broken behaviour, only for proving that the simulator's checkers fire. */
  readonly unsafe?: { readonly commitPreviousTermByCount?: boolean };
}

export type ResolvedRaftConfig = Required<Omit<RaftConfig, 'applied' | 'unsafe'>> & Pick<RaftConfig, 'applied' | 'unsafe'>;

const DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxSizePerMsg: 1024 * 1024,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxUncommittedEntriesSize: 64 * 1024 * 1024,
  maxApplyBytesPerReady: 64 * 1024 * 1024,
  learnerPromotionLagMax: 1000,
} as const;

function positiveInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(field, `must be a positive integer, got ${value}`);
}

/** Fills defaults and rejects invalid settings with an error that names the setting. */
export function resolveRaftConfig(config: RaftConfig): ResolvedRaftConfig {
  const resolved: ResolvedRaftConfig = { ...DEFAULTS, ...stripUndefined(config) } as ResolvedRaftConfig;
  positiveInteger('id', resolved.id);
  positiveInteger('electionTicks', resolved.electionTicks);
  positiveInteger('heartbeatTicks', resolved.heartbeatTicks);
  if (resolved.electionTicks <= resolved.heartbeatTicks) {
    throw new InvalidArgumentError('electionTicks', `must be greater than heartbeatTicks (${resolved.heartbeatTicks}), got ${resolved.electionTicks}`);
  }
  positiveInteger('maxSizePerMsg', resolved.maxSizePerMsg);
  positiveInteger('maxInflightMsgs', resolved.maxInflightMsgs);
  positiveInteger('maxInflightBytes', resolved.maxInflightBytes);
  positiveInteger('maxUncommittedEntriesSize', resolved.maxUncommittedEntriesSize);
  positiveInteger('maxApplyBytesPerReady', resolved.maxApplyBytesPerReady);
  positiveInteger('learnerPromotionLagMax', resolved.learnerPromotionLagMax);
  if (resolved.applied !== undefined && (!Number.isSafeInteger(resolved.applied) || resolved.applied < 0)) {
    throw new InvalidArgumentError('applied', `must be a non-negative integer, got ${resolved.applied}`);
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
