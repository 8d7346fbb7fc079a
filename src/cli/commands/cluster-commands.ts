/**
 * `cutover cluster status|members|add-learner|promote|remove|transfer-leader` over
 * `cutover.v1.Cluster`.
 */
import { Option, type Command } from 'commander';
import { sleep } from '../../platform/wait.ts';
import { CommandFailedError } from '../cli-errors.ts';
import type { MessageObject } from '../client/schema.ts';
import { emit, table, type Column, type Output } from '../output/output.ts';
import { parseCount, runAction, type CommandContext } from './context.ts';

const STATUS = 'cutover.v1.Cluster/Status';

interface Member {
  id: number;
  address: string;
  learner: boolean;
}

/** One row of `cluster status`: a member and what it says about itself. */
export interface MemberStatus {
  id: number;
  address: string;
  learner: boolean;
  reachable: boolean;
  role: string;
  term: number;
  commit_index: number;
  applied_index: number;
  last_index: number;
  snapshot_index: number;
  revision: number;
  /** The leader's match index for this member (0 when unknown). */
  match: number;
  error: string;
}

/** `cluster status -o json`: the leader as the contacted node knows it, and every member's own status. */
export interface ClusterStatus {
  leader_id: number;
  leader_address: string;
  term: number;
  members: MemberStatus[];
}

/** Per-member status reads are quick or the member is down: they do not wait for --timeout. */
const MEMBER_STATUS_TIMEOUT_MS = 1500;
const TRANSFER_POLL_MS = 50;

async function clusterStatus(context: CommandContext): Promise<ClusterStatus> {
  const session = context.session();
  const first = await session.unary(STATUS, {}, { idempotent: true });
  const members = first.members as Member[];
  const statuses = await Promise.all(
    members.map((m) => (m.id === first.id ? Promise.resolve(first) : session.unaryAt(m.address, STATUS, {}, MEMBER_STATUS_TIMEOUT_MS).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))))),
  );
  const leader = statuses.find((s): s is MessageObject => !(s instanceof Error) && s.role === 'leader');
  const progress = new Map(((leader?.progress ?? []) as { id: number; match: number }[]).map((p) => [p.id, p.match]));
  const rows = members.map((m, i): MemberStatus => {
    const s = statuses[i]!;
    if (s instanceof Error) return { ...m, reachable: false, role: 'unreachable', term: 0, commit_index: 0, applied_index: 0, last_index: 0, snapshot_index: 0, revision: 0, match: progress.get(m.id) ?? 0, error: s.message };
    const role = m.learner ? 'learner' : String(s.role);
    return { ...m, reachable: true, role, term: Number(s.term), commit_index: Number(s.commit_index), applied_index: Number(s.applied_index), last_index: Number(s.last_index), snapshot_index: Number(s.snapshot_index), revision: Number(s.revision), match: progress.get(m.id) ?? 0, error: '' };
  });
  rows.sort((a, b) => a.id - b.id);
  const source = leader ?? first;
  return { leader_id: Number(source.leader_id), leader_address: String(source.leader_address), term: Math.max(...rows.map((r) => r.term)), members: rows };
}

function statusTable(output: Output, status: ClusterStatus): string {
  const { styles } = output;
  const headline = status.leader_id === 0 ? styles.yellow('no leader known (an election may be running)') : `leader ${styles.bold(`node ${status.leader_id}`)} at ${status.leader_address}, term ${status.term}`;
  const dash = (value: number, row: MemberStatus): string => (row.reachable ? String(value) : '-');
  const columns: Column<MemberStatus>[] = [
    { header: 'ID', cell: (r) => String(r.id), align: 'right' },
    { header: 'ADDRESS', cell: (r) => r.address, flexible: 1 },
    { header: 'ROLE', cell: (r) => r.role, style: (text, r, s) => (r.role === 'leader' ? s.green(text) : r.reachable ? text : s.red(text)) },
    { header: 'TERM', cell: (r) => dash(r.term, r), align: 'right' },
    { header: 'COMMIT', cell: (r) => dash(r.commit_index, r), align: 'right' },
    { header: 'APPLIED', cell: (r) => dash(r.applied_index, r), align: 'right' },
    { header: 'MATCH', cell: (r) => (r.match > 0 ? String(r.match) : '-'), align: 'right' },
    { header: 'REVISION', cell: (r) => dash(r.revision, r), align: 'right' },
  ];
  return `${headline}\n${table(output, columns, status.members, 'no members')}`;
}

