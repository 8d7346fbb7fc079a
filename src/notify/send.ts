/**
 * One delivery attempt of one notice to one channel: the body in the channel's format, the
 * webhook's signing and identity headers, and the bounded POST. Used by the dispatcher's queues and,
 * once, by the API's TestChannel.
 */
import type { Clock } from '../util/clock.ts';
import type { ChannelRecord } from './channel.ts';
import { postJson, type PostHandle, type PostOptions } from './http-post.ts';
import { payloadFor, type Notice } from './payload.ts';
import { DELIVERY_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader } from './signing.ts';

/** One bounded POST (`postJson`); the simulator passes one that crosses its simulated network. */
export type PostFunction = (url: string, body: string, headers: Readonly<Record<string, string>>, options: PostOptions) => PostHandle;

export interface SendOptions {
  readonly clock: Clock;
  /** Wall-clock epoch ms, for the signed timestamp. */
  readonly wallClockMs: () => number;
  readonly timeoutMs: number;
  readonly responseBytesMax: number;
  /** How the request is sent (default `postJson`, real node:http). */
  readonly post?: PostFunction;
}

/** The headers and body of an attempt (exported for tests and receivers' documentation). */
export function requestFor(channel: ChannelRecord, notice: Notice, deliveryId: string, wallClockMs: number): { readonly body: string; readonly headers: Record<string, string> } {
  const { body } = payloadFor(channel.type, notice);
  if (channel.type !== 'webhook') return { body, headers: {} };
  const timestamp = String(Math.floor(wallClockMs / 1000));
  const headers: Record<string, string> = { [TIMESTAMP_HEADER]: timestamp, [EVENT_ID_HEADER]: notice.id, [DELIVERY_HEADER]: deliveryId };
  if (channel.secret !== undefined) headers[SIGNATURE_HEADER] = signatureHeader(channel.secret, timestamp, body);
  return { body, headers };
}

/** Starts one attempt; the handle's outcome never rejects. */
export function sendNotice(channel: ChannelRecord, notice: Notice, deliveryId: string, options: SendOptions): PostHandle {
  const { body, headers } = requestFor(channel, notice, deliveryId, options.wallClockMs());
  const post = options.post ?? postJson;
  return post(channel.url, body, headers, { clock: options.clock, timeoutMs: options.timeoutMs, responseBytesMax: options.responseBytesMax });
}

/** The synthetic notice `TestChannel` sends (action `notify.test`, revision 0). */
export function testNotice(channelName: string, actor: string, at: number): Notice {
  return {
    id: `${String(Math.max(0, Math.floor(at))).padStart(13, '0')}-test.${channelName}`,
    revision: 0,
    action: 'notify.test',
    actor: { kind: 'user', name: actor },
    target: {},
    reason: `test of notification channel ${channelName}`,
    at,
  };
}
