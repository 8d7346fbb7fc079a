/**
 * The cutover.v1.Events service (proto/cutover/v1/events.proto): the audit trail's List and
 * Watch over one node's port. Every node answers: List is a linearizable read of `event/`
 * (`listEvents`), Watch streams this node's applied changes under `event/` (its own KV watch),
 * filtered, from a revision. Deletes (the pruner's) are not events and are not streamed.
 *
 * Errors follow the API's conventions: a malformed filter is INVALID_ARGUMENT naming the field
 * (`artifact`, `update_id`, `action`, `order`, `limit`, `until`, ...); a Watch from a compacted revision ends
 * with OUT_OF_RANGE (WATCH_COMPACTED), and a client that falls more than `watchBufferBytesMax`
 * behind with RESOURCE_EXHAUSTED.
 */
import { status, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { EVENT_PREFIX, parseEvent, type StoredEvent } from '../events/event.ts';
import { checkEventFilter, listEvents, matchesEvent, requireEventAction, type EventFilter, type EventOrder } from '../events/query.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { requireArtifactBase } from '../slices/keys.ts';
import { toServiceError } from '../transport/grpc-errors.ts';
import { requireUpdateId } from '../updates/record.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { unary } from './kv-service.ts';

export interface EventsServiceOptions {
  readonly port: ClusterPort;
  /** Bytes buffered for a slow Watch client before its stream ends with RESOURCE_EXHAUSTED (default 8 MiB). */
  readonly watchBufferBytesMax?: number;
}

interface PbFilter {
  artifact: string;
  update_id: string;
  actor: string;
  action: string;
}

interface PbListRequest extends PbFilter {
  since_ms: number;
  until_ms: number;
  limit: number;
  order: string;
}

interface PbWatchRequest extends PbFilter {
  from_revision: number;
}

/** The filter of a request's fields (empty = any), checked; INVALID_ARGUMENT names the field. */
export function filterOf(req: PbFilter & { since_ms?: number; until_ms?: number }): EventFilter {
  const filter: EventFilter = {
    ...(req.artifact === '' ? {} : { artifact: requireArtifactBase(req.artifact, 'artifact') }),
    ...(req.update_id === '' ? {} : { updateId: requireUpdateId(req.update_id, 'update_id') }),
    ...(req.actor === '' ? {} : { actor: req.actor }),
    ...(req.action === '' ? {} : { action: requireEventAction(req.action) }),
    ...(req.since_ms === undefined || req.since_ms === 0 ? {} : { sinceMs: req.since_ms }),
    ...(req.until_ms === undefined || req.until_ms === 0 ? {} : { untilMs: req.until_ms }),
  };
  return checkEventFilter(filter);
}

function orderOf(text: string): EventOrder {
  if (text === '' || text === 'OLDEST_FIRST') return 'oldest-first';
  if (text === 'NEWEST_FIRST') return 'newest-first';
  throw new InvalidArgumentError('order', `must be OLDEST_FIRST or NEWEST_FIRST, got ${JSON.stringify(text)}`);
}

/** The wire form of a stored event. */
export function pbEvent(event: StoredEvent): Record<string, unknown> {
  const t = event.target;
  return {
    id: event.id,
    at_ms: event.at,
    actor: { kind: event.actor.kind, name: event.actor.name },
    action: event.action,
    target: { artifact: t.artifact ?? '', update_id: t.updateId ?? '', version: t.version ?? '', instance_id: t.instanceId ?? '', node_id: t.nodeId ?? 0, member_id: t.memberId ?? 0 },
    reason: event.reason,
    details_json: event.details === undefined ? '' : JSON.stringify(event.details),
    revision: event.revision,
  };
}

/** The cutover.v1.Events service over one node's port. */
export function eventsService(options: EventsServiceOptions): UntypedServiceImplementation {
  const { port } = options;
  const bufferBytesMax = options.watchBufferBytesMax ?? 8 * 1024 * 1024;
  return {
    List: unary(async (req: PbListRequest) => {
      const filter = filterOf(req);
      const order = orderOf(req.order);
      const list = await listEvents(port, filter, { limit: req.limit, order });
      return { events: list.events.map(pbEvent), more: list.more, revision: list.revision, invalid: list.invalid };
    }),
    Watch: (call: ServerWritableStream<PbWatchRequest, unknown>) => watch(port, call, bufferBytesMax),
  };
}

function asServiceError(error: unknown): Error {
  return Object.assign(new Error(error instanceof Error ? error.message : String(error)), toServiceError(error));
}

/** Streams the events passing the request's filters from its revision; past ones first, in commit order. */
function watch(port: ClusterPort, call: ServerWritableStream<PbWatchRequest, unknown>, bufferBytesMax: number): void {
  let cancel: (() => void) | undefined;
  let ended = false;
  const end = (): void => {
    cancel?.();
    cancel = undefined;
  };
  const fail = (error: Error): void => {
    if (ended) return;
    ended = true;
    end();
    // grpc-js sends the status from the stream's 'error' handler (see kv-service.ts endWithError).
    call.emit('error', error);
  };
  call.on('cancelled', end);
  call.on('close', end);
  let filter: EventFilter;
  try {
    filter = filterOf(call.request);
  } catch (error) {
    fail(asServiceError(error));
    return;
  }
  try {
    cancel = port.watch(EVENT_PREFIX, call.request.from_revision, (events) => {
      for (const change of events) {
        if (ended) return;
        // Checked per event: a replay from an old revision arrives as one large batch.
        if (call.writableLength > bufferBytesMax) {
          fail(Object.assign(new Error(`watcher is more than ${bufferBytesMax} bytes behind; list again and watch from its revision + 1`), { code: status.RESOURCE_EXHAUSTED }));
          return;
        }
        if (change.type !== 'put') continue;
        const parsed = parseEvent(change.kv.key, change.kv.value, change.kv.modRevision);
        if (parsed.ok && matchesEvent(parsed.value, filter)) call.write(pbEvent(parsed.value));
      }
    });
  } catch (error) {
    fail(asServiceError(error));
    return;
  }
  if (ended) end();
}
