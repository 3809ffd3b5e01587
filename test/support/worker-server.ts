import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createServer, type BackendKind } from '../../src';

/**
 * One echo server in one worker thread, listening with SO_REUSEPORT (unless
 * told not to) on the port it is given (0 for the first one), as each worker
 * of a multi-core server would. It tells the test its port and, when asked, what it served.
 */
const { backend, port, reusePort = true } = workerData as { backend: BackendKind; port: number; reusePort?: boolean };
const server = createServer({ backend });
let sessionsServed = 0;
server.on('session', () => sessionsServed++);
server.handle(1, (_session, payload: Buffer) => payload);

void server.listen({ host: '127.0.0.1', port, reusePort }).then(
  (address) => parentPort!.postMessage({ type: 'listening', port: address.port, threadId, backend: server.backend.kind }),
  (err: Error & { code?: string }) => parentPort!.postMessage({ type: 'error', message: err.message, code: err.code }),
);

parentPort!.on('message', async (message: { type: string }) => {
  if (message.type !== 'stop') return;
  const { packetsIn } = server.stats();
  await server.close({ drainMs: 500 });
  parentPort!.postMessage({ type: 'stopped', sessionsServed, packetsIn });
  parentPort!.close();
});
