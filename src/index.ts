/**
 * The package's public surface (`import { connect } from 'cutover'`).
 *
 * - `connect`: an embedded client that follows the cluster's routing and calls slice instances
 *   directly on their nodes, without being a member.
 * - `CutoverError` and `NotLeaderError`: every operational error carries a stable `code`; check
 *   the code, never the message.
 */
export { connect } from './client/connect.ts';
export type { ClientStatus, ConnectOptions, CutoverClient } from './client/connect.ts';
export type { RoutingFeedStatus } from './client/routing-feed.ts';
export type { InvokeOptions } from './invoker/invoker.ts';
export { CutoverError, NotLeaderError } from './util/errors.ts';
