import { InvalidArgumentError } from '../util/errors.ts';

/** Timing and limits of a node runtime. Every setting has a default and is validated at start. */
export interface NodeSettings {
  /** Length of one Raft tick. */
  readonly tickMs: number;
  /** Ticks without a leader before a follower campaigns (randomised up to twice this). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** A proposal or read that is not settled within this time fails with TIMEOUT. */
  readonly requestTimeoutMs: number;
  /** Take a snapshot once this many entries were applied since the last one. */
  readonly snapshotEntries: number;
  /** Entries kept behind a snapshot, so a follower that lags a little needs no snapshot. */
  readonly compactionMarginEntries: number;
  /** Proposals and reads waiting at once on this node; more are refused with PROPOSAL_DROPPED. */
  readonly pendingRequestsMax: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
}

export const DEFAULT_NODE_SETTINGS: NodeSettings = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  requestTimeoutMs: 5000,
  snapshotEntries: 10_000,
  compactionMarginEntries: 1000,
  pendingRequestsMax: 10_000,
  maxSizePerMsg: 1024 * 1024,
  maxInflightMsgs: 256,
  maxUncommittedEntriesSize: 64 * 1024 * 1024,
};

/** Fills defaults and rejects invalid settings with INVALID_ARGUMENT naming the setting. */
export function resolveNodeSettings(partial: Partial<NodeSettings> = {}): NodeSettings {
  const settings: NodeSettings = { ...DEFAULT_NODE_SETTINGS };
  for (const [name, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_NODE_SETTINGS)) throw new InvalidArgumentError(name, 'is not a node setting');
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(name, `must be a positive integer, got ${String(value)}`);
    (settings as unknown as Record<string, number>)[name] = value;
  }
  if (settings.electionTicks <= settings.heartbeatTicks) {
    throw new InvalidArgumentError('electionTicks', `must be greater than heartbeatTicks (${settings.heartbeatTicks}), got ${settings.electionTicks}`);
  }
  if (settings.requestTimeoutMs < settings.tickMs) throw new InvalidArgumentError('requestTimeoutMs', `must be at least tickMs (${settings.tickMs})`);
  return settings;
}
