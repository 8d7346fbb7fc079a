/**
 * `cutover update …` of the real binary against a real 3-node cluster (node processes on
 * 127.0.0.1): every update command, `status --watch` ending on a terminal state, JSON parsed back,
 * and the exit codes and one-line messages of refused operations. One cluster for the file; the
 * tests run in order and build on each other (greeter 1.0.0 → 2.0.0 MANUAL → 1.0.0 STAGED →
 * 2.1.0-bad CANARY rolled back by the health gate → rollback-to).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { connect, type CutoverClient } from '../../src/index.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { ProcessCluster } from '../process/harness.ts';
import { CliRunner } from './cli-harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));

interface Update {
  id: string;
  artifact: string;
  old_version: string;
  new_version: string;
  state: string;
  paused: boolean;
  strategy: string;
  routing: string;
  step_index: number;
  steps_total: number;
  transitions: { step: string; actor: { kind: string; name: string }; reason: string }[];
  rollback: { reason: string; initiated_by: { kind: string } } | null;
}
interface UpdateResponse {
  update: Update;
  changed: boolean;
  detail: string;
}

let cluster: ProcessCluster;
let cli: CliRunner;
let client: CutoverClient | undefined;

test.before(async () => {
  cluster = await ProcessCluster.start(3);
  cli = new CliRunner([...cluster.nodes.values()].map((n) => n.address).join(','));
  for (const version of ['1.0.0', '2.0.0', '2.1.0-bad']) await cli.ok(['slice', 'publish', path.join(EXAMPLES, version)]);
  await cli.ok(['slice', 'deploy', GREETER, '1.0.0', '-i', '3']);
  await untilActive('1.0.0', 3);
});

test.after.always(async () => {
  await client?.close();
  await cluster?.destroy();
  cli?.dispose();
});

async function untilActive(version: string, count: number): Promise<void> {
  await waitFor(`${count} ACTIVE instances of ${version}`, async () => {
    const response = await cli.json<{ instances: { version: string; state: string; assigned: boolean }[] }>(['slice', 'instances', GREETER]);
    return response.instances.filter((i) => i.version === version && i.assigned && i.state === 'ACTIVE').length >= count;
  }, { attempts: 240, intervalMs: 250 });
}

async function status(id: string): Promise<Update> {
  return (await cli.json<{ update: Update }>(['update', 'status', id])).update;
}

async function untilState(id: string, states: readonly string[]): Promise<Update> {
  let last: Update | undefined;
  return waitFor(`update ${id} in ${states.join(' or ')} (last ${last?.state})`, async () => {
    last = await status(id);
    return states.includes(last.state) ? last : undefined;
  }, { attempts: 240, intervalMs: 250 });
}

test.serial('MANUAL: start, routing 1:9 → 1:3 → 1:1, refused complete, 1:0, complete; status --watch ends COMPLETED', async (t) => {
  const started = await cli.json<UpdateResponse>(['update', 'start', GREETER, '2.0.0', '-i', '3', '--cleanup', 'GRACE_PERIOD', '--grace-period', '3', '--initiated-by', 'ada']);
  t.like(started.update, { artifact: GREETER, old_version: '1.0.0', new_version: '2.0.0', strategy: 'MANUAL' });
  const id = started.update.id;
  t.false(id.includes(':'));

  // The table form of start names the next command.
  const again = await cli.run(['update', 'start', GREETER, '2.0.0']);
  t.is(again.code, 1, 'a second update of the artifact is refused');
  t.regex(again.stderr, new RegExp(`^cutover: update ${id} of ${GREETER} is \\w+; one update per artifact at a time — follow it with \`cutover update status ${id}\`, or finish it \\(complete, rollback or cancel\\) first\\n$`));

  // A MANUAL update enters ROUTING at 0:1 once its new instances are ACTIVE.
  await untilState(id, ['ROUTING']);
  const listed = await cli.ok(['update', 'list']);
  t.regex(listed, new RegExp(`^ID\\s+ARTIFACT\\s+VERSIONS\\s+STATE\\s+ROUTING\\s+AGE\\n${id}\\s+org\\.example:greeter\\s+1\\.0\\.0→2\\.0\\.0\\s+ROUTING\\s+0:1\\s+\\d+s\\n$`));

  for (const ratio of ['1:9', '1:3', '1:1']) {
    const routed = await cli.json<UpdateResponse>(['update', 'routing', id, '-r', ratio]);
    t.like(routed, { changed: true, update: { state: 'ROUTING', routing: ratio } });
  }
  // The artifact names its active update; the same ratio again changes nothing.
  t.regex(await cli.ok(['update', 'routing', GREETER, '-r', '1:1']), new RegExp(`^update ${id}: nothing to routing \\(routing is already 1:1\\); now ROUTING, routing 1:1 \\(50% new\\)\\n$`));

  const early = await cli.run(['update', 'complete', id]);
  t.is(early.code, 1);
  t.is(early.stderr, `cutover: update ${id} is ROUTING at 1:1; complete needs routing 1:0 — run \`cutover update routing ${id} -r 1:0\` first\n`);
  const promote = await cli.run(['update', 'promote', id]);
  t.is(promote.code, 1);
  t.regex(promote.stderr, /^cutover: update \S+ is ROUTING at 1:1; a MANUAL update has no plan to promote — shift traffic with `cutover update routing \S+ -r 1:0`, then `cutover update complete \S+`\n$/);
  const approve = await cli.run(['update', 'approve', id]);
  t.is(approve.code, 1);
  t.regex(approve.stderr, /^cutover: update \S+ is ROUTING at 1:1; .* — approve is for STAGED updates and --manual-approval/);
  const cancel = await cli.run(['update', 'cancel', id]);
  t.is(cancel.code, 1);
  t.regex(cancel.stderr, /cannot cancel it now — it has deployed already; roll it back with `cutover update rollback \S+`\n$/);
  const badRatio = await cli.run(['update', 'routing', id, '-r', '1/2']);
  t.is(badRatio.code, 2, 'a malformed ratio is a usage error');
  t.regex(badRatio.stderr, /ratio must be new:old/);

  // Health and status while it runs: JSON and YAML parsed back, the tables.
  const health = await cli.json<{ update_id: string; new_version: { version: string }; old_version: { version: string }; verdict: string }>(['update', 'health', id]);
  t.like(health, { update_id: id, new_version: { version: '2.0.0' }, old_version: { version: '1.0.0' } });
  t.regex(await cli.ok(['update', 'health', id]), /^ROLE\s+VERSION\s+CALLS\s+ERRORS\s+ERROR RATE\s+AVG MS\s+P99 MS\nnew\s+2\.0\.0\s+\d+.*\nold\s+1\.0\.0.*\nthresholds: error rate ≤ 1%, p99 ≤ 500 ms; breaches 0\/3, auto-rollback on\nverdict: /);
  const yaml = parseYaml(await cli.ok(['update', 'status', id, '-o', 'yaml'])) as { update: Update };
  t.is(yaml.update.routing, '1:1');
  const table = await cli.ok(['update', 'status', id]);
  t.regex(table, new RegExp(`^update: {3}${id}\\nartifact: org\\.example:greeter 1\\.0\\.0 → 2\\.0\\.0 \\(MANUAL, 3 instances\\)\\nstate: {4}ROUTING\\n`));
  t.true(table.includes('traffic:  new ███████████████░░░░░░░░░░░░░░░ old  1:1 (50% new)'), table);
  for (const line of table.split('\n')) t.true(line.length <= 80, `fits: ${line}`);

  t.like(await cli.json<UpdateResponse>(['update', 'routing', id, '-r', '1:0', '--reason', 'all good']), { update: { routing: '1:0' } });
  // Watch from now on: one JSON snapshot per change, ending with COMPLETED after the 3 s grace period.
  const watch = cli.start(['update', 'status', GREETER, '--watch', '--interval', '200ms', '-o', 'json']);
  await sleep(500);
  t.like(await cli.json<UpdateResponse>(['update', 'complete', id]), { changed: true, update: { state: 'COMPLETING' } });
  const watched = await watch.done;
  t.is(watched.code, 0, watched.stderr);
  const snapshots = watched.stdout.trim().split('\n').map((line) => JSON.parse(line) as { update: Update; health: unknown });
  t.is(snapshots.at(-1)!.update.state, 'COMPLETED');
  t.true(snapshots.some((s) => s.update.state === 'COMPLETING'), snapshots.map((s) => s.update.state).join(' '));
  const done = await status(id);
  t.deepEqual(done.transitions.filter((e) => e.step.startsWith('route')).map((e) => e.step), ['route 1:9', 'route 1:3', 'route 1:1', 'route 1:0']);
  t.true(done.transitions.every((e) => e.actor.kind === 'system' || e.actor.name !== ''));
  // Finished: a watch of a finished update prints it once and exits at once.
  const finished = await cli.run(['update', 'status', id, '--watch']);
  t.is(finished.code, 0);
  t.regex(finished.stdout, /^update: {3}\S+\n(.*\n)*state: {4}COMPLETED\n/);
});

test.serial('STAGED with pause, resume, approve and promote; list --all', async (t) => {
  const started = await cli.json<UpdateResponse>(['update', 'start', GREETER, '1.0.0', '--strategy', 'staged', '--steps', '25,50', '--monitoring', '1', '--batch-delay', '0', '--cleanup', 'IMMEDIATE']);
  const id = started.update.id;
  t.is(started.update.strategy, 'STAGED');
  t.like(await cli.json<UpdateResponse>(['update', 'pause', id, '--reason', 'lunch']), { changed: true, update: { paused: true } });
  t.regex(await cli.ok(['update', 'pause', id, '--reason', 'lunch']), /nothing to pause \(already paused for this reason\)/);
  t.regex(await cli.ok(['update', 'list']), new RegExp(`${id}\\s+org\\.example:\\S*\\s+2\\.0\\.0→1\\.0\\.0\\s+\\w+\\*\\s.*\\n\\* paused; `));
  t.like(await cli.json<UpdateResponse>(['update', 'resume', id]), { changed: true, update: { paused: false } });
  await untilState(id, ['DEPLOYED', 'ROUTING']);
  const approved = await cli.json<UpdateResponse>(['update', 'approve', id, '--step', '1']);
  t.true(approved.changed);
  t.regex(approved.detail, /^approve step 1\/3/);
  const routed = await waitFor('step 1 applied', async () => {
    const u = await status(id);
    return u.routing === '1:3' ? u : undefined;
  }, { attempts: 120, intervalMs: 250 });
  t.is(routed.state, 'ROUTING');
  const stale = await cli.run(['update', 'approve', id, '--step', '1']);
  t.is(stale.code, 1);
  t.regex(stale.stderr, /is not the next step/);
  t.like(await cli.json<UpdateResponse>(['update', 'promote', id, '--reason', 'looks fine']), { changed: true });
  const done = await untilState(id, ['COMPLETED', 'ROLLED_BACK', 'FAILED']);
  t.is(done.state, 'COMPLETED');
  const all = await cli.json<{ updates: Update[] }>(['update', 'list', '--all']);
  t.deepEqual(all.updates.map((u) => [u.new_version, u.state]), [['2.0.0', 'COMPLETED'], ['1.0.0', 'COMPLETED']]);
  t.is((await cli.json<{ updates: Update[] }>(['update', 'list'])).updates.length, 0);
  t.is(await cli.ok(['update', 'list']), 'no active rolling updates (`--all` shows finished ones)\n');
});

test.serial('2.1.0-bad under load: the health gate rolls it back on its own; status --watch exits 1 on ROLLED_BACK', async (t) => {
  await untilActive('1.0.0', 3);
  client = await connect({ endpoints: cli.endpoints.split(','), invokeTimeoutMs: 3000 });
  let running = true;
  const calls = { ok: 0, failed: 0 };
  const workers = Array.from({ length: 4 }, async () => {
    while (running) {
      await client!.invoker.invoke(GREETER, 'hello', { name: 'load' }, { timeoutMs: 3000 }).then(() => calls.ok++, () => calls.failed++);
      await sleep(10);
    }
  });
  try {
    const started = await cli.json<UpdateResponse>(['update', 'start', GREETER, '2.1.0-bad', '--strategy', 'CANARY', '--canary-percent', '25', '--batch-delay', '60', '--health-interval', '1', '--min-requests', '5', '--failure-threshold', '2']);
    const id = started.update.id;
    const watch = await cli.run(['update', 'status', id, '--watch', '--interval', '250ms'], { env: { COLUMNS: '80' } });
    t.is(watch.code, 1, watch.stderr);
    t.regex(watch.stdout, /state: {4}ROLLED_BACK\n/);
    t.regex(watch.stdout, /rollback: by the system \d+s ago: automatic rollback after 2\/2 consecutive breach/);
    for (const line of watch.stdout.split('\n')) t.true(line.length <= 80, `fits: ${line}`);
    const done = await status(id);
    t.is(done.state, 'ROLLED_BACK');
    t.is(done.rollback?.initiated_by.kind, 'system');
    t.is(done.routing, '0:1');
  } finally {
    running = false;
    await Promise.all(workers);
  }
  t.true(calls.ok > 0);
});

test.serial('history, stats, rollback-to last-successful and a revision, rollback', async (t) => {
  const history = await cli.json<{ releases: { revision: number; version: string; status: string }[] }>(['update', 'history', GREETER]);
  t.deepEqual(history.releases.map((r) => [r.revision, r.version, r.status]), [[1, '2.0.0', 'COMPLETED'], [2, '1.0.0', 'COMPLETED'], [3, '2.1.0-bad', 'ROLLED_BACK']]);
  t.regex(await cli.ok(['update', 'history', GREETER]), /^REV\s+VERSION\s+FROM\s+STATUS\s+STRATEGY\s+TOOK\s+FINISHED\s+NOTE\n\s+1\s+2\.0\.0\s+1\.0\.0\s+COMPLETED\s+MANUAL\s/);
  t.like(await cli.json(['update', 'stats', GREETER]), { artifact: GREETER, total: 3, successful: 2, failed: 1 });
  t.regex(await cli.ok(['update', 'stats', GREETER]), /^artifact: {5}org\.example:greeter\nupdates: {6}3\nsuccessful: {3}2\n/);

  const missing = await cli.run(['update', 'rollback-to', GREETER, '9']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /revision 9 is not in the history .* — see the revisions with `cutover update history org\.example:greeter`\n$/);
  // Serving 1.0.0: the last COMPLETED revision of another version is 1 (2.0.0, MANUAL).
  const back = await cli.json<UpdateResponse>(['update', 'rollback-to', GREETER, 'last-successful', '--reason', 'back to 2']);
  t.like(back, { update: { new_version: '2.0.0', strategy: 'MANUAL' } });
  await untilState(back.update.id, ['ROUTING']);
  t.like(await cli.json<UpdateResponse>(['update', 'rollback', GREETER, '--reason', 'changed my mind']), { changed: true, update: { state: 'ROLLING_BACK', routing: '0:1' } });
  t.is((await untilState(back.update.id, ['ROLLED_BACK', 'FAILED'])).state, 'ROLLED_BACK');
  t.regex(await cli.ok(['update', 'rollback', back.update.id]), /nothing to rollback \(already ROLLED_BACK\)/);

  const byRevision = await cli.json<UpdateResponse>(['update', 'rollback-to', GREETER, '1']);
  t.like(byRevision, { update: { new_version: '2.0.0' } });
  await cli.json(['update', 'rollback', byRevision.update.id]);
  const unknown = await cli.run(['update', 'status', 'no-such-update']);
  t.is(unknown.code, 1);
  t.is(unknown.stderr, 'cutover: no rolling update no-such-update — list them with `cutover update list --all`\n');
  const none = await cli.run(['update', 'status', 'org.example:nothing']);
  t.is(none.code, 1);
  t.regex(none.stderr, /^cutover: org\.example:nothing has no rolling updates — start one with/);
});
