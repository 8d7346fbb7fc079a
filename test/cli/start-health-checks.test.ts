/** `cutover update start --health-checks <file|json>`: what reaches StartUpdateRequest.health_checks_json. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { UsageError } from '../../src/cli/cli-errors.ts';
import { startRequest } from '../../src/cli/commands/update-commands.ts';

const CHECKS = { checks: [{ type: 'http', path: '/healthz' }], policy: { intervalSeconds: 2 } };

test('inline JSON and a file give the same request field; none gives ""', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cutover-checks-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'checks.json');
  await writeFile(file, JSON.stringify(CHECKS, null, 2));
  const inline = startRequest('org.example:greeter', '2.0.0', { healthChecks: JSON.stringify(CHECKS) }).health_checks_json;
  t.deepEqual(JSON.parse(String(inline)), CHECKS);
  t.is(startRequest('org.example:greeter', '2.0.0', { healthChecks: file }).health_checks_json, inline);
  t.is(startRequest('org.example:greeter', '2.0.0', {}).health_checks_json, '');
});

test('bad JSON and a missing file are usage errors that say what to give', (t) => {
  const bad = t.throws(() => startRequest('org.example:greeter', '2.0.0', { healthChecks: '{"checks": [' }));
  t.true(bad instanceof UsageError);
  t.regex(bad!.message, /--health-checks is not valid JSON/);
  const missing = t.throws(() => startRequest('org.example:greeter', '2.0.0', { healthChecks: '/nonexistent/checks.json' }));
  t.true(missing instanceof UsageError);
  t.regex(missing!.message, /--health-checks: cannot read \/nonexistent\/checks.json/);
});
