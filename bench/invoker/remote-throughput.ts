/**
 * Remote invoke throughput against bare grpc-js, in one run: calls/s of C closed-loop callers
 * (each with one call in flight) through
 *
 * - Cutover: a `RemoteInvoker` in this process calling `cutover.peer.v1.Invoke/Call` on an
 *   `echo-server.ts --kind cutover` process (`addInvokeService` with an echo handler);
 * - bare: a plain `grpc.Client` making the same unary call (same method path, same `CallRequest`
 *   with the same JSON payload bytes, a fresh Metadata and the same deadline per call) on an
 *   `echo-server.ts --kind bare` process that answers the payload bytes as they are.
 *
 * Both servers run for the whole measurement in processes of their own on 127.0.0.1; the idle one
 * does nothing. In each round the two sides run back to back (which goes first alternates); the
 * ratio is the median over rounds of Cutover/bare within a round, which drifting load on a shared
 * machine disturbs less than a ratio of medians. Each (side, C) row shows its median round by
 * throughput. CPU per call (this process, and the server process from /proc) is reported too: it is
 * what other load on the machine distorts least, and bare/Cutover CPU per call is the throughput
 * ratio to expect when the calls are CPU bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { invokeService, type WireCallReply, type WireCallRequest } from '../../src/invoker/invoke-proto.ts';
import { RemoteInvoker, type RemoteCallRequest } from '../../src/invoker/remote.ts';
import { monotonicClock, processCpuMs } from '../../src/platform/clock.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { sleep } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { processCpuMsOf } from '../kv/processes.ts';
import { median, percentile } from './stats.ts';

const ECHO_SERVER = fileURLToPath(new URL('./echo-server.ts', import.meta.url));
const CALL_TIMEOUT_MS = 5000;

export type Side = 'cutover' | 'bare';

export interface RemoteOptions {
  readonly concurrency: readonly number[];
  readonly rounds: number;
  readonly warmupSeconds: number;
  readonly measureSeconds: number;
  readonly payloadBytes: number;
}

/** One (side, concurrency) row: its median round, with the range over the rounds. */
export interface RemoteRow {
  readonly side: Side;
  readonly concurrency: number;
  readonly callsPerSecond: number;
  readonly callsPerSecondMin: number;
  readonly callsPerSecondMax: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly clientCpuUsPerCall: number;
  readonly serverCpuUsPerCall: number;
}

/** Cutover against bare at one concurrency. */
export interface RemoteRatio {
  readonly concurrency: number;
  /** Cutover calls/s over bare calls/s, per round (the two sides of a round run back to back). */
  readonly paired: readonly number[];
  /** Their median: the target's figure. */
  readonly pairedMedian: number;
  /** Bare's CPU per call (client + server) over Cutover's: the throughput ratio if CPU bound. */
  readonly cpuRatio: number;
}

export interface RemoteResult {
  readonly rows: readonly RemoteRow[];
  readonly ratios: readonly RemoteRatio[];
}

interface RoundResult {
  readonly calls: number;
  readonly callsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly clientCpuUsPerCall: number;
  readonly serverCpuUsPerCall: number;
}

/** A child echo server and the address it listens on. */
interface EchoServer {
  readonly child: ChildProcess;
  readonly address: string;
}

async function startEchoServer(kind: Side): Promise<EchoServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', ECHO_SERVER, '--kind', kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`echo-server --kind ${kind} exited (code ${code}) before it listened`))));
  const listening = (async (): Promise<number> => {
    for await (const line of lines) {
      const parsed = JSON.parse(line) as { port?: unknown };
      if (typeof parsed.port === 'number') return parsed.port;
    }
    throw new Error(`echo-server --kind ${kind} closed its output before it listened`);
  })();
  const port = await Promise.race([listening, exited]);
  exited.catch(() => {});
  return { child, address: `127.0.0.1:${port}` };
}

async function stopEchoServer(server: EchoServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  server.child.stdin?.end();
  const cancel = realClock.schedule(5000, () => server.child.kill('SIGKILL'));
  await exited;
  cancel();
}

/** Runs `callers` closed-loop callers of `call` for warm-up plus measurement; see the module comment. */
async function closedLoop(call: () => Promise<unknown>, callers: number, options: RemoteOptions, serverPid: number): Promise<RoundResult> {
  let measuring = false;
  let stopping = false;
  let errors = 0;
  const latenciesMs: number[] = [];
  const worker = async (): Promise<void> => {
    while (!stopping) {
      const started = monotonicClock.nowMs();
      try {
        await call();
        if (measuring) latenciesMs.push(monotonicClock.nowMs() - started);
      } catch {
        if (measuring) errors++;
      }
    }
  };
  const workers = Array.from({ length: callers }, () => worker());
  await sleep(options.warmupSeconds * 1000);
  const cpuStart = processCpuMs();
  const serverCpuStart = processCpuMsOf(serverPid);
  const started = monotonicClock.nowMs();
  measuring = true;
  await sleep(options.measureSeconds * 1000);
  measuring = false;
  const seconds = (monotonicClock.nowMs() - started) / 1000;
  const clientCpuMs = processCpuMs() - cpuStart;
  const serverCpuMs = processCpuMsOf(serverPid) - serverCpuStart;
  stopping = true;
  await Promise.all(workers);
  const calls = latenciesMs.length;
  return {
    calls,
    callsPerSecond: calls / seconds,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    errors,
    clientCpuUsPerCall: calls === 0 ? Number.NaN : (clientCpuMs * 1000) / calls,
    serverCpuUsPerCall: calls === 0 ? Number.NaN : (serverCpuMs * 1000) / calls,
  };
}

