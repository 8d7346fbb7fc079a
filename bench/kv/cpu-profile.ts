/**
 * Summarises V8 `.cpuprofile` files (as written by `node --cpu-prof`, e.g. by
 * `npm run bench:kv -- --cpu-prof DIR`): self time by function and by module, largest first.
 *
 * Usage: tsx bench/kv/cpu-profile.ts FILE.cpuprofile… [--top N]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { markdownTable } from './report.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time in microseconds per key, over every profile given. */
export type SelfTimes = Map<string, number>;

/** Adds each sample's time to the key `keyOf` gives its node (and, through `parentOf`, its stack). */
export function addSelfTimes(profile: CpuProfile, keyOf: (node: ProfileNode, parentOf: (node: ProfileNode) => ProfileNode | undefined) => string, into: SelfTimes): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  const parentOf = (node: ProfileNode): ProfileNode | undefined => parents.get(node.id);
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (node === undefined) return;
    const key = keyOf(node, parentOf);
    into.set(key, (into.get(key) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  });
}

/** "name (file:line)" with the file shortened to what identifies it. */
export function functionKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'} ${url === '' ? '' : `(${shortUrl(url)}:${lineNumber + 1})`}`.trim();
}

/** The module a node's code belongs to: a package, a src/ directory, a Node.js internal, or V8. */
export function moduleKey(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inPackage !== null) return inPackage[1]!;
  const inRepo = /\/(src|bench|test)\/([^/]+)\//.exec(url);
  if (inRepo !== null) return `${inRepo[1]}/${inRepo[2]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return shortUrl(url);
}

/**
 * The project module responsible for a sample: the innermost frame of src/ on its stack (so time
 * in grpc-js under src/transport counts for src/transport). Samples without one keep their own
 * module, marked as reached from outside the project (e.g. a gRPC server parsing a request).
 */
export function responsibleKey(node: ProfileNode, parentOf: (node: ProfileNode) => ProfileNode | undefined): string {
  for (let frame: ProfileNode | undefined = node; frame !== undefined; frame = parentOf(frame)) {
    const inSrc = /\/src\/([^/]+)\/([^/]+)\.ts/.exec(frame.callFrame.url);
    if (inSrc !== null && !frame.callFrame.url.includes('node_modules')) return `src/${inSrc[1]}/${inSrc[2]}.ts`;
  }
  const own = moduleKey(node);
  return own.startsWith('(') ? own : `${own} (no src/ frame)`;
}

function shortUrl(url: string): string {
  const inPackage = url.lastIndexOf('node_modules/');
  if (inPackage >= 0) return url.slice(inPackage + 'node_modules/'.length);
  const inRepo = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return inRepo !== null ? inRepo[1]! : path.basename(url);
}

/** The `top` largest entries as a Markdown table with milliseconds and shares. */
export function topTable(title: string, times: SelfTimes, top: number): string {
  const totalUs = [...times.values()].reduce((sum, us) => sum + us, 0);
  const rows = [...times.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return markdownTable([title, 'self ms', 'share'], rows.map(([key, us]) => [key, (us / 1000).toFixed(0), `${((100 * us) / Math.max(1, totalUs)).toFixed(1)} %`]), 1);
}

function main(): void {
  const { values, positionals } = parseArgs({ args: process.argv.slice(2), options: { top: { type: 'string', default: '25' } }, allowPositionals: true, strict: true });
  const top = Number(values.top);
  if (positionals.length === 0 || !Number.isInteger(top) || top < 1) throw new Error('usage: tsx bench/kv/cpu-profile.ts FILE.cpuprofile… [--top N]');
  const byFunction: SelfTimes = new Map();
  const byModule: SelfTimes = new Map();
  const byResponsible: SelfTimes = new Map();
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    addSelfTimes(profile, functionKey, byFunction);
    addSelfTimes(profile, moduleKey, byModule);
    addSelfTimes(profile, responsibleKey, byResponsible);
  }
  console.log([topTable('module (self time)', byModule, top), topTable('project file responsible (innermost src/ frame)', byResponsible, top), topTable('function (self time)', byFunction, top)].join('\n\n'));
}

try {
  main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
