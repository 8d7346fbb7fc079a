/**
 * Loads slice code for the instance lifecycle: the node's verified local copy of the artifact
 * (fetched from the replicated store when missing), imported once per version. Each version is
 * unpacked in its own directory, so its module URL is its own and a dynamic import yields one
 * module copy per version, shared by that version's instances on this node.
 */
import { parseHealthSpec } from '../health/spec.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import type { LocalArtifactCache } from './artifact-cache.ts';
import type { LoadedSlice, SliceLoader } from './instance-manager.ts';
import type { ArtifactBase } from './keys.ts';

export class ArtifactSliceLoader implements SliceLoader {
  private readonly loaded = new Map<string, Promise<LoadedSlice>>();

  constructor(
    private readonly port: ClusterPort,
    private readonly cache: LocalArtifactCache,
  ) {}

  load(base: ArtifactBase, version: string): Promise<LoadedSlice> {
    const key = `${base}:${version}`;
    let loading = this.loaded.get(key);
    if (loading === undefined) {
      loading = this.importVersion(base, version);
      // A failed load is not remembered: the next instance of that version tries again.
      loading.catch(() => this.loaded.delete(key));
      this.loaded.set(key, loading);
    }
    return loading;
  }

  private async importVersion(base: ArtifactBase, version: string): Promise<LoadedSlice> {
    const local = await this.cache.ensure(this.port, base, version);
    const module = (await import(local.entryUrl)) as { default?: unknown };
    if (typeof module.default !== 'function') throw new Error(`${base}:${version}: the entry module ${local.manifest.entry} must default-export a factory function (context) => instance`);
    const declared = local.manifest.healthChecks;
    return {
      methods: local.manifest.methods,
      health: local.manifest.health === true,
      ...(declared === undefined ? {} : { healthChecks: parseHealthSpec(declared) }),
      dir: local.dir,
      factory: module.default as LoadedSlice['factory'],
    };
  }
}
