import { createServer, type BackendChoice } from '../../src';
import { exitWithParent } from '../ipc';
import { SoakPackets as P, type SoakSample, type SoakServerMessage } from './protocol';

/**
 * The server under soak, in a process of its own so its memory is its own
 * (started by bench/soak.ts with --expose-gc): echo, a room that relays the
 * ticker's packets to every receiver, and a memory sample on request, taken
 * right after a full collection so that garbage not yet collected does not
 * pass for growth.
 */

const backend = (process.argv[2] ?? 'auto') as BackendChoice;
let faults = 0;
const server = createServer({
  backend,
  limits: { idleTimeoutMs: 30_000 },
  onError: (error) => {
    faults++;
    console.error('soak server: fault in a handler:', error);
  },
});
const room = server.room('tick');
const closes: Record<string, number> = {};

server.on('sessionClose', (_session, reason) => {
  closes[reason] = (closes[reason] ?? 0) + 1;
});
server.handle(P.ECHO, (_session, bytes: Buffer) => bytes);
server.handle(P.JOIN, (session) => {
  room.join(session);
});
server.handle(P.TICK, (_session, bytes: Buffer) => {
  room.broadcast(P.TICK, bytes);
});

function send(message: SoakServerMessage): void {
  if (process.connected) process.send!(message);
}

function sample(): SoakSample {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  const stats = server.stats();
  return {
    rss,
    heapUsed,
    external,
    arrayBuffers,
    sessions: stats.sessions,
    closes: { ...closes },
    faults,
    recvBuffers: stats.backend.recvBuffers,
    queuedBytes: stats.backend.queuedBytes,
  };
}

exitWithParent();
process.on('SIGTERM', () => process.exit(0));
process.on('message', (message: { type: string }) => {
  if (message.type === 'sample') send({ type: 'sample', sample: sample() });
});
void server
  .listen({ host: '127.0.0.1', port: 0, backlog: 1024 })
  .then(({ port }) => send({ type: 'listening', port, backend: server.backend.kind }))
  .catch((err: Error) => {
    console.error(err);
    process.exit(1);
  });
