/**
 * Operational errors carry a stable uppercase `code`; callers and tests check the code, never the
 * message. The original error, when there is one, is kept in `cause`.
 */
export class CutoverError extends Error {
  override readonly name: string = 'CutoverError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The receiver is not the leader. `leaderId` is the leader it knows of, or 0 when none, and
 * `leaderAddress` its address when known (clients follow it).
 */
export class NotLeaderError extends CutoverError {
  override readonly name = 'NotLeaderError';
  readonly leaderId: number;
  readonly leaderAddress: string | undefined;

  constructor(leaderId: number, message?: string, leaderAddress?: string) {
    super('NOT_LEADER', message ?? (leaderId === 0 ? 'not the leader; no leader known' : `not the leader; leader is ${leaderId}`));
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
  }
}

/** A proposal was refused before it entered the log (flow control, leader transfer, ...). */
export class ProposalDroppedError extends CutoverError {
  override readonly name = 'ProposalDroppedError';
  constructor(reason: string) {
    super('PROPOSAL_DROPPED', `proposal dropped: ${reason}`);
  }
}

/** A setting or argument is invalid. `field` names it. */
export class InvalidArgumentError extends CutoverError {
  override readonly name = 'InvalidArgumentError';
  readonly field: string;
  constructor(field: string, message: string) {
    super('INVALID_ARGUMENT', `${field}: ${message}`);
    this.field = field;
  }
}
