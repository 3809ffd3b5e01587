import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createServer, ErrorCodes, type BackendKind } from '../../src';
import { reusePortSupport } from '../../src/backend';
import { backends } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const WORKER = path.join(__dirname, '../support/worker-server.js');
const CLIENTS = 64;

type WorkerMessage =
  | { type: 'listening'; port: number; threadId: number; backend: BackendKind }
  | { type: 'error'; message: string; code?: string }
  | { type: 'stopped'; sessionsServed: number; packetsIn: number };

function nextMessage(worker: Worker): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

async function startWorker(backend: BackendKind, port: number, workers: Worker[]): Promise<{ worker: Worker; port: number }> {
  const worker = new Worker(WORKER, { workerData: { backend, port } });
  workers.push(worker);
  const message = await nextMessage(worker);
  if (message.type !== 'listening') throw new Error(`worker did not listen: ${JSON.stringify(message)}`);
  expect(message.backend).toBe(backend);
  return { worker, port: message.port };
}

describe.each(backends)('SO_REUSEPORT across worker threads on %s', (backend) => {
  const support = reusePortSupport(backend);

  if (support.supported) {
    it(`spreads ${CLIENTS} clients over two workers' reactors, each serving its own`, async () => {
      const workers: Worker[] = [];
      const peers: RawPeer[] = [];
      try {
        const first = await startWorker(backend, 0, workers);
        const second = await startWorker(backend, first.port, workers);
        expect(second.port).toBe(first.port);
        peers.push(...(await Promise.all(Array.from({ length: CLIENTS }, () => RawPeer.connect(first.port)))));
        peers.forEach((peer, i) => peer.sendPacket(1, Buffer.from(`client ${i}`)));
        await waitFor(() => peers.every((p) => p.packets.length === 1), 'an echo for every client', 10_000);
        peers.forEach((peer, i) => expect(peer.packets[0].payload.toString()).toBe(`client ${i}`));
        for (const peer of peers.splice(0)) peer.socket.destroy();
        const served = await Promise.all(
          workers.map(async (worker) => {
            worker.postMessage({ type: 'stop' });
            const message = await nextMessage(worker);
            if (message.type !== 'stopped') throw new Error(`worker did not stop: ${JSON.stringify(message)}`);
            return message;
          }),
        );
        // The kernel hashes each connection to one listener: with 64 clients
        // both get some (all on one would be a 1 in 2^63 chance).
        expect(served.map((s) => s.sessionsServed)).not.toContain(0);
        expect(served[0].sessionsServed + served[1].sessionsServed).toBe(CLIENTS);
        expect(served[0].packetsIn + served[1].packetsIn).toBe(CLIENTS);
      } finally {
        for (const peer of peers) peer.socket.destroy();
        // A worker left by a failure above must not keep jest alive; after a clean stop this is a no-op.
        await Promise.all(workers.map((worker) => worker.terminate()));
      }
    });
  } else {
    it(`refuses reusePort with a clear error (${support.reason})`, async () => {
      const server = createServer({ backend });
      try {
        const err = await server.listen({ host: '127.0.0.1', port: 0, reusePort: true }).then(
          () => undefined,
          (e: unknown) => e as Error & { code?: string; cause?: Error & { code?: string } },
        );
        expect(err?.code).toBe(ErrorCodes.LISTEN_FAILED);
        expect(err?.cause?.code).toBe('ENOTSUP');
        expect(err?.message).toContain('ENOTSUP');
      } finally {
        await server.close();
      }
    });
  }
});