/** The payload of every call: a JSON object of `bytes` bytes. */
export function payloadOf(bytes: number): { name: string } {
  const overhead = JSON.stringify({ name: '' }).length;
  return { name: 'a'.repeat(Math.max(0, bytes - overhead)) };
}

/** Measures every concurrency in `options`; see the module comment. */
export async function measureRemote(options: RemoteOptions, progress: (line: string) => void): Promise<RemoteResult> {
  const servers: Partial<Record<Side, EchoServer>> = {};
  const remote = new RemoteInvoker({ clock: realClock });
  let bare: grpc.Client | undefined;
  try {
    servers.cutover = await startEchoServer('cutover');
    servers.bare = await startEchoServer('bare');
    bare = new grpc.Client(servers.bare.address, grpc.credentials.createInsecure());
    const payload = payloadOf(options.payloadBytes);
    const request: RemoteCallRequest = { base: 'org.example:greeter', version: '1.0.0', instanceId: 'i-1', method: 'hello', payload };
    const wire: WireCallRequest = { artifact: request.base, version: request.version, instance_id: request.instanceId, method: request.method, payload: Buffer.from(JSON.stringify(payload), 'utf8') };
    const bareClient = bare;
    const calls: Record<Side, () => Promise<unknown>> = {
      cutover: () => remote.call(servers.cutover!.address, request, CALL_TIMEOUT_MS),
      bare: () =>
        new Promise<WireCallReply>((resolve, reject) => {
          bareClient.makeUnaryRequest(invokeService.Call.path, invokeService.Call.requestSerialize, invokeService.Call.responseDeserialize, wire, new grpc.Metadata(), { deadline: deadlineIn(CALL_TIMEOUT_MS) }, (error, reply) => (error !== null ? reject(error) : resolve(reply!)));
        }),
    };
    // Both echo what they are sent.
    const echoed = await calls.cutover();
    if (JSON.stringify(echoed) !== JSON.stringify(payload)) throw new Error(`remote bench: the Cutover echo answered ${JSON.stringify(echoed).slice(0, 80)}`);
    const bareReply = (await calls.bare()) as WireCallReply;
    if (Buffer.compare(Buffer.from(bareReply.payload), wire.payload) !== 0) throw new Error('remote bench: the bare echo answered other bytes');

    const rows: RemoteRow[] = [];
    const ratios: RemoteRatio[] = [];
    for (const concurrency of options.concurrency) {
      const results: Record<Side, RoundResult[]> = { cutover: [], bare: [] };
      for (let round = 0; round < options.rounds; round++) {
        const order: Side[] = round % 2 === 0 ? ['bare', 'cutover'] : ['cutover', 'bare'];
        for (const side of order) {
          const result = await closedLoop(calls[side], concurrency, options, servers[side]!.child.pid!);
          results[side].push(result);
          progress(`remote: C=${concurrency} round ${round + 1}/${options.rounds} ${side}: ${Math.round(result.callsPerSecond)} calls/s, p50 ${result.p50Ms.toFixed(2)} ms, ${result.errors} errors`);
        }
      }
      const paired = results.cutover.map((r, i) => r.callsPerSecond / results.bare[i]!.callsPerSecond);
      const cpuPerCall = (side: Side): number => median(results[side].map((r) => r.clientCpuUsPerCall + r.serverCpuUsPerCall));
      ratios.push({ concurrency, paired, pairedMedian: median(paired), cpuRatio: cpuPerCall('bare') / cpuPerCall('cutover') });
      for (const side of ['cutover', 'bare'] as const) {
        const rounds = results[side];
        const medianRate = median(rounds.map((r) => r.callsPerSecond));
        // The round closest to the median (for an even count, the lower middle one).
        const chosen = [...rounds].sort((a, b) => Math.abs(a.callsPerSecond - medianRate) - Math.abs(b.callsPerSecond - medianRate))[0]!;
        rows.push({
          side,
          concurrency,
          callsPerSecond: chosen.callsPerSecond,
          callsPerSecondMin: Math.min(...rounds.map((r) => r.callsPerSecond)),
          callsPerSecondMax: Math.max(...rounds.map((r) => r.callsPerSecond)),
          p50Ms: chosen.p50Ms,
          p99Ms: chosen.p99Ms,
          errors: rounds.reduce((sum, r) => sum + r.errors, 0),
          clientCpuUsPerCall: median(rounds.map((r) => r.clientCpuUsPerCall)),
          serverCpuUsPerCall: median(rounds.map((r) => r.serverCpuUsPerCall)),
        });
      }
    }
    return { rows, ratios };
  } finally {
    remote.close();
    bare?.close();
    await Promise.all(Object.values(servers).map((server) => stopEchoServer(server)));
  }
}
