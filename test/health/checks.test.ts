// Tests of src/health/checks.ts against real local targets: an HTTP server and a TCP listener on
// 127.0.0.1 (ephemeral ports), scripts run by node, and instance hooks. Real timers with small
// timeouts; time is only ever bounded from above, generously.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BODY_READ_MAX, CHECK_ATTEMPTS_MAX, TRANSIENT_BACKOFF_MS, isHealthy, runCheck, runRound, type CheckDeps } from '../../src/health/checks.ts';
import { parseHealthSpec } from '../../src/health/spec.ts';
import type { CheckSpec, CheckTarget, HealthSpec } from '../../src/health/types.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { freePort, sleep, waitFor } from '../../src/platform/wait.ts';
import { epochMs } from '../../src/platform/wall-clock.ts';
import type { Clock } from '../../src/util/clock.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

const deps: CheckDeps = { clock: realClock, wallClockMs: epochMs };
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
/** Generous: a 200 ms timeout on a loaded 2-core machine still ends far below this. */
const BOUND_MS = 5000;

/** One check from its JSON form, through the real parser. */
function check(json: Record<string, unknown>): CheckSpec {
  return parseHealthSpec({ checks: [json] }).checks[0]!;
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = monotonicClock.nowMs();
  const value = await run();
  return { value, ms: monotonicClock.nowMs() - start };
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** An HTTP server on 127.0.0.1 answering with `handler`; records the requests it saw. */
async function httpServer(handler: (res: ServerResponse, seen: Seen) => void | Promise<void>): Promise<{ port: number; seen: Seen[]; server: HttpServer; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = createHttpServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    seen.push(entry);
    void handler(res, entry);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { port, seen, server, close };
}

function answer(status: number, body = ''): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };
}

