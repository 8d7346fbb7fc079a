/**
 * `cutover slice publish|list|deploy|scale|undeploy|instances` and `cutover invoke`, over
 * `cutover.v1.Slices`.
 */
import { Option, type Command } from 'commander';
import type { MessageObject } from '../client/schema.ts';
import { CommandFailedError } from '../cli-errors.ts';
import { bytes, shortHash, timeWithAge } from '../output/formats.ts';
import { emit, table, type Column, type Output } from '../output/output.ts';
import { parseArtifact, parseCount, parseJsonArgument, runAction, type CommandContext } from './context.ts';

const SLICES = 'cutover.v1.Slices';
/** Bytes per Publish message: well under gRPC's default 4 MiB message limit on the node. */
const PUBLISH_CHUNK_BYTES = 256 * 1024;

interface ArtifactVersion {
  artifact: string;
  version: string;
  sha256: string;
  size: number;
  methods: string[];
  min_compatible_version: string;
  published_at_ms: number;
  desired_instances: number;
  deployed: boolean;
}

interface Instance {
  artifact: string;
  version: string;
  instance_id: string;
  node_id: number;
  address: string;
  state: string;
  reason: string;
  assigned: boolean;
}

interface Blueprint {
  artifact: string;
  version: string;
  instances: number;
  per_node_max: number;
}

function versionsTable(output: Output, versions: readonly ArtifactVersion[]): string {
  const columns: Column<ArtifactVersion>[] = [
    { header: 'ARTIFACT', cell: (v) => v.artifact, flexible: 1 },
    { header: 'VERSION', cell: (v) => v.version },
    { header: 'INSTANCES', cell: (v) => (v.deployed ? String(v.desired_instances) : '-'), align: 'right' },
    { header: 'METHODS', cell: (v) => v.methods.join(','), flexible: 2 },
    { header: 'PUBLISHED', cell: (v) => timeWithAge(v.published_at_ms, output.nowMs) },
  ];
  return table(output, columns, versions, 'no slices published; publish one with `cutover slice publish <dir>`');
}

function instancesTable(output: Output, instances: readonly Instance[]): string {
  const columns: Column<Instance>[] = [
    { header: 'ARTIFACT', cell: (i) => i.artifact, flexible: 1 },
    { header: 'VERSION', cell: (i) => i.version },
    { header: 'INSTANCE', cell: (i) => i.instance_id, flexible: 1 },
    { header: 'NODE', cell: (i) => String(i.node_id), align: 'right' },
    {
      header: 'STATE',
      cell: (i) => i.state,
      style: (text, i, s) => (i.state === 'ACTIVE' ? s.green(text) : i.state === 'FAILED' || i.state === 'UNHEALTHY' || i.state === 'MALFORMED' ? s.red(text) : s.yellow(text)),
    },
    { header: 'REASON', cell: (i) => (i.assigned ? i.reason : i.reason === '' ? 'not assigned' : `not assigned; ${i.reason}`), flexible: 2 },
  ];
  return table(output, columns, instances, 'no instances');
}

async function publish(context: CommandContext, source: string): Promise<void> {
  // Loaded only here: packing pulls in tar and zlib.
  const { packArtifact } = await import('../../slices/artifact-package.ts');
  const packed = await packArtifact(source).catch((error: unknown) => {
    throw new CommandFailedError('INVALID_ARTIFACT', `cannot pack ${source}: ${error instanceof Error ? error.message : String(error)}`, 'give a slice directory (with slice.json) or a .tgz made by `cutover slice publish`');
  });
  const messages: MessageObject[] = [];
  for (let offset = 0; offset < packed.bytes.length || offset === 0; offset += PUBLISH_CHUNK_BYTES) {
    const chunk = packed.bytes.subarray(offset, offset + PUBLISH_CHUNK_BYTES);
    messages.push(offset === 0 ? { chunk, expected_sha256: packed.sha256 } : { chunk });
  }
  // Idempotent: the same bytes published again answer created=false.
  const response = await context.session().clientStream(`${SLICES}/Publish`, messages, { idempotent: true });
  const artifact = response.artifact as ArtifactVersion;
  const what = `${artifact.artifact} ${artifact.version} (sha256 ${shortHash(artifact.sha256)}…, ${bytes(artifact.size)}, methods ${artifact.methods.join(', ')})`;
  emit(context.output, response, () => (response.created === true ? `published ${what}` : `already published with the same bytes: ${what}`));
}

