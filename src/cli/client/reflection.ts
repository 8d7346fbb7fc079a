/**
 * A small gRPC server reflection client (grpc.reflection.v1, falling back to v1alpha), over the
 * reflection.proto that @grpc/reflection ships. We use our own instead of
 * `grpc-js-reflection-client`: that package works on Node 20 but pulls in a second protobufjs
 * major, google-protobuf and lodash, whose loading alone (~280 ms measured here) would spend the
 * CLI's whole start-up budget.
 *
 * Each operation is one pipelined exchange: open a ServerReflectionInfo stream, write every
 * request, half-close, and collect the answers (the server answers in request order).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { CutoverError } from '../../util/errors.ts';

const require = createRequire(import.meta.url);

/** The reflection protocol versions we speak, newest first. */
export type ReflectionVersion = 'v1' | 'v1alpha';
const VERSIONS: readonly ReflectionVersion[] = ['v1', 'v1alpha'];

/** One reflection request: exactly one of the members. */
export type ReflectionRequest = { readonly list_services: string } | { readonly file_containing_symbol: string } | { readonly file_by_filename: string };

/** A reflection answer, decoded: the member that is set, as in reflection.proto. */
export interface ReflectionResponse {
  readonly list_services_response?: { readonly service: readonly { readonly name: string }[] } | null;
  readonly file_descriptor_response?: { readonly file_descriptor_proto: readonly Uint8Array[] } | null;
  readonly error_response?: { readonly error_code: number; readonly error_message: string } | null;
}

interface ReflectionTypes {
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
}

let types: ReflectionTypes | undefined;

/**
 * The request and response types, parsed once from @grpc/reflection's v1 reflection.proto. The
 * v1alpha messages are the same messages in another package (v1 is v1alpha renamed), so one pair
 * of types encodes both; only the method path differs.
 */
function reflectionTypes(): ReflectionTypes {
  if (types !== undefined) return types;
  const file = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
  const root = new protobuf.Root().loadSync(file, { keepCase: true });
  types = { request: root.lookupType('grpc.reflection.v1.ServerReflectionRequest'), response: root.lookupType('grpc.reflection.v1.ServerReflectionResponse') };
  return types;
}

function methodPath(version: ReflectionVersion): string {
  return `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`;
}

/** The server serves neither reflection version (code REFLECTION_UNAVAILABLE). */
export class ReflectionUnavailableError extends CutoverError {
  override readonly name = 'ReflectionUnavailableError';
  constructor(endpoint: string) {
    super('REFLECTION_UNAVAILABLE', `${endpoint} does not serve gRPC server reflection (v1 or v1alpha), which the CLI needs to learn the API`);
  }
}

/** See the module comment. One instance per channel; it remembers which version worked. */
export class ReflectionClient {
  private version: ReflectionVersion = 'v1';

  constructor(
    private readonly client: grpc.Client,
    private readonly endpoint: string,
  ) {}

  /** Fully qualified names of the services the server lists. */
  async listServices(deadline: number): Promise<string[]> {
    const [response] = await this.exchange([{ list_services: '*' }], deadline);
    return (response?.list_services_response?.service ?? []).map((s) => s.name);
  }

  /**
   * For each request, the serialized FileDescriptorProtos the server sent (the file that holds the
   * symbol or has the name, usually with its dependencies), or the server's error message.
   */
  async files(requests: readonly ReflectionRequest[], deadline: number): Promise<(readonly Uint8Array[] | string)[]> {
    const responses = await this.exchange(requests, deadline);
    return responses.map((r) => (r.error_response ? r.error_response.error_message || `reflection error ${r.error_response.error_code}` : (r.file_descriptor_response?.file_descriptor_proto ?? [])));
  }

  /** Sends `requests` on one stream and returns the answers in order, trying v1 then v1alpha. */
  private async exchange(requests: readonly ReflectionRequest[], deadline: number): Promise<ReflectionResponse[]> {
    for (;;) {
      try {
        return await this.exchangeOnce(this.version, requests, deadline);
      } catch (error) {
        const unimplemented = (error as grpc.ServiceError).code === grpc.status.UNIMPLEMENTED;
        const next = VERSIONS[VERSIONS.indexOf(this.version) + 1];
        if (!unimplemented) throw error;
        if (next === undefined) throw new ReflectionUnavailableError(this.endpoint);
        this.version = next;
      }
    }
  }

  private exchangeOnce(version: ReflectionVersion, requests: readonly ReflectionRequest[], deadline: number): Promise<ReflectionResponse[]> {
    const { request, response } = reflectionTypes();
    const serialize = (value: ReflectionRequest): Buffer => Buffer.from(request.encode(request.fromObject(value)).finish());
    const deserialize = (bytes: Buffer): ReflectionResponse => response.toObject(response.decode(bytes), { defaults: false, arrays: true, longs: Number }) as ReflectionResponse;
    return new Promise((resolve, reject) => {
      const answers: ReflectionResponse[] = [];
      const stream = this.client.makeBidiStreamRequest(methodPath(version), serialize, deserialize, new grpc.Metadata(), { deadline });
      stream.on('data', (answer: ReflectionResponse) => {
        answers.push(answer);
        // Some servers keep the stream open after the last answer; we have what we asked for.
        if (answers.length === requests.length) stream.cancel();
      });
      stream.on('error', (error: grpc.ServiceError) => {
        if (error.code === grpc.status.CANCELLED && answers.length === requests.length) resolve(answers);
        else reject(error);
      });
      stream.on('end', () => (answers.length === requests.length ? resolve(answers) : reject(new CutoverError('REFLECTION_FAILED', `${this.endpoint} answered ${answers.length} of ${requests.length} reflection requests`))));
      for (const r of requests) stream.write(r);
      stream.end();
    });
  }
}