async function tcpListener(port = 0): Promise<{ port: number; server: TcpServer; close: () => Promise<void> }> {
  const server = createTcpServer((socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as { port: number }).port;
  return { port: bound, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

// ---- http

test('http: an expected status passes, with the status and time in the detail', async (t) => {
  const srv = await httpServer(answer(200, 'ok'));
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', port: srv.port, path: '/healthz', name: 'ready' }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(result.check, 'ready');
  t.is(result.type, 'http');
  t.is(result.attempts, 1);
  t.regex(result.detail, /^HTTP 200 in \d+ ms$/);
  t.is(srv.seen[0]?.url, '/healthz');
  t.is(srv.seen[0]?.method, 'GET');
});

test('http: a status outside expectedStatus fails at once (an answer is not retried)', async (t) => {
  const srv = await httpServer(answer(500));
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', port: srv.port, expectedStatus: [200, 204] }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'failure');
  t.is(result.attempts, 1);
  t.is(srv.seen.length, 1);
  t.regex(result.detail, /^expected status 200 or 204, got 500 in \d+ ms$/);
  const ok = await runCheck(check({ type: 'http', port: srv.port, expectedStatus: [500] }), {}, deps, { budgetMs: 10_000 });
  t.is(ok.status, 'success');
});

test('http: bodyContains passes on a match and fails on a mismatch', async (t) => {
  const srv = await httpServer((res, seen) => answer(200, seen.url === '/good' ? 'status: ok' : 'status: degraded')(res));
  t.teardown(srv.close);
  t.is((await runCheck(check({ type: 'http', port: srv.port, path: '/good', bodyContains: 'ok' }), {}, deps, { budgetMs: 10_000 })).status, 'success');
  const bad = await runCheck(check({ type: 'http', port: srv.port, path: '/bad', bodyContains: 'ok' }), {}, deps, { budgetMs: 10_000 });
  t.is(bad.status, 'failure');
  t.is(bad.attempts, 1);
  t.is(bad.detail, 'body does not contain "ok"');
  // A wrong status fails on the status, without waiting for a body that never ends.
  const endless = await httpServer((res) => {
    res.writeHead(503);
    res.write('still writing');
  });
  t.teardown(endless.close);
  const { value: status, ms } = await timed(() => runCheck(check({ type: 'http', port: endless.port, bodyContains: 'ok', timeoutSeconds: 10 }), {}, deps, { budgetMs: 10_000 }));
  t.is(status.status, 'failure');
  t.regex(status.detail, /^expected status 200, got 503 in \d+ ms$/);
  t.true(ms < BOUND_MS, `${ms} ms`);
});

test('http: the body is read up to BODY_READ_MAX bytes only', async (t) => {
  // A huge body that never ends: the check reads its first bytes and hangs up.
  const srv = await httpServer((res) => {
    res.writeHead(200);
    res.write(Buffer.alloc(BODY_READ_MAX + 1000, 'x'));
  });
  t.teardown(srv.close);
  const { value: result, ms } = await timed(() => runCheck(check({ type: 'http', port: srv.port, bodyContains: 'ok', timeoutSeconds: 3 }), {}, deps, { budgetMs: 4000 }));
  t.is(result.status, 'failure');
  t.is(result.detail, `body does not contain "ok" (first ${BODY_READ_MAX} bytes read)`);
  t.true(ms < 3000, `${ms} ms`);
});

test('http: an answer slower than maxResponseTimeMs fails with its time', async (t) => {
  const srv = await httpServer(async (res) => {
    await sleep(300);
    answer(200, 'ok')(res);
  });
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', port: srv.port, maxResponseTimeMs: 50 }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'failure');
  t.is(result.attempts, 1);
  t.regex(result.detail, /^HTTP 200 in \d+ ms, over the 50 ms limit$/);
  t.true(result.durationMs >= 50);
});

test('http: a server that never answers is a timeout, retried inside the budget, and the connections are closed', async (t) => {
  const srv = await httpServer(() => {});
  t.teardown(srv.close);
  const { value: result, ms } = await timed(() => runCheck(check({ type: 'http', port: srv.port, timeoutSeconds: 0.2 }), {}, deps, { budgetMs: 5000 }));
  t.is(result.status, 'timeout');
  t.is(result.detail, 'no answer within 200 ms');
  t.is(result.attempts, CHECK_ATTEMPTS_MAX);
  t.true(result.durationMs >= 150 && result.durationMs < BOUND_MS, `${result.durationMs} ms`);
  t.true(ms < 5000 + BOUND_MS, `${ms} ms`);
  // Each attempt connected; under load a request may be cut before the server parsed it.
  t.true(srv.seen.length >= 1 && srv.seen.length <= CHECK_ATTEMPTS_MAX);
  // Every attempt's socket was destroyed by the check, not left to the server.
  await waitFor('the check’s connections to close', () => new Promise<boolean>((resolve) => srv.server.getConnections((_e, count) => resolve(count === 0))), { timeoutMs: BOUND_MS });
  t.pass();
});

test('http: the timeout is cut to the budget, so the check never outlives it', async (t) => {
  const srv = await httpServer(() => {});
  t.teardown(srv.close);
  const { value: result, ms } = await timed(() => runCheck(check({ type: 'http', port: srv.port, timeoutSeconds: 60 }), {}, deps, { budgetMs: 300 }));
  t.is(result.status, 'timeout');
  t.is(result.attempts, 1);
  t.is(result.detail, 'no answer within 300 ms');
  t.true(ms < BOUND_MS, `${ms} ms`);
});

test('http: method and headers are sent as declared', async (t) => {
  const srv = await httpServer(answer(204));
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', port: srv.port, method: 'POST', path: '/probe?x=1', expectedStatus: [204], headers: { 'X-Probe': 'yes please', Authorization: 'Bearer t' } }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(srv.seen[0]?.method, 'POST');
  t.is(srv.seen[0]?.url, '/probe?x=1');
  t.is(srv.seen[0]?.headers['x-probe'], 'yes please');
  t.is(srv.seen[0]?.headers['authorization'], 'Bearer t');
  t.is(srv.seen[0]?.headers['user-agent'], 'cutover-health-check');
});

test('http: the url form names host, port and path', async (t) => {
  const srv = await httpServer(answer(200, 'fine'));
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', url: `http://127.0.0.1:${srv.port}/status?deep=1`, bodyContains: 'fine' }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(srv.seen[0]?.url, '/status?deep=1');
});

test('http: without a port the check uses the instance’s httpPort; with neither it is an error', async (t) => {
  const srv = await httpServer(answer(200));
  t.teardown(srv.close);
  const spec = check({ type: 'http', path: '/ready' });
  const result = await runCheck(spec, { httpPort: srv.port }, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(srv.seen[0]?.url, '/ready');
  const none = await runCheck(spec, {}, deps, { budgetMs: 10_000 });
  t.is(none.status, 'error');
  t.is(none.attempts, 1);
  t.regex(none.detail, /no port/);
});

test('http: a refused connection is retried, then fails naming the refusal', async (t) => {
  const port = await freePort();
  const result = await runCheck(check({ type: 'http', port }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'failure');
  t.is(result.attempts, CHECK_ATTEMPTS_MAX, result.detail);
  t.is(result.detail, `connect ECONNREFUSED 127.0.0.1:${port}`);
});

test('http: a reset before the answer is transient too, and an answer on the retry passes', async (t) => {
  let calls = 0;
  const srv = await httpServer((res) => {
    calls++;
    if (calls === 1) res.socket?.destroy();
    else answer(200)(res);
  });
  t.teardown(srv.close);
  const result = await runCheck(check({ type: 'http', port: srv.port }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(result.attempts, 2);
});

// ---- tcp

test('tcp: a listener passes', async (t) => {
  const listener = await tcpListener();
  t.teardown(listener.close);
  const result = await runCheck(check({ type: 'tcp', port: listener.port, name: 'db' }), {}, deps, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(result.check, 'db');
  t.is(result.attempts, 1);
  t.regex(result.detail, new RegExp(`^connected to 127\\.0\\.0\\.1:${listener.port} in \\d+ ms$`));
});

test('tcp: a closed port fails after its retries', async (t) => {
  const port = await freePort();
  const { value: result, ms } = await timed(() => runCheck(check({ type: 'tcp', port, timeoutSeconds: 1 }), {}, deps, { budgetMs: 10_000 }));
  t.is(result.status, 'failure');
  t.is(result.attempts, CHECK_ATTEMPTS_MAX, result.detail);
  t.is(result.detail, `connect ECONNREFUSED 127.0.0.1:${port}`);
  t.true(ms < BOUND_MS, `${ms} ms`);
});

test('tcp: a blip (refused once, listening on the retry) does not count as a failure', async (t) => {
  const port = await freePort();
  let listener: { close: () => Promise<void> } | undefined;
  t.teardown(async () => listener?.close());
  // The first back-off is scheduled only after the first attempt was refused: start the listener
  // then, and let the back-off run once it listens, so that the retry finds it.
  const clock: Clock = {
    nowMs: () => realClock.nowMs(),
    schedule(delayMs, fn) {
      if (delayMs !== TRANSIENT_BACKOFF_MS[0] || listener !== undefined) return realClock.schedule(delayMs, fn);
      let cancelled = false;
      let cancel = (): void => {};
      listener = { close: async () => {} };
      void tcpListener(port).then((started) => {
        listener = started;
        if (!cancelled) cancel = realClock.schedule(delayMs, fn);
      });
      return () => {
        cancelled = true;
        cancel();
      };
    },
  };
  const result = await runCheck(check({ type: 'tcp', port, timeoutSeconds: 1 }), {}, { clock, wallClockMs: epochMs }, { budgetMs: 10_000 });
  t.is(result.status, 'success');
  t.is(result.attempts, 2);
});

// ---- script

const node = process.execPath;

test('script: exit 0 passes', async (t) => {
  const result = await runCheck(check({ type: 'script', command: node, args: ['check.mjs', 'exit', '0'], timeoutSeconds: 10 }), { cwd: FIXTURES }, deps, { budgetMs: 15_000 });
  t.is(result.status, 'success');
  t.is(result.attempts, 1);
  t.regex(result.detail, /^exit code 0 in \d+ ms$/);
});

test('script: runs in the target’s directory', async (t) => {
  const result = await runCheck(check({ type: 'script', command: node, args: [join(FIXTURES, 'check.mjs'), 'cwd', FIXTURES], timeoutSeconds: 10 }), { cwd: FIXTURES }, deps, { budgetMs: 15_000 });
  t.is(result.status, 'success', result.detail);
});

test('script: exit 1 fails with the stderr tail in the detail, and is not retried', async (t) => {
  const result = await runCheck(check({ type: 'script', command: node, args: ['check.mjs', 'exit', '1', 'database\nunreachable'], timeoutSeconds: 10 }), { cwd: FIXTURES }, deps, { budgetMs: 15_000 });
  t.is(result.status, 'failure');
  t.is(result.attempts, 1);
  t.is(result.detail, 'exit code 1 (expected 0): database unreachable');
});

test('script: expectedExitCode other than 0', async (t) => {
  const spec = (code: string): CheckSpec => check({ type: 'script', command: node, args: ['check.mjs', 'exit', code], timeoutSeconds: 10, expectedExitCode: 3 });
  t.is((await runCheck(spec('3'), { cwd: FIXTURES }, deps, { budgetMs: 15_000 })).status, 'success');
  const zero = await runCheck(spec('0'), { cwd: FIXTURES }, deps, { budgetMs: 15_000 });
  t.is(zero.status, 'failure');
  t.is(zero.detail, 'exit code 0 (expected 3)');
});

test('script: arguments with spaces and shell metacharacters arrive verbatim (no shell)', async (t) => {
  const args = ['a b', '$HOME', '`id`', '$(id)', '; echo hacked', '| cat', '*', "'single'", '"double"', '&&', '>out.txt', '~', ''];
  const result = await runCheck(check({ type: 'script', command: node, args: ['check.mjs', 'argv', JSON.stringify(args), ...args], timeoutSeconds: 10 }), { cwd: FIXTURES }, deps, { budgetMs: 15_000 });
  t.is(result.status, 'success', result.detail);
});

/** Gone: no such process, or a zombie waiting for a reaper (it runs nothing any more). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('script: a script past its timeout is a timeout, and it and its children are killed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'pids.json');
  // 5 s: node must start and write the pids first, even on a loaded machine; the script ignores
  // SIGTERM, so SIGKILL ends it.
  const spec = check({ type: 'script', command: node, args: ['check.mjs', 'hang', pidFile], timeoutSeconds: 5 });
  const { value: result, ms } = await timed(() => runCheck(spec, { cwd: FIXTURES }, deps, { budgetMs: 5000 }));
  t.is(result.status, 'timeout');
  t.is(result.attempts, 1);
  t.is(result.detail, 'no exit within 5000 ms');
  t.true(ms < BOUND_MS + 5000, `${ms} ms`);
  const pids = JSON.parse(readFileSync(pidFile, 'utf8')) as number[];
  t.is(pids.length, 2);
  for (const pid of pids) await waitFor(`process ${pid} to be gone`, () => isGone(pid), { timeoutMs: BOUND_MS });
});

test('script: a script that exits while a child it started holds its output is judged on its exit, and the child is killed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'pids.json');
  const spec = check({ type: 'script', command: node, args: ['check.mjs', 'orphan', pidFile], timeoutSeconds: 30 });
  const { value: result, ms } = await timed(() => runCheck(spec, { cwd: FIXTURES }, deps, { budgetMs: 30_000 }));
  t.is(result.status, 'success', result.detail);
  t.true(ms < 20_000, `${ms} ms`);
  const [pid] = JSON.parse(readFileSync(pidFile, 'utf8')) as number[];
  await waitFor(`process ${pid} to be gone`, () => isGone(pid!), { timeoutMs: BOUND_MS });
  t.pass();
});

test('script: a program that does not exist is an error, not retried', async (t) => {
  const result = await runCheck(check({ type: 'script', command: 'cutover-no-such-program-here' }), { cwd: FIXTURES }, deps, { budgetMs: 5000 });
  t.is(result.status, 'error');
  t.is(result.attempts, 1);
  t.regex(result.detail, /^cannot run "cutover-no-such-program-here": .*ENOENT/);
});

// ---- instance

test('instance: undefined, true and {healthy: true} pass, sync or async', async (t) => {
  const spec = check({ type: 'instance', timeoutSeconds: 1 });
  for (const answerValue of [undefined, true, { healthy: true, extra: 1 }]) {
    t.is((await runCheck(spec, { instance: { health: () => answerValue } }, deps, { budgetMs: 10_000 })).status, 'success');
    t.is((await runCheck(spec, { instance: { health: async () => answerValue } }, deps, { budgetMs: 10_000 })).status, 'success');
  }
  t.true(isHealthy(undefined));
  t.false(isHealthy(false));
  t.false(isHealthy({ healthy: 'yes' }));
});

test('instance: a throw fails with the message; an unhealthy answer fails naming it', async (t) => {
  const spec = check({ type: 'instance' });
  const threw = await runCheck(spec, { instance: { health: () => { throw new Error('cache cold'); } } }, deps, { budgetMs: 10_000 });
  t.is(threw.status, 'failure');
  t.is(threw.attempts, 1);
  t.is(threw.detail, 'health() threw: cache cold');
  const rejected = await runCheck(spec, { instance: { health: () => Promise.reject(new Error('db down')) } }, deps, { budgetMs: 10_000 });
  t.is(rejected.detail, 'health() threw: db down');
  const unhealthy = await runCheck(spec, { instance: { health: () => ({ healthy: false, reason: 'draining' }) } }, deps, { budgetMs: 10_000 });
  t.is(unhealthy.status, 'failure');
  t.is(unhealthy.detail, 'health() answered {"healthy":false,"reason":"draining"}');
  t.is((await runCheck(spec, { instance: { health: () => false } }, deps, { budgetMs: 10_000 })).detail, 'health() answered false');
});

test('instance: no hook is an error', async (t) => {
  const spec = check({ type: 'instance' });
  for (const target of [{}, { instance: {} }] as CheckTarget[]) {
    const result = await runCheck(spec, target, deps, { budgetMs: 10_000 });
    t.is(result.status, 'error');
    t.is(result.detail, 'the instance has no health() hook');
  }
});

test('instance: a hook that hangs is a timeout (real timers)', async (t) => {
  const spec = check({ type: 'instance', timeoutSeconds: 0.1 });
  const { value: result, ms } = await timed(() => runCheck(spec, { instance: { health: () => new Promise(() => {}) } }, deps, { budgetMs: 5000 }));
  t.is(result.status, 'timeout');
  t.is(result.detail, 'health() gave no answer within 100 ms');
  t.is(result.attempts, CHECK_ATTEMPTS_MAX);
  t.true(ms < 5000 + BOUND_MS, `${ms} ms`);
});

test('instance: on an injected clock, a hang takes exactly its timeouts and back-offs', async (t) => {
  const clock = new ManualClock();
  const spec = check({ type: 'instance', timeoutSeconds: 1 });
  let calls = 0;
  const pending = runCheck(spec, { instance: { health: () => { calls++; return new Promise(() => {}); } } }, { clock, wallClockMs: () => 1234 }, { budgetMs: 10_000 });
  await clock.advance(1000);
  t.is(calls, 1);
  await clock.advance(TRANSIENT_BACKOFF_MS[0]!);
  t.is(calls, 2);
  await clock.advance(1000 + TRANSIENT_BACKOFF_MS[1]! + 1000);
  const result = await pending;
  t.deepEqual(result, { check: 'instance-0', type: 'instance', status: 'timeout', at: 1234, durationMs: 1000, attempts: 3, detail: 'health() gave no answer within 1000 ms' });
  t.is(clock.nowMs(), 1000 * 3 + TRANSIENT_BACKOFF_MS[0]! + TRANSIENT_BACKOFF_MS[1]!);
});

test('instance: a hook answering on the retry after a timeout passes (the blip does not count)', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  const pending = runCheck(check({ type: 'instance', timeoutSeconds: 1 }), { instance: { health: () => (++calls === 1 ? new Promise(() => {}) : true) } }, { clock, wallClockMs: () => 0 }, { budgetMs: 5000 });
  await clock.advance(5000);
  const result = await pending;
  t.is(result.status, 'success');
  t.is(result.attempts, 2);
});

// ---- rounds

function instanceSpec(mode: 'ALL' | 'ANY', intervalSeconds = 1): HealthSpec {
  return parseHealthSpec({ mode, checks: [{ type: 'instance', name: 'hook' }, { type: 'script', name: 'never', command: 'cutover-no-such-program-here' }], policy: { intervalSeconds } });
}

test('round: ALL passes only when every check passes; ANY when at least one does', async (t) => {
  const healthy = { instance: { health: () => true } };
  const sick = { instance: { health: () => false } };
  const all = await runRound(instanceSpec('ALL'), healthy, deps);
  t.false(all.pass);
  t.deepEqual(all.results.map((r) => [r.check, r.status]), [['hook', 'success'], ['never', 'error']]);
  t.true((await runRound(instanceSpec('ANY'), healthy, deps)).pass);
  t.false((await runRound(instanceSpec('ANY'), sick, deps)).pass);
  const onlyHook = parseHealthSpec({ mode: 'ALL', checks: [{ type: 'instance', name: 'a' }, { type: 'instance', name: 'b' }] });
  t.true((await runRound(onlyHook, healthy, deps)).pass);
  // Every result of a round carries the round's start.
  const round = await runRound(instanceSpec('ALL'), healthy, { clock: realClock, wallClockMs: () => 42 });
  t.deepEqual(round.results.map((r) => r.at), [42, 42]);
});

test('round: checks run concurrently and the round never outlives its interval', async (t) => {
  const srv = await httpServer(() => {});
  t.teardown(srv.close);
  const listener = await tcpListener();
  t.teardown(listener.close);
  const dir = mkdtempSync(join(tmpdir(), 'cutover-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Each check alone would take far longer than the 1 s interval.
  const spec = parseHealthSpec({
    mode: 'ANY',
    checks: [
      { type: 'http', port: srv.port, timeoutSeconds: 60 },
      { type: 'instance', timeoutSeconds: 60 },
      { type: 'script', command: node, args: [join(FIXTURES, 'check.mjs'), 'hang', join(dir, 'pids.json')], timeoutSeconds: 60 },
      { type: 'tcp', port: listener.port },
    ],
    policy: { intervalSeconds: 1 },
  });
  const { value: round, ms } = await timed(() => runRound(spec, { instance: { health: () => new Promise(() => {}) }, cwd: FIXTURES }, deps));
  t.true(ms < BOUND_MS, `${ms} ms`);
  t.true(round.pass, 'the tcp check passed, so ANY passes');
  t.deepEqual(round.results.map((r) => r.status), ['timeout', 'timeout', 'timeout', 'success']);
  for (const result of round.results.slice(0, 3)) t.is(result.attempts, 1, result.detail);
  t.false((await runRound({ ...spec, mode: 'ALL' }, { instance: { health: () => new Promise(() => {}) }, cwd: FIXTURES }, deps)).pass);
});
