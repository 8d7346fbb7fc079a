/**
 * The notification receivers of the health scenario and the `post` the dispatchers send through
 * (`NotifyDispatcherOptions.post`). A request crosses a simulated link (the scenario's leg delay),
 * may be lost (then the sender times out on its own clock), and reaches its receiver, which is
 * up (answers 200 after a short think; the answer crosses back and may be lost), down (the
 * connection is refused at once) or hanging (takes the request and never answers: the sender's
 * timeout ends it). A receiver counts a delivery when it answers 200, whether or not the answer
 * reaches the sender. Everything runs on the simulated event queue; the sender's timeout on the
 * sending incarnation's clock (a dead incarnation's clock never fires, as a dead process).
 */
import type { PostHandle, PostOptions, PostOutcome } from '../../src/notify/http-post.ts';
import type { PostFunction } from '../../src/notify/send.ts';
import { EVENT_ID_HEADER, DELIVERY_HEADER } from '../../src/notify/signing.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { EventQueue } from '../events.ts';

/** One request a receiver answered 200. */
export interface Delivery {
  readonly atMs: number;
  readonly eventId: string;
  readonly revision: number;
  /** `{nodeId}-{term}-{seq}` (X-Cutover-Delivery). */
  readonly deliveryId: string;
}

export type ReceiverMode = 'up' | 'down' | 'hang';

export class SimReceiver {
  readonly deliveries: Delivery[] = [];
  /** Requests that reached it while it hung or was down. */
  refused = 0;
  held = 0;
  private readonly windows: { fromMs: number; toMs: number; mode: ReceiverMode }[] = [];

  constructor(
    readonly name: string,
    readonly url: string,
  ) {}

  /** From `fromMs` to `toMs` (simulated), the receiver is down or hangs. */
  addWindow(fromMs: number, toMs: number, mode: Exclude<ReceiverMode, 'up'>): void {
    this.windows.push({ fromMs, toMs, mode });
  }

  modeAt(nowMs: number): ReceiverMode {
    for (const w of this.windows) if (nowMs >= w.fromMs && nowMs < w.toMs) return w.mode;
    return 'up';
  }

  /** Whether it was up during the whole of [fromMs, toMs]. */
  upDuring(fromMs: number, toMs: number): boolean {
    return this.windows.every((w) => w.toMs <= fromMs || w.fromMs >= toMs);
  }
}

export interface SimPostDeps {
  readonly queue: EventQueue;
  readonly random: SeededRandom;
  readonly receivers: readonly SimReceiver[];
  /** One network leg's delay (ms). */
  readonly legDelayMs: () => number;
  /** Share of requests and answers lost now. */
  readonly lossRate: () => number;
}

/** A `post` for one incarnation's dispatcher: `live()` false once it died (its promises are abandoned). */
export function simPost(deps: SimPostDeps, live: () => boolean): PostFunction {
  return (url: string, body: string, headers: Readonly<Record<string, string>>, options: PostOptions): PostHandle => {
    const startMs = options.clock.nowMs();
    let settle: (outcome: PostOutcome) => void = () => {};
    let done = false;
    const outcome = new Promise<PostOutcome>((resolve) => {
      settle = (o) => {
        if (done) return;
        done = true;
        cancelTimeout();
        resolve(o);
      };
    });
    const elapsed = (): number => Math.max(0, options.clock.nowMs() - startMs);
    const failure = (kind: 'network' | 'timeout', message: string): PostOutcome => ({ ok: false, kind, status: 0, message, retryable: true, durationMs: elapsed() });
    const cancelTimeout = options.clock.schedule(options.timeoutMs, () => settle(failure('timeout', `no answer within ${options.timeoutMs} ms`)));
    const receiver = deps.receivers.find((r) => r.url === url);
    const eventId = headers[EVENT_ID_HEADER] ?? '';
    const deliveryId = headers[DELIVERY_HEADER] ?? '';
    const revision = (JSON.parse(body) as { revision?: unknown }).revision;
    // Node-side callbacks run only while the sending incarnation lives.
    const back = (fn: () => void): void => deps.queue.after(deps.legDelayMs(), () => {
      if (live() && deps.random.nextFloat() >= deps.lossRate()) fn();
    });
    deps.queue.after(deps.legDelayMs(), () => {
      if (receiver === undefined) return back(() => settle(failure('network', `getaddrinfo ENOTFOUND ${url}`)));
      if (deps.random.nextFloat() < deps.lossRate()) return; // the request is lost: the sender times out
      const mode = receiver.modeAt(deps.queue.nowMs);
      if (mode === 'down') {
        receiver.refused++;
        return back(() => settle(failure('network', `connect ECONNREFUSED ${receiver.name}`)));
      }
      if (mode === 'hang') {
        receiver.held++;
        return;
      }
      deps.queue.after(1 + deps.random.nextFloat() * 5, () => {
        receiver.deliveries.push({ atMs: deps.queue.nowMs, eventId, revision: typeof revision === 'number' ? revision : -1, deliveryId });
        back(() => settle({ ok: true, status: 200, durationMs: elapsed() }));
      });
    });
    return { outcome, abort: () => settle(failure('network', 'aborted')) };
  };
}
