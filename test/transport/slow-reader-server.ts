// The server for test/transport/slow-reader.test.ts, in a process of its own
// so that its RSS is its own: an echo server made with the public API,
// reporting its sessions' closes and its memory to the parent over IPC.
// Usage: fork with -r ts-node/register/transpile-only, argv [backend, maxQueueBytes].
import { createServer, type BackendKind } from '../../src';

const [kind, maxQueueBytes] = [process.argv[2] as BackendKind, Number(process.argv[3])];
const server = createServer({ backend: kind, limits: { maxQueueBytes } });
server.handle(1, (_session, bytes) => bytes);
server.on('sessionClose', (_session, reason) => process.send!({ type: 'close', reason }));

// RSS is sampled, not only read at the end: what matters is the most the
// server ever held, and the slow peer's memory is released once it is closed.
let baseline = 0;
let peak = 0;
const sample = () => {
  peak = Math.max(peak, process.memoryUsage().rss);
};
setInterval(sample, 10);

process.on('message', (message) => {
  if (message === 'baseline') {
    baseline = process.memoryUsage().rss;
    peak = baseline;
    process.send!({ type: 'baseline', baseline });
  } else if (message === 'report') {
    sample();
    process.send!({ type: 'report', baseline, peak });
  }
});
process.on('disconnect', () => process.exit(0));

server.listen({ host: '127.0.0.1', port: 0 }).then(({ port }) => process.send!({ type: 'listening', port }));
