import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { eventId, eventWrite, type EventAction, type EventActor } from '../events/event.ts';
import { eventSource } from '../events/source.ts';
import type { CutoverNode } from '../node/node.ts';
import { epochMs } from '../platform/wall-clock.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { unary } from './kv-service.ts';
import { requestActor, unaryWithMetadata } from './request-actor.ts';

export interface ClusterServiceOptions {
  /** Wall-clock epoch ms, stamped on audit events (default: the platform's). */
  readonly wallClockMs?: () => number;
}

function requireId(id: number, field = 'id'): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(field, 'must be a positive node id');
}

function membersOf(node: CutoverNode): { members: { id: number; address: string; learner: boolean }[] } {
  const { voters, learners } = node.members();
  return { members: [...voters.map((m) => ({ ...m, learner: false })), ...learners.map((m) => ({ ...m, learner: true }))] };
}

/**
 * The cutover.v1.Cluster service over one node.
 *
 * Membership changes are Raft conf changes, not KV transactions, so their audit events
 * (`member.added`, `member.promoted`, `member.removed`) cannot share a transaction with them: each
 * is written as its own KV put right AFTER the change is applied (id `{at}-member.{verb}.{id}.i{n}`
 * with n this node's applied index once the change applied). When that put fails the call fails
 * with its code and a message saying the change itself was applied. `leader.transferred` is
 * written BEFORE the transfer is asked for: a leader handing over drops proposals, and after the
 * handover this node may not lead; so it records the operator's request (a target that is not a
 * voter is refused before anything is written).
 */
export function clusterService(node: CutoverNode, options: ClusterServiceOptions = {}): UntypedServiceImplementation {
  const wallClockMs = options.wallClockMs ?? epochMs;

  async function record(action: EventAction, actor: EventActor, memberId: number, reason: string, details: Record<string, unknown> = {}): Promise<void> {
    const at = wallClockMs();
    const id = eventId(at, eventSource(action, memberId, `i${node.status().appliedIndex}`));
    await node.propose(eventWrite({ id, at, actor, action, target: { memberId, nodeId: node.id }, reason, details }));
  }

  /** After a membership change applied: its event, or a failure that says the change is done. */
  async function recordApplied(action: EventAction, actor: EventActor, memberId: number, reason: string, details: Record<string, unknown> = {}): Promise<void> {
    try {
      await record(action, actor, memberId, reason, details);
    } catch (error) {
      const code = error instanceof CutoverError ? error.code : 'INTERNAL';
      throw new CutoverError(code, `${reason} (applied), but its audit event was not written: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  return {
    Status: unary(async () => {
      const s = node.status();
      const leader = node.leaderInfo();
      return {
        id: s.id,
        role: s.role,
        term: s.term,
        leader_id: leader.id,
        leader_address: leader.address ?? '',
        commit_index: s.commit,
        applied_index: s.appliedIndex,
        last_index: s.lastIndex,
        snapshot_index: s.snapshotIndex,
        revision: node.kv.revision(),
        members: membersOf(node).members,
        progress: s.progress.map((p) => ({ id: p.id, match: p.match, next: p.next, state: p.state, learner: p.isLearner, recent_active: p.recentActive })),
      };
    }),
    ListMembers: unary(async () => membersOf(node)),
    AddMember: unaryWithMetadata(async (req: { id: number; address: string }, metadata) => {
      requireId(req.id);
      if (!/^[^\s:]+:\d+$/.test(req.address)) throw new InvalidArgumentError('address', `must be host:port, got "${req.address}"`);
      const actor = requestActor(metadata);
      await node.addLearner(req.id, req.address);
      await recordApplied('member.added', actor, req.id, `member ${req.id} added as a learner at ${req.address}`, { address: req.address, learner: true });
      return membersOf(node);
    }),
    PromoteMember: unaryWithMetadata(async (req: { id: number }, metadata) => {
      requireId(req.id);
      const actor = requestActor(metadata);
      await node.promote(req.id);
      await recordApplied('member.promoted', actor, req.id, `member ${req.id} promoted to voter`);
      return membersOf(node);
    }),
    RemoveMember: unaryWithMetadata(async (req: { id: number }, metadata) => {
      requireId(req.id);
      const actor = requestActor(metadata);
      await node.removeMember(req.id);
      await recordApplied('member.removed', actor, req.id, `member ${req.id} removed`);
      return membersOf(node);
    }),
    TransferLeader: unaryWithMetadata(async (req: { target_id: number }, metadata) => {
      requireId(req.target_id, 'target_id');
      const actor = requestActor(metadata);
      if (!node.members().voters.some((m) => m.id === req.target_id)) throw new InvalidArgumentError('target_id', `must be a voter; ${req.target_id} is not one`);
      const from = node.leaderInfo().id;
      await record('leader.transferred', actor, req.target_id, `leadership transfer from ${from} to ${req.target_id} requested`, { from, to: req.target_id });
      node.transferLeader(req.target_id);
      return { leader_id: node.leaderInfo().id };
    }),
  };
}
