import * as net from 'node:net';
import * as os from 'node:os';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const PEERS = 200;
const BURST_BYTES = 256 * 1024;

/** Taking unused buffers back out of the ring reads the kernel's head (IORING_REGISTER_PBUF_STATUS), Linux 6.8. */
function kernelCanRetract(): boolean {
  const [major, minor] = os.release().split('.').map((part) => parseInt(part, 10));
  return process.platform === 'linux' && (major > 6 || (major === 6 && minor >= 8));
}

describe.each(backends)('backend %s receive memory after a burst', (kind) => {
  let backend: Backend;
  const peers: net.Socket[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await backend.shutdown();
  });

  it('takes every byte, grows its receive pool by what the shortage needed, and gives it back while idle', async () => {
    let received = 0;
    backend = selectBackend(kind).create({
      ...DEFAULT_QUEUE_LIMITS,
      onEvents: (batch) => {
        for (const e of batch) if (e.type === 'data') received += e.bytes.length;
      },
    });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    for (let i = 0; i < PEERS; i++) peers.push(net.connect({ host: '127.0.0.1', port }).on('error', () => undefined));
    await waitFor(() => backend.stats().connections === PEERS, `${PEERS} accepted`, 30_000);
    const before = backend.stats();
    const initial = before.recvBuffers ?? 0;

    // Far more than the initial pool holds, all at once.
    for (const peer of peers) peer.write(Buffer.alloc(BURST_BYTES, 1));
    await waitFor(() => received === PEERS * BURST_BYTES, 'every byte', 60_000);
    // net and iocp hold no receive pool (iocp reads after a zero-byte receive).
    if (initial === 0) return;

    const grown = backend.stats();
    const shortages = grown.recvBufferShortages! - before.recvBufferShortages!;
    expect(shortages).toBeGreaterThan(0);
    // One buffer for each receive that found the ring empty, not a doubling per shortage.
    expect(grown.recvBuffers! - initial).toBeGreaterThan(0);
    expect(grown.recvBuffers! - initial).toBeLessThanOrEqual(shortages);

    // Idle now: the pool returns to its initial size, including the buffers
    // that sit unused in the ring, which only the reactor can take back.
    if (!kernelCanRetract()) return;
    await waitFor(() => backend.stats().recvBuffers! <= initial, `the pool back at ${initial} (is ${backend.stats().recvBuffers})`, 60_000);
  }, 120_000);
});
