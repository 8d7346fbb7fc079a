import { createRequire } from 'node:module';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_ROOT, RAFT_LOADER_OPTIONS as LOADER_OPTIONS } from '../transport/proto.ts';

const require = createRequire(import.meta.url);

// One proto root and one set of loader options for every service in the process.
export { PROTO_ROOT, RAFT_LOADER_OPTIONS as LOADER_OPTIONS } from '../transport/proto.ts';

// The peer services are listed too: one port serves them all, and reflection should say so.
const MANAGEMENT_FILES = ['cutover/v1/kv.proto', 'cutover/v1/cluster.proto', 'cutover/v1/slices.proto', 'cutover/v1/updates.proto', 'cutover/v1/health.proto', 'cutover/v1/notifications.proto', 'cutover/v1/events.proto', 'cutover/peer/v1/raft.proto', 'cutover/peer/v1/invoke.proto'];

/** Files of the standard services we serve, so reflection lists them too. */
function standardFiles(): string[] {
  const health = path.join(path.dirname(require.resolve('grpc-health-check/package.json')), 'proto/health/v1/health.proto');
  const reflectionRoot = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto');
  return [health, path.join(reflectionRoot, 'grpc/reflection/v1/reflection.proto'), path.join(reflectionRoot, 'grpc/reflection/v1alpha/reflection.proto')];
}

/** The management API plus health and reflection, as one package definition for reflection. */
export function loadManagementDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([...MANAGEMENT_FILES.map((f) => path.join(PROTO_ROOT, f)), ...standardFiles()], LOADER_OPTIONS);
}
