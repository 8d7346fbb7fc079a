// greeter 2.1.0-bad: a deliberately broken release, for demonstrating the health gate and
// automatic rollback. Every call takes 300 ms longer than it should, and every 5th call of an
// instance fails (20% of calls; deterministic, counted per instance). Health still reports
// healthy: the damage shows only in the error rate and latency of real calls.
// A slice module's default export is a factory: (context) => instance, where context is
// { nodeId, instanceId, groupId, artifactId, version, logger }.

const VERSION = '2.1.0-bad';
const ADDED_LATENCY_MS = 300;
const FAIL_EVERY = 5;

export default function createGreeter(context) {
  const log = context.logger.child({ slice: `${context.groupId}:${context.artifactId}:${VERSION}`, instanceId: context.instanceId });
  let calls = 0;
  return {
    async start() {
      log.info({ nodeId: context.nodeId }, 'greeter started');
    },

    async stop() {
      log.info({ calls }, 'greeter stopped');
    },

    async health() {
      return { healthy: true };
    },

    async hello(request) {
      calls++;
      const call = calls;
      await delay(ADDED_LATENCY_MS);
      if (call % FAIL_EVERY === 0) {
        throw new Error(`greeter ${VERSION}: call ${call} failed on purpose (every ${FAIL_EVERY}th call of this instance fails)`);
      }
      const name = nameOf(request);
      return { message: `Welcome, ${name}! Greetings from greeter 2.`, version: VERSION, greeting: call };
    },
  };
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nameOf(request) {
  const name = request?.name ?? 'world';
  if (typeof name !== 'string') throw new TypeError(`hello: name must be a string, got ${typeof name}`);
  return name;
}
