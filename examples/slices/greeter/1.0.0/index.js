// greeter 1.0.0: the example slice an update starts from.
// A slice module's default export is a factory: (context) => instance, where context is
// { nodeId, instanceId, groupId, artifactId, version, logger }. The instance serves the methods
// of slice.json ("hello") and the lifecycle hooks start, stop and health.

const VERSION = '1.0.0';

export default function createGreeter(context) {
  const log = context.logger.child({ slice: `${context.groupId}:${context.artifactId}:${VERSION}`, instanceId: context.instanceId });
  return {
    async start() {
      log.info({ nodeId: context.nodeId }, 'greeter started');
    },

    async stop() {
      log.info({}, 'greeter stopped');
    },

    async health() {
      return { healthy: true };
    },

    async hello(request) {
      const name = nameOf(request);
      return { message: `Hello, ${name}!`, version: VERSION };
    },
  };
}

function nameOf(request) {
  const name = request?.name ?? 'world';
  if (typeof name !== 'string') throw new TypeError(`hello: name must be a string, got ${typeof name}`);
  return name;
}
