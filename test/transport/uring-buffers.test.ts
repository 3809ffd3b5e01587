import * as net from 'node:net';
import { availableBackends, DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { waitFor } from '../support/wait';

const onUring = availableBackends().includes('uring') ? describe : describe.skip;

onUring('uring receive buffer pool', () => {
  let backend: Backend;
  afterEach(() => backend.shutdown());

  it('grows when a burst empties it, loses no byte, and shrinks back when load falls', async () => {
    const received = new Map<number, number>();
    backend = selectBackend('uring').create({
      ...DEFAULT_QUEUE_LIMITS,
      onEvents: (batch: readonly BackendEvent[]) => {
        for (const e of batch) if (e.type === 'data') received.set(e.connId, (received.get(e.connId) ?? 0) + e.bytes.length);
      },
    });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const peers = await Promise.all(
      Array.from({ length: 200 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      })),
    );
    await waitFor(() => backend.stats().connections === 200, '200 accepted');
    const initial = backend.stats().recvBuffers!;

    // 200 peers at once, 256 KiB each: far more than the initial pool holds.
    const chunk = Buffer.alloc(256 * 1024, 1);
    for (const s of peers) s.write(chunk);
    const total = () => [...received.values()].reduce((a, b) => a + b, 0);
    await waitFor(() => total() === 200 * chunk.length, 'every byte', 10_000);
    const grown = backend.stats();
    expect(grown.recvBufferShortages).toBeGreaterThan(0);
    expect(grown.recvBuffers).toBeGreaterThan(initial);

    // A trickle for a few seconds: the pool's target halves each quiet second
    // and buffers coming back from reads are freed.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline && backend.stats().recvBuffers! >= grown.recvBuffers!) {
      for (const s of peers) s.write('x');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(backend.stats().recvBuffers).toBeLessThan(grown.recvBuffers!);
    for (const s of peers) s.destroy();
  });
});
