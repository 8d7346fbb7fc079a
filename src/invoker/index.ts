/** The invoker's pure routing core: public surface. */
export { RoutingTable, ROUTING_TABLE_PREFIXES } from './routing-table.ts';
export type { RoutingTableOptions, RoutingTableSnapshot } from './routing-table.ts';
export type { ArtifactSnapshot, VersionSnapshot } from './artifact-routes.ts';
export type { RouteDecision, RouteFailure, RouteFailureCode, RouteOk, RoutedInstance, Selection } from './decisions.ts';
export { INSTANCE_STATES, parseInstanceRecord, parseRoutingRecord } from './records.ts';
export type { InstanceRecord, InstanceState, Parsed, RoutingRecord } from './records.ts';
export { SmoothWeightedRoundRobin, WEIGHT_MAX, CHOICES_MAX, areValidWeights, gcd, reduceWeights } from './weighted.ts';
