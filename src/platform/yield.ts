/**
 * Yielding to the event loop, for the simulator's async run loop (cluster-sim/runtime/). Timers
 * are allowed only in src/platform/, so the one `setImmediate` the simulator needs lives here.
 */

/**
 * Resolves on the next turn of the event loop (a `setImmediate` callback), after every promise
 * chain queued before the call has run to its end: Node.js drains the whole microtask queue,
 * including microtasks queued by microtasks, before it runs the next macrotask.
 *
 * It reads no time and carries no value. A simulation that awaits it after each event stays
 * deterministic, because nothing else it owns is queued on the event loop: no timers, no I/O. The
 * order in which its microtasks run is fixed by the code, so one seed gives one run.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
