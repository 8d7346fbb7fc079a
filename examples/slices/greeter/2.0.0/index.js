// greeter 2.0.0: the healthy new version of the example slice. It answers differently from 1.0.0
// (so a caller can see which version served it) and counts the greetings of this instance.
// A slice module's default export is a factory: (context) => instance, where context is
// { nodeId, instanceId, groupId, artifactId, version, logger }.

const VERSION = '2.0.0';

export default function createGreeter(context) {
  const log = context.logger.child({ slice: `${context.groupId}:${context.artifactId}:${VERSION}`, instanceId: context.instanceId });
  let greetings = 0;
  return {
    async start() {
      log.info({ nodeId: context.nodeId }, 'greeter started');
    },

    async stop() {
      log.info({ greetings }, 'greeter stopped');
    },

    async health() {
      return { healthy: true };
    },

    async hello(request) {
      const name = nameOf(request);
      greetings++;
      return { message: `Welcome, ${name}! Greetings from greeter 2.`, version: VERSION, greeting: greetings };
    },
  };
}

function nameOf(request) {
  const name = request?.name ?? 'world';
  if (typeof name !== 'string') throw new TypeError(`hello: name must be a string, got ${typeof name}`);
  return name;
}
