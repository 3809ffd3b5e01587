import * as net from 'node:net';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

describe.each(backends)('backend %s sendMany', (kind) => {
  let backend: Backend;
  let peer: net.Socket;
  afterEach(async () => {
    peer.destroy();
    await backend.shutdown();
  });

  it('counts each byte of a broadcast to more recipients than one command holds exactly once', async () => {
    const events: BackendEvent[] = [];
    backend = selectBackend(kind).create({ ...DEFAULT_QUEUE_LIMITS, onEvents: (batch) => events.push(...batch) });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    peer = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    let received = 0;
    peer.on('data', (chunk) => (received += chunk.length));
    await waitFor(() => events.some((e) => e.type === 'accept'), 'accept');
    const connId = events.find((e) => e.type === 'accept')!.connId;

    // 40,000 recipients (one peer named again and again) take two commands
    // on a native backend, with a flush between them: 40,000 bytes queued
    // in all, well under the 64 KiB high-water mark.
    const recipients = 40_000;
    backend.sendMany(new Array<number>(recipients).fill(connId), Buffer.from([1]));
    expect(backend.bufferedAmount(connId)).toBeLessThanOrEqual(recipients);
    expect(backend.send(connId, Buffer.from([2]))).toBe(true);
    await waitFor(() => received === recipients + 1, `${recipients + 1} bytes (have ${received})`, 90_000);
    expect(events.some((e) => e.type === 'close')).toBe(false);
  }, 120_000);
});
