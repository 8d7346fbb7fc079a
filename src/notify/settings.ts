/**
 * The bounds of notification delivery, each with a default, checked at start-up by
 * `validateNotifySettings` (a bad setting is named, never silently clamped).
 */
import { InvalidArgumentError } from '../util/errors.ts';
import { CHANNELS_MAX_DEFAULT } from './channel.ts';

export interface NotifySettings {
  /** Each HTTP request, connect to last byte read (default 5000). */
  readonly requestTimeoutMs: number;
  /** Attempts per notification and channel, the first included, before it is dropped (default 5). */
  readonly attemptsMax: number;
  /** Back-off before the first retry; doubles per attempt, with jitter (default 1000). */
  readonly retryDelayMsMin: number;
  /** Longest back-off (default 60 000). */
  readonly retryDelayMsMax: number;
  /** Notifications waiting per channel; beyond it the oldest waiting one is dropped (default 1000). */
  readonly queueLengthMax: number;
  /** Channels the dispatcher serves; more are ignored and logged (default 64). */
  readonly channelsMax: number;
  /** How often the delivery cursor is written, at most (default 3000). */
  readonly cursorWriteIntervalMs: number;
  /** Bytes of a receiver's answer read, for the log (default 4096). */
  readonly responseBytesMax: number;
  /** Events read back from the store when the watch history no longer reaches the cursor (default 5000). */
  readonly recoverEventsMax: number;
  /** Watch events buffered between the apply path and the dispatcher's drain (default 10 000). */
  readonly intakeEventsMax: number;
}

export const DEFAULT_NOTIFY_SETTINGS: NotifySettings = {
  requestTimeoutMs: 5000,
  attemptsMax: 5,
  retryDelayMsMin: 1000,
  retryDelayMsMax: 60_000,
  queueLengthMax: 1000,
  channelsMax: CHANNELS_MAX_DEFAULT,
  cursorWriteIntervalMs: 3000,
  responseBytesMax: 4096,
  recoverEventsMax: 5000,
  intakeEventsMax: 10_000,
};

const LIMITS: Readonly<Record<keyof NotifySettings, readonly [number, number]>> = {
  requestTimeoutMs: [1, 600_000],
  attemptsMax: [1, 100],
  retryDelayMsMin: [1, 3_600_000],
  retryDelayMsMax: [1, 86_400_000],
  queueLengthMax: [1, 1_000_000],
  channelsMax: [1, 10_000],
  cursorWriteIntervalMs: [1, 3_600_000],
  responseBytesMax: [0, 1 << 20],
  recoverEventsMax: [1, 1_000_000],
  intakeEventsMax: [1, 10_000_000],
};

/** The defaults with `overrides` applied, checked; throws INVALID_ARGUMENT naming `notify.{setting}`. */
export function validateNotifySettings(overrides: Partial<NotifySettings> = {}): NotifySettings {
  const settings: NotifySettings = { ...DEFAULT_NOTIFY_SETTINGS, ...overrides };
  for (const [name, [min, max]] of Object.entries(LIMITS) as [keyof NotifySettings, readonly [number, number]][]) {
    const value = settings[name];
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new InvalidArgumentError(`notify.${name}`, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  if (settings.retryDelayMsMax < settings.retryDelayMsMin) throw new InvalidArgumentError('notify.retryDelayMsMax', `must be at least notify.retryDelayMsMin (${settings.retryDelayMsMin})`);
  return settings;
}
