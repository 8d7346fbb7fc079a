/**
 * One CLI command's connection to the cluster: a channel per endpoint, the schema learned by
 * reflection (or the reflection cache), and the failover rules every call follows.
 *
 * - The first endpoint that connects and answers reflection becomes the current one; endpoints
 *   that refuse are tried in turn, in rounds with bounded back-off. If none answers: exit 3.
 * - NOT_LEADER with the leader's address moves the call there at once (a bounded number of hops);
 *   without an address (an election is on) the call waits and tries the next endpoint.
 * - UNAVAILABLE moves an idempotent call to the next endpoint, after a back-off. A call that may
 *   have reached a node is not repeated unless it is idempotent: a channel is connected before a
 *   call is sent on it, so a refused connection is known not to have sent anything.
 * - Everything, retries included, ends by the command's --timeout; one endpoint gets at most 3 s to
 *   connect and answer reflection before the next is tried.
 */
import * as grpc from '@grpc/grpc-js';
import { monotonicClock } from '../../platform/clock.ts';
import { sleep } from '../../platform/wait.ts';
import { epochMs } from '../../platform/wall-clock.ts';
import { fromServiceError } from '../../transport/grpc-errors.ts';
import { CutoverError, NotLeaderError } from '../../util/errors.ts';
import { UnreachableError } from '../cli-errors.ts';
import { fileHash, readCachedSchema, writeCachedSchema } from './descriptor-cache.ts';
import { ReflectionClient, ReflectionUnavailableError } from './reflection.ts';
import { ApiSchema, decodeMessage, encodeMessage, missingDependencies, type MessageObject, type MethodSchema } from './schema.ts';

/** How a session connects. */
export interface SessionOptions {
  /** host:port of nodes, tried in this order. */
  readonly endpoints: readonly string[];
  /** Bound on the whole command's calls, retries included. */
  readonly timeoutMs: number;
  /** The reflection cache directory, or undefined for none. */
  readonly cacheDirectory: string | undefined;
  /** Called with a line per connection decision (--debug). */
  readonly trace?: (line: string) => void;
  /** Who runs the command: sent as `x-cutover-actor` on every call (the audit trail's actor). */
  readonly actor?: string;
}

/** Options of one call. */
export interface CallOptions {
  /** Safe to repeat on another node after UNAVAILABLE (reads; writes that set a value). */
  readonly idempotent: boolean;
}

/** The metadata key the nodes read the operator from (src/api/request-actor.ts). */
const ACTOR_METADATA = 'x-cutover-actor';
const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 1000;
/**
 * Longest wait for one endpoint to connect and answer reflection, within the command's budget: a
 * stopped or wedged node (the kernel still accepts its connections) must not use up --timeout
 * before the next endpoint is tried.
 */
const ENDPOINT_WAIT_MS_MAX = 3000;
/** Rounds over every endpoint before the cluster counts as unreachable. */
const CONNECT_ROUNDS_MAX = 4;
/** Leader redirects followed by one call. */
const LEADER_HOPS_MAX = 5;
/** UNAVAILABLE or no-leader answers retried by one call. */
const CALL_RETRIES_MAX = 8;
/** Largest message sent or received (an artifact chunk is far smaller). */
const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;
/** Rounds of asking for imported files that reflection did not send. */
const DEPENDENCY_ROUNDS_MAX = 8;

function backoffMs(failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, failures - 1));
}

/** A gRPC failure as a CutoverError: our code from the trailers, else one named after the status. */
export function toCutoverError(error: unknown, endpoint: string): CutoverError {
  if (error instanceof CutoverError) return error;
  const service = error as grpc.ServiceError;
  if (typeof service?.code !== 'number') return new CutoverError('RPC_FAILED', error instanceof Error ? error.message : String(error), { cause: error });
  const converted = fromServiceError(service);
  if (converted.code !== 'RPC_FAILED') return converted;
  const name = grpc.status[service.code] ?? 'RPC_FAILED';
  return new CutoverError(name, `${endpoint}: ${service.details || service.message}`, { cause: error });
}

function isUnavailable(error: unknown): boolean {
  return (error as grpc.ServiceError | undefined)?.code === grpc.status.UNAVAILABLE;
}

/**
 * Resolves once `client`'s channel is READY; rejects with UNAVAILABLE when the connection
 * attempt fails (nothing was sent) or the deadline passes first.
 */
function connectChannel(client: grpc.Client, endpoint: string, deadline: number): Promise<void> {
  const channel = client.getChannel();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.SHUTDOWN) {
        return reject(new CutoverError('UNAVAILABLE', `${endpoint}: connection refused or failed`));
      }
      channel.watchConnectivityState(state, deadline, (error) => (error ? reject(new CutoverError('UNAVAILABLE', `${endpoint}: no connection before the deadline`)) : check()));
    };
    check();
  });
}

