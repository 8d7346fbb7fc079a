/**
 * Notifications (issue 7 item 4): channel records in the store, payload formats, signing, and the
 * leader-only dispatcher that delivers the events that notify. Delivery is at least once; receivers
 * de-duplicate by the event id.
 */
export * from './channel.ts';
export { ChannelQueue, zeroCounters, type ChannelQueueOptions, type DeliveryCounters } from './channel-queue.ts';
export { NotifyDispatcher, type ChannelStats, type NotifyDispatcherOptions, type NotifyStats } from './dispatcher.ts';
export { postJson, retryableStatus, type PostHandle, type PostOptions, type PostOutcome } from './http-post.ts';
export * from './payload.ts';
export { requestFor, sendNotice, testNotice, type PostFunction, type SendOptions } from './send.ts';
export { DEFAULT_NOTIFY_SETTINGS, validateNotifySettings, type NotifySettings } from './settings.ts';
export { DELIVERY_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader, verifySignature } from './signing.ts';
export { registerNotifyMetrics } from './metrics-prometheus.ts';
