/**
 * Runs one seed on the target its options name: `node` (the node runtime, runtime/simulation.ts)
 * or `raft` (the bare Raft core, simulation.ts). Both return the same kind of result.
 */
import type { SimOptions } from './options.ts';
import type { RunHooks, SimResult } from './outcome.ts';
import { runNodeSimulation } from './runtime/simulation.ts';
import { runSimulation } from './simulation.ts';

export type { RunHooks, SimResult } from './outcome.ts';

/** Runs `options.seed` on `options.target` in-process. */
export async function runTarget(options: SimOptions, hooks: RunHooks = {}): Promise<SimResult> {
  return options.target === 'node' ? runNodeSimulation(options, hooks) : runSimulation(options, hooks);
}
