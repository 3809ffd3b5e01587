import * as net from 'node:net';
import { intFlag, parseFlags } from '../flags';

export interface LoadFlags {
  port: number;
  warmupMs: number;
  durationMs: number;
}

/** `--port` (required), `--warmup-ms`, `--duration-ms`, as every load generator takes them. */
export function loadFlags(argv: readonly string[]): LoadFlags {
  const flags = parseFlags(argv, { port: '0', 'warmup-ms': '1000', 'duration-ms': '5000' });
  return {
    port: intFlag(flags, 'port', 1),
    warmupMs: intFlag(flags, 'warmup-ms', 0),
    durationMs: intFlag(flags, 'duration-ms', 1),
  };
}

// Dialling in batches keeps the SYNs within the listener's backlog (511 in Node):
// an overflowing backlog drops SYNs, and a retried SYN costs a whole second.
const DIAL_BATCH = 100;
const CONNECT_TIMEOUT_MS = 10_000;

/** Opens `count` connections to 127.0.0.1:`port`, resolving once all are up. */
export async function connectAll(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  for (let first = 0; first < count; first += DIAL_BATCH) {
    const batch: Promise<net.Socket>[] = [];
    for (let i = first; i < Math.min(count, first + DIAL_BATCH); i++) batch.push(dial(port, deadline - Date.now()));
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

function dial(port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to 127.0.0.1:${port} timed out`));
    }, Math.max(1, timeoutMs));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
