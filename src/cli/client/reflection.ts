/**
 * A small gRPC server reflection client (grpc.reflection.v1, falling back to v1alpha), with the
 * few messages of reflection.proto that it needs coded by hand. We use our own instead of
 * `grpc-js-reflection-client`: that package works on Node 20 but pulls in a second protobufjs
 * major, google-protobuf and lodash, whose loading alone (~280 ms measured here) would spend the
 * CLI's whole start-up budget.
 *
 * Each operation is one pipelined exchange: open a ServerReflectionInfo stream, write every
 * request, half-close, and collect the answers (the server answers in request order).
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { CutoverError } from '../../util/errors.ts';

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

/** Field numbers of reflection.proto (grpc.reflection.v1; v1alpha has the same messages). */
const REQUEST_FIELD = { file_by_filename: 3, file_containing_symbol: 4, list_services: 7 } as const;
const RESPONSE_FIELD = { file_descriptor_response: 4, list_services_response: 6, error_response: 7 } as const;
const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

/**
 * Encodes a ServerReflectionRequest. The two reflection messages are encoded and decoded here by
 * hand, with protobufjs' Reader and Writer, instead of through types parsed from reflection.proto:
 * parsing that file took ~10 ms of every command's start-up (docs/benchmarks.md, "CLI"). Only
 * the members we send and read are handled; the test checks them against reflection.proto.
 */
export function encodeReflectionRequest(request: ReflectionRequest): Buffer {
  const entries = Object.entries(request) as [keyof typeof REQUEST_FIELD, string][];
  const [member, value] = entries.length === 1 ? entries[0]! : [undefined, ''];
  const field = member === undefined ? undefined : REQUEST_FIELD[member];
  if (field === undefined || typeof value !== 'string') throw new CutoverError('INVALID_ARGUMENT', `a reflection request has exactly one of ${Object.keys(REQUEST_FIELD).join(', ')}; got ${JSON.stringify(request)}`);
  const writer = protobuf.Writer.create();
  writer.uint32((field << 3) | WIRE_LENGTH_DELIMITED).string(value);
  return Buffer.from(writer.finish());
}

/** Decodes a ServerReflectionResponse: the member that is set, the others absent; unknown fields skipped. */
export function decodeReflectionResponse(bytes: Uint8Array): ReflectionResponse {
  const reader = protobuf.Reader.create(bytes);
  let response: { -readonly [K in keyof ReflectionResponse]: ReflectionResponse[K] } = {};
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire !== WIRE_LENGTH_DELIMITED || !(Object.values(RESPONSE_FIELD) as number[]).includes(field)) {
      reader.skipType(wire);
      continue;
    }
    const nested = protobuf.Reader.create(reader.bytes());
    // A oneof: the last member on the wire wins, as protobuf's merge rules say.
    if (field === RESPONSE_FIELD.file_descriptor_response) response = { file_descriptor_response: { file_descriptor_proto: repeatedBytes(nested, 1) } };
    else if (field === RESPONSE_FIELD.list_services_response) response = { list_services_response: { service: repeatedBytes(nested, 1).map((service) => ({ name: stringField(protobuf.Reader.create(service), 1) })) } };
    else response = { error_response: errorResponse(nested) };
  }
  return response;
}

/** Every value of length-delimited field `number`; other fields skipped. */
function repeatedBytes(reader: protobuf.Reader, number: number): Uint8Array[] {
  const values: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === number && (tag & 7) === WIRE_LENGTH_DELIMITED) values.push(reader.bytes());
    else reader.skipType(tag & 7);
  }
  return values;
}

/** The last value of string field `number` ('' when absent). */
function stringField(reader: protobuf.Reader, number: number): string {
  let value = '';
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === number && (tag & 7) === WIRE_LENGTH_DELIMITED) value = reader.string();
    else reader.skipType(tag & 7);
  }
  return value;
}

/** ErrorResponse: error_code = 1 (int32), error_message = 2 (string). */
function errorResponse(reader: protobuf.Reader): { error_code: number; error_message: string } {
  const error = { error_code: 0, error_message: '' };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_VARINT) error.error_code = reader.int32();
    else if (tag >>> 3 === 2 && (tag & 7) === WIRE_LENGTH_DELIMITED) error.error_message = reader.string();
    else reader.skipType(tag & 7);
  }
  return error;
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
    return new Promise((resolve, reject) => {
      const answers: ReflectionResponse[] = [];
      const stream = this.client.makeBidiStreamRequest(methodPath(version), encodeReflectionRequest, decodeReflectionResponse, new grpc.Metadata(), { deadline });
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
