/** Builders of KV entries and watch events for the routing-table tests (not a test file). */
import type { RouteDecision, RouteOk } from '../../src/invoker/decisions.ts';
import type { InstanceState } from '../../src/invoker/records.ts';
import type { KeyValue, WatchEvent } from '../../src/kv/types.ts';
import { artifactBase, instanceKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';

export const GREETER = artifactBase('org.example', 'greeter');
export const LOCAL = nodeId(1);
export const NEW = '2.0.0';
export const OLD = '1.0.0';

let revision = 0;

/** A KeyValue at a fresh revision; objects are JSON-encoded, strings stored as they are. */
export function kv(key: string, value: unknown): KeyValue {
  revision++;
  return { key, value: typeof value === 'string' ? value : JSON.stringify(value), createRevision: revision, modRevision: revision, version: 1 };
}

export function putEvent(key: string, value: unknown): WatchEvent {
  const entry = kv(key, value);
  return { type: 'put', revision: entry.modRevision, kv: entry, prev: undefined };
}

export function deleteEvent(key: string): WatchEvent {
  revision++;
  return { type: 'delete', revision, kv: { key, value: '', createRevision: 0, modRevision: revision, version: 0 }, prev: undefined };
}

export function routingValue(newWeight: number, oldWeight: number, versions: { newVersion?: string; oldVersion?: string; updateId?: string } = {}): object {
  return { updateId: versions.updateId ?? 'u-1', newVersion: versions.newVersion ?? NEW, oldVersion: versions.oldVersion ?? OLD, newWeight, oldWeight };
}

export function routing(newWeight: number, oldWeight: number, base: ArtifactBase = GREETER, versions: { newVersion?: string; oldVersion?: string; updateId?: string } = {}): KeyValue {
  return kv(versionRoutingKey(base), routingValue(newWeight, oldWeight, versions));
}

export function instanceKeyOf(node: number, version: string, id: string, base: ArtifactBase = GREETER): string {
  return instanceKey(nodeId(node), base, version, id);
}

export function instance(node: number, version: string, id: string, state: InstanceState = 'ACTIVE', base: ArtifactBase = GREETER): KeyValue {
  return kv(instanceKeyOf(node, version, id, base), { state, nodeId: node, address: `10.0.0.${node}:7001`, startedAt: 1 });
}

/** `count` ACTIVE instances of `version`, spread over nodes 1..3 round-robin from `firstNode`. */
export function spread(version: string, count: number, firstNode = 1): KeyValue[] {
  return Array.from({ length: count }, (_, i) => instance(((firstNode - 1 + i) % 3) + 1, version, `${version.replaceAll('.', '-')}-${i}`));
}

/** The decision, or a test failure with its code and message. */
export function ok(decision: RouteDecision): RouteOk {
  if (!decision.ok) throw new Error(`${decision.code}: ${decision.message}`);
  return decision;
}
