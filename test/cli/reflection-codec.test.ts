/**
 * The reflection client's hand-written codec (src/cli/client/reflection.ts) against the
 * reflection.proto that @grpc/reflection ships, read by protobufjs: the requests it encodes are
 * the bytes protobufjs encodes, and it decodes what protobufjs encodes, unknown fields included.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'ava';
import protobuf from 'protobufjs';
import { decodeReflectionResponse, encodeReflectionRequest, type ReflectionRequest } from '../../src/cli/client/reflection.ts';

const require = createRequire(import.meta.url);
const PROTO = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
const Request = root.lookupType('grpc.reflection.v1.ServerReflectionRequest');
const Response = root.lookupType('grpc.reflection.v1.ServerReflectionResponse');

function encodeResponse(value: object): Uint8Array {
  const error = Response.verify(value);
  if (error !== null) throw new Error(error);
  return Response.encode(Response.fromObject(value)).finish();
}

test('requests encode as protobufjs encodes them from reflection.proto', (t) => {
  const requests: ReflectionRequest[] = [{ list_services: '*' }, { file_containing_symbol: 'cutover.v1.Cluster' }, { file_by_filename: 'cutover/v1/kv.proto' }, { file_by_filename: '' }, { file_containing_symbol: 'ünïcode.Service' }];
  for (const request of requests) {
    const ours = encodeReflectionRequest(request);
    t.deepEqual([...ours], [...Request.encode(Request.fromObject(request)).finish()], JSON.stringify(request));
    t.deepEqual(Request.toObject(Request.decode(ours)), request);
  }
});

test('a request without exactly one known member is refused with INVALID_ARGUMENT', (t) => {
  for (const bad of [{}, { list_services: '*', file_by_filename: 'a' }, { host: 'x' }, { list_services: 7 }]) {
    t.is(t.throws(() => encodeReflectionRequest(bad as unknown as ReflectionRequest))?.['code' as keyof Error], 'INVALID_ARGUMENT', JSON.stringify(bad));
  }
});

test('responses decode as reflection.proto defines them', (t) => {
  const files = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.from('a longer descriptor body'.repeat(50))];
  const fileResponse = decodeReflectionResponse(encodeResponse({ valid_host: 'h', original_request: { file_containing_symbol: 'x.Y' }, file_descriptor_response: { file_descriptor_proto: files } }));
  t.deepEqual(fileResponse.file_descriptor_response?.file_descriptor_proto.map((f) => Buffer.from(f).toString('hex')), files.map((f) => f.toString('hex')));
  t.is(fileResponse.list_services_response, undefined);
  t.is(fileResponse.error_response, undefined);

  t.deepEqual(decodeReflectionResponse(encodeResponse({ list_services_response: { service: [{ name: 'cutover.v1.KV' }, { name: 'grpc.health.v1.Health' }] } })), { list_services_response: { service: [{ name: 'cutover.v1.KV' }, { name: 'grpc.health.v1.Health' }] } });
  t.deepEqual(decodeReflectionResponse(encodeResponse({ list_services_response: { service: [] } })), { list_services_response: { service: [] } });
  t.deepEqual(decodeReflectionResponse(encodeResponse({ error_response: { error_code: 5, error_message: 'not found: a.B' } })), { error_response: { error_code: 5, error_message: 'not found: a.B' } });
  t.deepEqual(decodeReflectionResponse(encodeResponse({ error_response: { error_code: -1, error_message: '' } })), { error_response: { error_code: -1, error_message: '' } });
  // A member we do not read (extension numbers) leaves the answer empty, as the old decoder did.
  t.deepEqual(decodeReflectionResponse(encodeResponse({ valid_host: 'h', all_extension_numbers_response: { base_type_name: 'a.B', extension_number: [100, 101] } })), {});
});

test('unknown fields of every wire type are skipped', (t) => {
  const known = encodeResponse({ list_services_response: { service: [{ name: 'a.B' }] } });
  const writer = protobuf.Writer.create();
  writer.uint32((90 << 3) | 0).uint64(123456789);
  writer.uint32((91 << 3) | 1).fixed64(7);
  writer.uint32((92 << 3) | 5).fixed32(7);
  writer.uint32((93 << 3) | 2).bytes(Buffer.from('ignored'));
  const bytes = Buffer.concat([Buffer.from(writer.finish()), Buffer.from(known)]);
  t.deepEqual(decodeReflectionResponse(bytes), { list_services_response: { service: [{ name: 'a.B' }] } });
});

test('truncated bytes throw rather than decode to something', (t) => {
  const bytes = encodeResponse({ file_descriptor_response: { file_descriptor_proto: [Buffer.from('abcdef')] } });
  t.throws(() => decodeReflectionResponse(bytes.subarray(0, bytes.length - 2)));
});