function membersTable(output: Output, response: MessageObject): string {
  const columns: Column<Member>[] = [
    { header: 'ID', cell: (m) => String(m.id), align: 'right' },
    { header: 'ADDRESS', cell: (m) => m.address, flexible: 1 },
    { header: 'ROLE', cell: (m) => (m.learner ? 'learner' : 'voter') },
  ];
  return table(output, columns, response.members as Member[], 'no members');
}

async function membershipChange(context: CommandContext, method: string, request: MessageObject, done: string): Promise<void> {
  // Not idempotent: a repeated add answers MEMBER_EXISTS, a repeated remove MEMBER_NOT_FOUND.
  const response = await context.session().unary(`cutover.v1.Cluster/${method}`, request, { idempotent: false });
  emit(context.output, response, () => `${done}\n${membersTable(context.output, response)}`);
}

/** Waits until the cluster reports `target` as leader, within the command's timeout. */
async function waitForLeader(context: CommandContext, target: number): Promise<ClusterStatus> {
  for (;;) {
    const status = await clusterStatus(context);
    if (status.leader_id === target) return status;
    if (context.session().remainingMs() < TRANSFER_POLL_MS * 2) {
      throw new CommandFailedError('TRANSFER_NOT_DONE', `node ${target} did not become leader within --timeout (leader is ${status.leader_id || 'unknown'})`, 'a transfer needs the target to be a caught-up voter; see `cutover cluster status` and retry');
    }
    await sleep(TRANSFER_POLL_MS);
  }
}

/** Registers `cutover cluster …`. */
export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('cluster membership and leadership (cutover.v1.Cluster)');

  cluster
    .command('status')
    .description('every member\'s role, term and log position, asked of each member')
    .action(
      runAction(async (context) => {
        const status = await clusterStatus(context);
        emit(context.output, status, () => statusTable(context.output, status));
      }),
    );

  cluster
    .command('members')
    .description('the members: voters and learners')
    .action(
      runAction(async (context) => {
        const response = await context.session().unary('cutover.v1.Cluster/ListMembers', {}, { idempotent: true });
        emit(context.output, response, () => membersTable(context.output, response));
      }),
    );

  cluster
    .command('add-learner')
    .description('add a node as a learner (it receives the log, does not vote); start it with --join')
    .argument('<id>', 'the new node\'s id')
    .argument('<address>', 'its host:port')
    .action(
      runAction(async (context, [id, address]) => {
        const nodeId = parseCount('<id>', String(id));
        await membershipChange(context, 'AddMember', { id: nodeId, address: String(address) }, `added node ${nodeId} (${String(address)}) as a learner`);
      }),
    );

  cluster
    .command('promote')
    .description('make a caught-up learner a voter')
    .argument('<id>', 'the learner\'s id')
    .action(
      runAction(async (context, [id]) => {
        const nodeId = parseCount('<id>', String(id));
        await membershipChange(context, 'PromoteMember', { id: nodeId }, `promoted node ${nodeId} to voter`);
      }),
    );

  cluster
    .command('remove')
    .description('remove a member from the cluster')
    .argument('<id>', 'the member\'s id')
    .action(
      runAction(async (context, [id]) => {
        const nodeId = parseCount('<id>', String(id));
        await membershipChange(context, 'RemoveMember', { id: nodeId }, `removed node ${nodeId}`);
      }),
    );

  cluster
    .command('transfer-leader')
    .description('hand leadership to another voter and wait until it leads')
    .argument('<id>', 'the voter to lead')
    .addOption(new Option('--no-wait', 'return once the leader has started the transfer'))
    .action(
      runAction(async (context, [id], flags) => {
        const target = parseCount('<id>', String(id));
        const response = await context.session().unary('cutover.v1.Cluster/TransferLeader', { target_id: target }, { idempotent: true });
        if (flags.wait === false) {
          emit(context.output, response, () => `leadership transfer to node ${target} started (leader was node ${Number(response.leader_id)})`);
          return;
        }
        const status = await waitForLeader(context, target);
        emit(context.output, { leader_id: status.leader_id, term: status.term }, () => `node ${target} is the leader (term ${status.term})`);
      }),
    );
}
