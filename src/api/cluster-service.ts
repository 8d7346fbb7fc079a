import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CutoverNode } from '../node/node.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { unary } from './kv-service.ts';

function requireId(id: number, field = 'id'): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(field, 'must be a positive node id');
}

function membersOf(node: CutoverNode): { members: { id: number; address: string; learner: boolean }[] } {
  const { voters, learners } = node.members();
  return { members: [...voters.map((m) => ({ ...m, learner: false })), ...learners.map((m) => ({ ...m, learner: true }))] };
}

/** The cutover.v1.Cluster service over one node. */
export function clusterService(node: CutoverNode): UntypedServiceImplementation {
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
    AddMember: unary(async (req: { id: number; address: string }) => {
      requireId(req.id);
      if (!/^[^\s:]+:\d+$/.test(req.address)) throw new InvalidArgumentError('address', `must be host:port, got "${req.address}"`);
      await node.addLearner(req.id, req.address);
      return membersOf(node);
    }),
    PromoteMember: unary(async (req: { id: number }) => {
      requireId(req.id);
      await node.promote(req.id);
      return membersOf(node);
    }),
    RemoveMember: unary(async (req: { id: number }) => {
      requireId(req.id);
      await node.removeMember(req.id);
      return membersOf(node);
    }),
    TransferLeader: unary(async (req: { target_id: number }) => {
      requireId(req.target_id, 'target_id');
      node.transferLeader(req.target_id);
      return { leader_id: node.leaderInfo().id };
    }),
  };
}