/** See the module comment. */
export class Session {
  private readonly endpoints: string[];
  private current = 0;
  private readonly clients = new Map<string, grpc.Client>();
  private schemaValue: ApiSchema | undefined;
  private readonly startedMs = monotonicClock.nowMs();

  constructor(private readonly options: SessionOptions) {
    this.endpoints = [...options.endpoints];
  }

  /** The endpoint calls go to now. */
  get endpoint(): string {
    return this.endpoints[this.current]!;
  }

  /**
   * The schema, learned from the first endpoint that answers (from the cache when the endpoint
   * confirms it). `service`, when given, must be in the schema; a cached schema without it is
   * refreshed. Throws UnreachableError when no endpoint answers.
   */
  async schema(service?: string): Promise<ApiSchema> {
    if (this.schemaValue !== undefined && (service === undefined || this.schemaValue.services.some((s) => s === service || s.endsWith(`.${service}`)))) return this.schemaValue;
    let lastError = 'no endpoint given';
    for (let round = 1; round <= CONNECT_ROUNDS_MAX; round++) {
      for (let tried = 0; tried < this.endpoints.length; tried++) {
        const endpoint = this.endpoint;
        try {
          const client = this.client(endpoint);
          const deadline = Math.min(this.deadline(), epochMs() + ENDPOINT_WAIT_MS_MAX);
          await connectChannel(client, endpoint, deadline);
          this.schemaValue = await this.learn(client, endpoint, service, deadline);
          this.trace(`using ${endpoint}`);
          return this.schemaValue;
        } catch (error) {
          const unanswered = error instanceof CutoverError ? error.code === 'UNAVAILABLE' : isUnavailable(error) || (error as grpc.ServiceError).code === grpc.status.DEADLINE_EXCEEDED;
          if (error instanceof ReflectionUnavailableError || !unanswered) throw toCutoverError(error, endpoint);
          lastError = error instanceof Error ? error.message : String(error);
          this.trace(`${endpoint} unreachable: ${lastError}`);
          this.current = (this.current + 1) % this.endpoints.length;
        }
      }
      if (round === CONNECT_ROUNDS_MAX || !(await this.pause(backoffMs(round), this.startedMs))) break;
    }
    throw new UnreachableError(this.endpoints, lastError);
  }

  /** A unary call with the failover rules of the module comment. */
  async unary(reference: string, request: MessageObject, options: CallOptions): Promise<MessageObject> {
    return this.withFailover(reference, options, (client, method, endpoint, deadline) => this.unaryOn(client, method, endpoint, request, deadline));
  }

  /** A unary call to one endpoint, no failover: for fan-out reads such as every member's status. */
  async unaryAt(endpoint: string, reference: string, request: MessageObject, timeoutMs: number): Promise<MessageObject> {
    const method = (await this.schema(serviceOf(reference))).method(reference);
    const client = this.client(endpoint);
    const deadline = Math.min(this.deadline(), epochMs() + timeoutMs);
    await connectChannel(client, endpoint, deadline);
    return this.unaryOn(client, method, endpoint, request, deadline);
  }

  /** A client-streaming call: sends `messages` in order, then half-closes. */
  async clientStream(reference: string, messages: readonly MessageObject[], options: CallOptions): Promise<MessageObject> {
    return this.withFailover(reference, options, (client, method, endpoint, deadline) =>
      new Promise((resolve, reject) => {
        const stream = client.makeClientStreamRequest(method.path, (m: MessageObject) => encodeMessage(method.request, m), (b: Buffer) => decodeMessage(method.response, b), this.metadata(), { deadline }, (error, response) =>
          error !== null || response === undefined ? reject(error ?? new CutoverError('RPC_FAILED', `${endpoint}: empty reply`)) : resolve(response),
        );
        for (const message of messages) stream.write(message);
        stream.end();
      }),
    );
  }

