// greeter 2.2.0-sick: a release that looks fine at first and then loses a dependency. Each
// instance serves HTTP on 127.0.0.1 (an ephemeral port, published as `httpPort` so that the
// node's `http` health check finds it). `/healthz` answers 200 "ok" for the first 8 seconds after
// start(), then 503 "database connection lost". Calls keep succeeding, fast: only the health
// check sees the problem, and the update's health gate rolls the release back because of it.
// A slice module's default export is a factory: (context) => instance, where context is
// { nodeId, instanceId, groupId, artifactId, version, logger }.
import { createServer } from 'node:http';

const VERSION = '2.2.0-sick';
const HEALTHY_FOR_MS = Number(process.env.GREETER_SICK_AFTER_MS ?? 8000);

export default function createGreeter(context) {
  const log = context.logger.child({ slice: `${context.groupId}:${context.artifactId}:${VERSION}`, instanceId: context.instanceId });
  let startedAt = 0;
  let calls = 0;
  const server = createServer((request, response) => {
    if (request.url !== '/healthz') {
      response.writeHead(404).end('not found');
      return;
    }
    const healthy = Date.now() - startedAt < HEALTHY_FOR_MS;
    response.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(healthy ? 'ok' : 'database connection lost');
  });
  const instance = {
    httpPort: 0,

    async start() {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      instance.httpPort = server.address().port;
      startedAt = Date.now();
      log.info({ nodeId: context.nodeId, httpPort: instance.httpPort }, 'greeter started');
    },

    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
      log.info({ calls }, 'greeter stopped');
    },

    async health() {
      return { healthy: true };
    },

    async hello(request) {
      calls++;
      const name = request?.name ?? 'world';
      if (typeof name !== 'string') throw new TypeError(`hello: name must be a string, got ${typeof name}`);
      return { message: `Welcome, ${name}! Greetings from greeter 2.`, version: VERSION, greeting: calls };
    },
  };
  return instance;
}
