import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { backends } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const WORKER = path.join(__dirname, '../support/worker-server.js');
const ROUNDS = 5;
const PEERS = 20;

describe.each(backends)('a worker thread serving on %s', (backend) => {
  it(`can be terminated under load (${ROUNDS} times): the process carries on and its peers see the close`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const worker = new Worker(WORKER, { workerData: { backend, port: 0, reusePort: false } });
      let pump: NodeJS.Timeout | undefined;
      const peers: RawPeer[] = [];
      try {
        const port = await new Promise<number>((resolve, reject) => {
          worker.once('message', (m: { type: string; port: number; message?: string }) =>
            m.type === 'listening' ? resolve(m.port) : reject(new Error(m.message)),
          );
          worker.once('error', reject);
        });
        peers.push(...(await Promise.all(Array.from({ length: PEERS }, () => RawPeer.connect(port)))));
        // Keep every peer sending, so the worker's reactor is busy delivering when it is stopped.
        pump = setInterval(() => {
          for (const peer of peers) if (!peer.isClosed) peer.sendPacket(1, Buffer.alloc(64, round));
        }, 1);
        await waitFor(() => peers.every((p) => p.packets.length > 5), 'echoes from the worker');
        // Terminating mid-batch must drop the batch, not abort the process (it did once).
        expect(await worker.terminate()).toBe(1);
        await waitFor(() => peers.every((p) => p.isClosed), 'every peer to see its connection end', 10_000);
      } finally {
        clearInterval(pump);
        for (const peer of peers) peer.socket.destroy();
        await worker.terminate();
      }
    }
  }, 60_000);
});