  /**
   * A server-streaming call without a deadline: `onMessage` sees each message until the server
   * ends the stream or `onMessage` returns false. `request()` is called for every attempt, so a
   * stream resumed on another node can start where the last one stopped. A message renews the
   * retry budget: a watch that ran for hours still fails over within --timeout of losing its node.
   */
  async serverStream(reference: string, request: () => MessageObject, onMessage: (message: MessageObject) => boolean, options: CallOptions): Promise<void> {
    return this.withFailover(
      reference,
      options,
      (client, method, _endpoint, _deadline, progress) =>
        new Promise<void>((resolve, reject) => {
          const stream = client.makeServerStreamRequest(method.path, (m: MessageObject) => encodeMessage(method.request, m), (b: Buffer) => decodeMessage(method.response, b), request(), this.metadata(), {});
          let stopped = false;
          stream.on('data', (message: MessageObject) => {
            progress();
            if (stopped || onMessage(message)) return;
            stopped = true;
            stream.cancel();
            resolve();
          });
          stream.on('error', (error: grpc.ServiceError) => (stopped ? resolve() : reject(error)));
          stream.on('end', () => resolve());
        }),
      { renewable: true },
    );
  }

  /** A bidirectional call: sends `messages`, half-closes, and hands each answer to `onMessage`. */
  async bidiStream(reference: string, messages: readonly MessageObject[], onMessage: (message: MessageObject) => void, options: CallOptions): Promise<void> {
    return this.withFailover(reference, options, (client, method, _endpoint, deadline) =>
      new Promise<void>((resolve, reject) => {
        const stream = client.makeBidiStreamRequest(method.path, (m: MessageObject) => encodeMessage(method.request, m), (b: Buffer) => decodeMessage(method.response, b), this.metadata(), { deadline });
        stream.on('data', (message: MessageObject) => onMessage(message));
        stream.on('error', reject);
        stream.on('end', () => resolve());
        for (const message of messages) stream.write(message);
        stream.end();
      }),
    );
  }

  /** Closes every channel. */
  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /** Milliseconds left of the command's --timeout. */
  remainingMs(): number {
    return this.remainingFromMs(this.startedMs);
  }

  /** Milliseconds left of a --timeout budget that started at `startMs` (monotonic). */
  private remainingFromMs(startMs: number): number {
    return this.options.timeoutMs - (monotonicClock.nowMs() - startMs);
  }

  /** The command's deadline as grpc-js wants it (epoch milliseconds). */
  private deadline(startMs = this.startedMs): number {
    return epochMs() + this.remainingFromMs(startMs);
  }

  /**
   * Runs `attempt` with the failover rules of the module comment, within the command's --timeout,
   * or (`renewable`) within --timeout of the last `progress()` the attempt reported.
   */
  private async withFailover<T>(
    reference: string,
    options: CallOptions,
    attempt: (client: grpc.Client, method: MethodSchema, endpoint: string, deadline: number, progress: () => void) => Promise<T>,
    { renewable }: { renewable: boolean } = { renewable: false },
  ): Promise<T> {
    const method = (await this.schema(serviceOf(reference))).method(reference);
    let budgetStartMs = renewable ? monotonicClock.nowMs() : this.startedMs;
    let hops = 0;
    let failures = 0;
    const progress = (): void => {
      if (!renewable) return;
      budgetStartMs = monotonicClock.nowMs();
      hops = 0;
      failures = 0;
    };
    for (;;) {
      const endpoint = this.endpoint;
      const client = this.client(endpoint);
      let sent = false;
      try {
        const deadline = this.deadline(budgetStartMs);
        await connectChannel(client, endpoint, Math.min(deadline, epochMs() + ENDPOINT_WAIT_MS_MAX));
        sent = true;
        return await attempt(client, method, endpoint, deadline, progress);
      } catch (raw) {
        const error = toCutoverError(raw, endpoint);
        if (error instanceof NotLeaderError && error.leaderAddress !== undefined && error.leaderAddress !== endpoint && hops < LEADER_HOPS_MAX) {
          hops++;
          this.trace(`${endpoint} is not the leader; following to ${error.leaderAddress}`);
          this.moveTo(error.leaderAddress);
          continue;
        }
        // Not sent, refused before the log, or no leader yet: safe to repeat; else only if idempotent.
        const retryable = !sent || error instanceof NotLeaderError || error.code === 'PROPOSAL_DROPPED' || (options.idempotent && (error.code === 'UNAVAILABLE' || error.code === 'NODE_STOPPED'));
        failures++;
        if (!retryable || failures > CALL_RETRIES_MAX || !(await this.pause(backoffMs(failures), budgetStartMs))) throw this.finalError(error, sent);
        this.trace(`${endpoint}: ${error.message}; trying ${this.endpoints[(this.current + 1) % this.endpoints.length]}`);
        this.current = (this.current + 1) % this.endpoints.length;
      }
    }
  }

  /** The error a call ends with: a connection that never came up anywhere is "unreachable". */
  private finalError(error: CutoverError, sent: boolean): CutoverError {
    if (!sent && error.code === 'UNAVAILABLE') return new UnreachableError(this.endpoints, error.message);
    if (error.code === 'UNAVAILABLE' && sent) return new CutoverError('OUTCOME_UNKNOWN', `${error.message} — the node went away during the call`);
    return error;
  }