/** Registers `cutover slice …` and `cutover invoke`. */
export function registerSliceCommands(program: Command): void {
  const slice = program.command('slice').description('slice artifacts, deployments and instances (cutover.v1.Slices)');

  slice
    .command('publish')
    .description('pack a slice directory (or take a .tgz) and publish it to the cluster')
    .argument('<dir|tgz>', 'a directory with slice.json and its module, or a packed .tgz')
    .action(runAction(async (context, [source]) => publish(context, String(source))));

  slice
    .command('list')
    .description('published versions, with what is deployed')
    .argument('[group:artifact]', 'only this artifact')
    .action(
      runAction(async (context, [artifact]) => {
        const filter = artifact === undefined ? '' : parseArtifact(String(artifact));
        const response = await context.session().unary(`${SLICES}/List`, { artifact: filter }, { idempotent: true });
        emit(context.output, response, () => versionsTable(context.output, response.versions as ArtifactVersion[]));
      }),
    );

  slice
    .command('deploy')
    .description('deploy the first version of an artifact (later versions change by a rolling update)')
    .argument('<group:artifact>', 'the artifact')
    .argument('<version>', 'a published version')
    .addOption(new Option('-i, --instances <n>', 'instances to run').default('1'))
    .addOption(new Option('--per-node-max <n>', 'most instances of this version on one node; 0 = no limit').default('0'))
    .action(
      runAction(async (context, [artifact, version], flags) => {
        const request = { artifact: parseArtifact(String(artifact)), version: String(version), instances: parseCount('--instances', String(flags.instances)), per_node_max: parseCount('--per-node-max', String(flags.perNodeMax), { min: 0 }) };
        // Not idempotent: a repeated deploy answers ALREADY_DEPLOYED.
        const response = await context.session().unary(`${SLICES}/Deploy`, request, { idempotent: false });
        const bp = response.blueprint as Blueprint;
        emit(context.output, response, () => `deployed ${bp.artifact} ${bp.version} with ${bp.instances} instance${bp.instances === 1 ? '' : 's'}; see them start with \`cutover slice instances ${bp.artifact}\``);
      }),
    );

  slice
    .command('scale')
    .description('set the instance count of a deployed version')
    .argument('<group:artifact>', 'the artifact')
    .argument('<version>', 'a deployed version')
    .requiredOption('-i, --instances <n>', 'instances to run')
    .action(
      runAction(async (context, [artifact, version], flags) => {
        const request = { artifact: parseArtifact(String(artifact)), version: String(version), instances: parseCount('--instances', String(flags.instances)) };
        const response = await context.session().unary(`${SLICES}/Scale`, request, { idempotent: true });
        const bp = response.blueprint as Blueprint;
        emit(context.output, response, () => `scaled ${bp.artifact} ${bp.version} to ${bp.instances} instance${bp.instances === 1 ? '' : 's'}`);
      }),
    );

  slice
    .command('undeploy')
    .description('remove a version\'s deployment (every version when none is given); its instances drain and stop')
    .argument('<group:artifact>', 'the artifact')
    .argument('[version]', 'only this version')
    .action(
      runAction(async (context, [artifact, version]) => {
        const request = { artifact: parseArtifact(String(artifact)), version: version === undefined ? '' : String(version) };
        const response = await context.session().unary(`${SLICES}/Undeploy`, request, { idempotent: false });
        const removed = response.removed as Blueprint[];
        emit(context.output, response, () => removed.map((b) => `undeployed ${b.artifact} ${b.version} (was ${b.instances} instance${b.instances === 1 ? '' : 's'}); its instances drain and stop`).join('\n'));
      }),
    );

  slice
    .command('instances')
    .description('where each instance runs and its state')
    .argument('[group:artifact]', 'only this artifact')
    .action(
      runAction(async (context, [artifact]) => {
        const filter = artifact === undefined ? '' : parseArtifact(String(artifact));
        const response = await context.session().unary(`${SLICES}/Instances`, { artifact: filter }, { idempotent: true });
        const pending = (response.pending as Instance[]).map((i) => ({ ...i, state: i.state === '' ? 'PENDING' : i.state, reason: i.reason === '' ? 'assigned; no node reports it yet' : i.reason, assigned: true }));
        emit(context.output, response, () => instancesTable(context.output, [...(response.instances as Instance[]), ...pending]));
      }),
    );

  program
    .command('invoke')
    .description('call a slice method through a node\'s invoker; prints the reply as JSON')
    .argument('<group:artifact>', 'the artifact')
    .argument('<method>', 'the method')
    .argument('[json]', 'the payload, as JSON', '{}')
    .addOption(new Option('--invoke-timeout <ms>', 'the invocation\'s own deadline on the node; 0 = the node\'s default').default('0'))
    .action(
      runAction(async (context, [artifact, method, json], flags) => {
        const payload = parseJsonArgument('[json]', String(json));
        const request = { artifact: parseArtifact(String(artifact)), method: String(method), payload_json: JSON.stringify(payload), timeout_ms: parseCount('--invoke-timeout', String(flags.invokeTimeout), { min: 0 }) };
        // Not idempotent: the method may have effects.
        const response = await context.session().unary(`${SLICES}/Invoke`, request, { idempotent: false });
        let reply: unknown;
        try {
          reply = JSON.parse(String(response.payload_json));
        } catch {
          throw new CommandFailedError('INVALID_REPLY', `the reply is not JSON: ${String(response.payload_json).slice(0, 80)}`, 'this is a node bug; see its log');
        }
        emit(context.output, reply, () => JSON.stringify(reply, null, 2));
      }),
    );
}
