import * as net from 'node:net';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

describe.each(backends)('backend %s sendMany', (kind) => {
  let backend: Backend;
  let peer: net.Socket;
  let others: net.Socket[] = [];
  afterEach(async () => {
    peer.destroy();
    for (const other of others.splice(0)) other.destroy();
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

  it('sends to the first `count` ids of a scratch array, and to none past them', async () => {
    const events: BackendEvent[] = [];
    backend = selectBackend(kind).create({ ...DEFAULT_QUEUE_LIMITS, onEvents: (batch) => events.push(...batch) });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const sockets = [0, 1, 2].map(() => net.connect({ host: '127.0.0.1', port }).on('error', () => undefined));
    [peer, ...others] = sockets;
    const received = sockets.map(() => [] as Buffer[]);
    sockets.forEach((socket, i) => socket.on('data', (chunk) => received[i].push(chunk)));
    await waitFor(() => events.filter((e) => e.type === 'accept').length === 3, 'three accepts');
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => (s.localPort !== undefined ? resolve() : s.once('connect', () => resolve())))));
    // The accepted ids in the order of the sockets, by the peer's port.
    const ids = sockets.map((s) => events.find((e) => e.type === 'accept' && e.remotePort === s.localPort)!.connId);

    // A room's scratch array, longer than this broadcast: only the first two are recipients.
    const scratch = new Float64Array(8);
    scratch.set([ids[0], ids[1], ids[2]]);
    backend.sendMany(scratch, Buffer.from('room'), 2);
    // Then the third gets its own packet; it must be the only thing it sees.
    backend.send(ids[2], Buffer.from('own'));
    // 11 bytes in all when it is right; more when the third got the broadcast too.
    const total = () => received.reduce((n, r) => n + Buffer.concat(r).length, 0);
    await waitFor(() => total() >= 11, 'the broadcast and the third peer\'s own packet', 30_000);
    expect(received.map((r) => Buffer.concat(r).toString())).toEqual(['room', 'room', 'own']);
  }, 60_000);
});
