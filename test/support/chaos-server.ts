import { createServer, type Session } from '../../src';
import {
  ChaosPackets as P,
  type ChaosServerConfig,
  type ChaosStats,
  type ChildMessage,
  type MemorySample,
  type ParentMessage,
} from './chaos-protocol';

/**
 * The chaos suite's server, in a process of its own so that its memory and
 * file descriptors are its own (started by chaos-child.ts, TypeScript loaded
 * with ts-node/register/transpile-only):
 *
 *   node -r ts-node/register/transpile-only test/support/chaos-server.ts '<ChaosServerConfig as JSON>'
 *
 * It is a plain ringport server (see ChaosPackets for what it handles) that
 * tells its parent its port, and answers requests for its counters and
 * memory over the IPC channel. It exits when the parent goes away.
 */

const config = JSON.parse(process.argv[2] ?? '{}') as ChaosServerConfig;

function send(message: ChildMessage): void {
  if (process.connected) process.send!(message);
}

let lastMemory: MemorySample = { rss: 0, heapUsed: 0, arrayBuffers: 0, external: 0 };
function memory(): MemorySample {
  try {
    const { rss, heapUsed, arrayBuffers, external } = process.memoryUsage();
    lastMemory = { rss, heapUsed, arrayBuffers, external };
  } catch {
    // Reading RSS opens /proc/self/statm, which fails while every descriptor is in use (the EMFILE test): keep the last figures.
  }
  return lastMemory;
}

let peak = memory();
function sample(): void {
  const now = memory();
  peak = {
    rss: Math.max(peak.rss, now.rss),
    heapUsed: Math.max(peak.heapUsed, now.heapUsed),
    arrayBuffers: Math.max(peak.arrayBuffers, now.arrayBuffers),
    external: Math.max(peak.external, now.external),
  };
}
setInterval(sample, config.sampleMs ?? 10).unref();

const faults: string[] = [];
const server = createServer({
  backend: config.backend,
  limits: config.limits,
  framing: config.framing,
  onError: (error) => {
    if (faults.length < 20) faults.push(String((error as Error)?.stack ?? error));
  },
});
let accepted = 0;
const closes: Record<string, number> = {};
const watchers = new Set<Session>();
const log: Array<number | 'login'> = [];
const news = Buffer.alloc(config.newsBytes ?? 512, 0x6e);

server.on('session', () => accepted++);
server.on('sessionClose', (session, reason) => {
  closes[reason] = (closes[reason] ?? 0) + 1;
  watchers.delete(session);
});
server.handle(P.ECHO, (_session, bytes: Buffer) => {
  for (const watcher of watchers) if (watcher.isOpen) watcher.send(P.NEWS, news);
  return bytes;
});
server.handle(P.WATCH, (session) => {
  watchers.add(session);
});
server.handle(P.RECORD, (_session, bytes: Buffer) => {
  log.push(bytes.readUInt32LE(0));
  return bytes;
});
server.handle(P.LOGIN, () => {
  log.push('login');
});

/** `count` numbered packets for every open session, so that a close has something to flush. */
function queueSequence(count: number): void {
  const payload = Buffer.alloc(256);
  for (const session of server.sessions.values()) {
    for (let seq = 0; seq < count && session.isOpen; seq++) {
      payload.writeUInt32LE(seq, 0);
      session.send(P.SEQ, payload);
    }
  }
}

function stats(): ChaosStats {
  sample();
  return {
    sessions: server.sessions.size,
    accepted,
    closes: { ...closes },
    faults,
    backend: server.stats().backend,
    memory: memory(),
    peak,
    maxRss: process.resourceUsage().maxRSS * 1024,
    log,
  };
}

process.on('disconnect', () => process.exit(0));
process.on('message', (message: ParentMessage) => {
  void (async () => {
    if (message.type === 'gc') (globalThis as { gc?: () => void }).gc?.();
    if (message.type === 'mark') peak = memory();
    if (message.type === 'close' || message.type === 'closeSessions') queueSequence(message.packets ?? 0);
    if (message.type === 'closeSessions') for (const session of server.sessions.values()) session.close();
    if (message.type === 'close') await server.close({ drainMs: message.drainMs });
    send({ type: 'reply', id: message.id, stats: stats() });
  })();
});

server.listen({ host: '127.0.0.1', port: config.port ?? 0, backlog: config.backlog }).then(
  ({ port }) => send({ type: 'listening', port, backend: server.backend.kind, pid: process.pid }),
  (err: Error) => {
    send({ type: 'failed', message: err.message });
    process.exitCode = 1;
    process.disconnect?.();
  },
);