  /** Sleeps `ms` unless that would pass the budget that started at `startMs`; false when no time is left. */
  private async pause(ms: number, startMs: number): Promise<boolean> {
    if (this.remainingFromMs(startMs) <= ms) return false;
    await sleep(ms);
    return true;
  }

  private moveTo(address: string): void {
    let index = this.endpoints.indexOf(address);
    if (index < 0) index = this.endpoints.push(address) - 1;
    this.current = index;
  }

  private unaryOn(client: grpc.Client, method: MethodSchema, endpoint: string, request: MessageObject, deadline: number): Promise<MessageObject> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(method.path, (m: MessageObject) => encodeMessage(method.request, m), (b: Buffer) => decodeMessage(method.response, b), request, this.metadata(), { deadline }, (error, response) =>
        error !== null || response === undefined ? reject(error ?? new CutoverError('RPC_FAILED', `${endpoint}: empty reply`)) : resolve(response),
      );
    });
  }

  /** The cached schema if the endpoint confirms it, else a full discovery (then cached). */
  private async learn(client: grpc.Client, endpoint: string, service: string | undefined, deadline: number): Promise<ApiSchema> {
    const reflection = new ReflectionClient(client, endpoint);
    const directory = this.options.cacheDirectory;
    const cached = directory === undefined ? undefined : readCachedSchema(directory, endpoint);
    const wanted = service === undefined ? undefined : cached?.services.find((s) => s === service || s.endsWith(`.${service}`));
    if (cached !== undefined && wanted !== undefined) {
      const [files] = await reflection.files([{ file_containing_symbol: wanted }], deadline);
      const known = new Set(cached.fileHashes);
      if (Array.isArray(files) && files.length > 0 && files.every((f) => known.has(fileHash(f)))) {
        this.trace(`${endpoint}: reflection cache confirmed for ${wanted}`);
        return ApiSchema.fromJSON(cached.root, cached.services);
      }
      this.trace(`${endpoint}: reflection cache is stale; discovering again`);
    }
    const schema = await this.discover(reflection, deadline);
    if (directory !== undefined) writeCachedSchema(directory, { endpoint, fileHashes: schema.fileHashes, services: schema.schema.services, root: schema.schema.toJSON() });
    return schema.schema;
  }

  private async discover(reflection: ReflectionClient, deadline: number): Promise<{ schema: ApiSchema; fileHashes: string[] }> {
    const services = await reflection.listServices(deadline);
    const files = new Map<string, Uint8Array>();
    const add = (answers: (readonly Uint8Array[] | string)[]): void => {
      for (const answer of answers) if (typeof answer !== 'string') for (const f of answer) files.set(fileHash(f), f);
    };
    add(await reflection.files(services.map((s) => ({ file_containing_symbol: s })), deadline));
    for (let round = 0; round < DEPENDENCY_ROUNDS_MAX; round++) {
      const missing = await missingDependencies([...files.values()]);
      if (missing.length === 0) break;
      add(await reflection.files(missing.map((name) => ({ file_by_filename: name })), deadline));
    }
    return { schema: await ApiSchema.fromFileDescriptors([...files.values()], services), fileHashes: [...files.keys()] };
  }

  /** The metadata of every call: the actor, when known. */
  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    // Metadata values are printable ASCII; an exotic user name is left out (the node says anonymous).
    const actor = this.options.actor;
    if (actor !== undefined && /^[\x20-\x7e]{1,128}$/.test(actor)) metadata.set(ACTOR_METADATA, actor);
    return metadata;
  }

  private client(endpoint: string): grpc.Client {
    let client = this.clients.get(endpoint);
    if (client === undefined) {
      client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
        'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
        'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
        // Failover is ours (module comment); grpc-js must not retry or wait for us.
        'grpc.enable_retries': 0,
        'grpc.service_config_disable_resolution': 1,
        'grpc.initial_reconnect_backoff_ms': BACKOFF_INITIAL_MS,
        'grpc.max_reconnect_backoff_ms': BACKOFF_MAX_MS,
      });
      this.clients.set(endpoint, client);
    }
    return client;
  }

  private trace(line: string): void {
    this.options.trace?.(`[${(monotonicClock.nowMs() - this.startedMs).toFixed(0)} ms] ${line}`);
  }
}

/** The service part of `service/Method` (or `service.Method`). */
export function serviceOf(reference: string): string {
  const slash = reference.lastIndexOf('/');
  return slash >= 0 ? reference.slice(0, slash) : reference.slice(0, reference.lastIndexOf('.'));
}
