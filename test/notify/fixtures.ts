/**
 * Shared setup of the notification tests: a MemoryClusterPort, a ManualClock, a dispatcher, and
 * helpers to commit events and channels through the port.
 */
import { eventId, eventWrite, type AuditEvent, type EventAction, type EventActor } from '../../src/events/event.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { channelKey, formatChannel, validateChannel, type ChannelInput } from '../../src/notify/channel.ts';
import { NotifyDispatcher } from '../../src/notify/dispatcher.ts';
import type { NotifySettings } from '../../src/notify/settings.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

/** Wall-clock epoch ms at clock time 0: 2023-11-14T22:13:20.000Z. */
export const EPOCH_MS = 1_700_000_000_000;
export const SECRET = 'a-webhook-secret-of-32-characters';

let sequence = 0;

export function auditEvent(action: EventAction, options: { artifact?: string; actor?: EventActor; reason?: string; details?: Record<string, unknown>; at?: number } = {}): AuditEvent {
  const at = options.at ?? EPOCH_MS + sequence;
  return {
    id: eventId(at, `t.${++sequence}`),
    at,
    actor: options.actor ?? { kind: 'user', name: 'ada' },
    action,
    target: { artifact: options.artifact ?? 'org.example:greeter', updateId: 'u-1', version: '2.0.0' },
    reason: options.reason ?? 'because',
    ...(options.details === undefined ? {} : { details: options.details }),
  };
}

export async function commitEvent(port: MemoryClusterPort, event: AuditEvent): Promise<number> {
  return (await port.txn([], [eventWrite(event)])).revision;
}

/** Writes an event straight into the store, as another leader's commit would arrive here. */
export function applyEvent(port: MemoryClusterPort, event: AuditEvent): number {
  const outcome = port.kv.apply({ clientId: 0, sequence: 0, command: eventWrite(event) });
  if (!outcome.ok || outcome.result.type !== 'put') throw new Error('event not applied');
  return outcome.result.revision;
}

export async function putChannel(port: MemoryClusterPort, input: Omit<ChannelInput, 'updatedBy' | 'updatedAt'>): Promise<void> {
  const record = validateChannel({ ...input, updatedBy: 'test', updatedAt: EPOCH_MS });
  await port.txn([], [{ type: 'put', key: channelKey(record.name), value: formatChannel(record) }]);
}

export interface Rig {
  readonly port: MemoryClusterPort;
  readonly clock: ManualClock;
  readonly dispatcher: NotifyDispatcher;
}

export async function rig(settings: Partial<NotifySettings> = {}, port = new MemoryClusterPort()): Promise<Rig> {
  const clock = new ManualClock();
  const dispatcher = new NotifyDispatcher({ port, clock, wallClockMs: () => EPOCH_MS + clock.nowMs(), random: new SeededRandom(42), logger: silentLogger, settings });
  dispatcher.start();
  await flush();
  return { port, clock, dispatcher };
}

export function ids(bodies: readonly Record<string, unknown>[]): string[] {
  return bodies.map((b) => String(b.id));
}
