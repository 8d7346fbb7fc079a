/**
 * The server side of the remote-invoke benchmark, a process of its own so that server and client
 * do not share an event loop. `--kind` picks what it serves on 127.0.0.1 (a free port):
 *
 * - `cutover`: `cutover.peer.v1.Invoke` through `addInvokeService` (request checks, JSON payload
 *   decoding and encoding, deadline handling, error mapping: all of the product's server path),
 *   with an `InvokeHandler` whose `invokeLocal` echoes the decoded payload.
 * - `bare`: the same method path and messages (`CallRequest` → `CallReply`, serialised by the
 *   same proto-loader definition) with a handler that answers the request's payload bytes as
 *   they are: what grpc-js costs by itself.
 *
 * Both use the same server options. It prints one JSON line `{"port":N}` once it listens, and
 * exits when stdin closes (so it never outlives the benchmark) or on SIGTERM.
 *
 * Usage: tsx bench/invoker/echo-server.ts --kind cutover|bare
 */
import * as grpc from '@grpc/grpc-js';
import { addInvokeService } from '../../src/api/invoke-service.ts';
import { invokeService, type WireCallReply, type WireCallRequest } from '../../src/invoker/invoke-proto.ts';

/** The node's server options (src/cli/node-command.ts), for both kinds. */
export const ECHO_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_send_message_length': 16 * 1024 * 1024,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5000,
};

function kindOf(argv: readonly string[]): 'cutover' | 'bare' {
  const at = argv.indexOf('--kind');
  const kind = at >= 0 ? argv[at + 1] : undefined;
  if (kind !== 'cutover' && kind !== 'bare') throw new Error(`echo-server: --kind must be cutover or bare, got ${String(kind)}`);
  return kind;
}

async function main(): Promise<void> {
  const kind = kindOf(process.argv.slice(2));
  const server = new grpc.Server(ECHO_SERVER_OPTIONS);
  if (kind === 'cutover') {
    addInvokeService(server, {
      invokeLocal: (request) => Promise.resolve(request.payload),
      ingestMetrics: () => {},
    });
  } else {
    server.addService(invokeService, {
      Call: (call: grpc.ServerUnaryCall<WireCallRequest, WireCallReply>, callback: grpc.sendUnaryData<WireCallReply>) => callback(null, { payload: call.request.payload }),
      PushMetrics: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<object>) => callback(null, {}),
    });
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  console.log(JSON.stringify({ port }));
}

main().catch((error: unknown) => {
  console.error(`echo-server: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
