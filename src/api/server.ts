import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { CutoverNode } from '../node/node.ts';
import { clusterService } from './cluster-service.ts';
import { eventsService, type EventsServiceOptions } from './events-service.ts';
import { healthService, type HealthServiceOptions } from './health-service.ts';
import { notificationsService, type NotificationsServiceOptions } from './notifications-service.ts';
import { kvService, type KvServiceOptions } from './kv-service.ts';
import { slicesService, type SlicesServiceOptions } from './slices-service.ts';
import { updatesService, type UpdatesServiceOptions } from './updates-service.ts';
import { loadManagementDefinition } from './protos.ts';

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

function serviceOf(definition: grpc.GrpcObject, name: string): grpc.ServiceDefinition {
  const holder = name.split('.').reduce<unknown>((obj, part) => (obj as Record<string, unknown>)[part], definition) as ServiceHolder | undefined;
  if (holder?.service === undefined) throw new Error(`service ${name} not found in the proto definition`);
  return holder.service;
}

/**
 * Adds the management API (KV, Cluster, Slices when `options.slices` is given, RollingUpdates when
 * `options.updates` is, Health, Events and Notifications when theirs are),
 * grpc.health.v1 and server reflection (v1 and v1alpha) to `server`. Health reports SERVING once
 * the node knows a leader, NOT_SERVING otherwise. Returns a function that detaches the health
 * updates and closes the clients the services keep.
 */
export function addManagementApi(
  server: grpc.Server,
  node: CutoverNode,
  options: KvServiceOptions & { readonly slices?: SlicesServiceOptions; readonly updates?: UpdatesServiceOptions; readonly health?: HealthServiceOptions; readonly notifications?: NotificationsServiceOptions; readonly events?: EventsServiceOptions },
): () => void {
  const packageDefinition = loadManagementDefinition();
  const definition = grpc.loadPackageDefinition(packageDefinition);
  server.addService(serviceOf(definition, 'cutover.v1.KV'), kvService(node, options));
  server.addService(serviceOf(definition, 'cutover.v1.Cluster'), clusterService(node));
  const services = ['', 'cutover.v1.KV', 'cutover.v1.Cluster'];
  if (options.slices !== undefined) {
    server.addService(serviceOf(definition, 'cutover.v1.Slices'), slicesService(options.slices));
    services.push('cutover.v1.Slices');
  }
  if (options.updates !== undefined) {
    server.addService(serviceOf(definition, 'cutover.v1.RollingUpdates'), updatesService(options.updates));
    services.push('cutover.v1.RollingUpdates');
  }
  const closers: (() => void)[] = [];
  if (options.health !== undefined) {
    const health = healthService(options.health);
    server.addService(serviceOf(definition, 'cutover.v1.Health'), health.implementation);
    services.push('cutover.v1.Health');
    closers.push(() => health.close());
  }
  if (options.events !== undefined) {
    server.addService(serviceOf(definition, 'cutover.v1.Events'), eventsService(options.events));
    services.push('cutover.v1.Events');
  }
  if (options.notifications !== undefined) {
    server.addService(serviceOf(definition, 'cutover.v1.Notifications'), notificationsService(options.notifications));
    services.push('cutover.v1.Notifications');
  }
  const health = new HealthImplementation(Object.fromEntries(services.map((s) => [s, 'NOT_SERVING'])));
  health.addToServer(server);
  new ReflectionService(packageDefinition).addToServer(server);
  const update = (leader: number): void => {
    const state = leader === 0 ? 'NOT_SERVING' : 'SERVING';
    for (const service of services) health.setStatus(service, state);
  };
  update(node.leaderInfo().id);
  closers.push(node.onLeaderChange((leader) => update(leader)));
  return () => {
    for (const close of closers) close();
  };
}
