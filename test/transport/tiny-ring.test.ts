import * as net from 'node:net';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const PEERS = 200;
const ECHO_BYTES = 4096;
const BROADCASTS = 10;
const BROADCAST_BYTES = 1024;

// A submission queue of 2 entries on uring (the variable is read when a
// reactor is made; iocp and net ignore it): hundreds of operations a tick
// must find the queue full again and again, and none may be lost.
beforeAll(() => {
  process.env.RINGPORT_TEST_URING_QUEUE_DEPTH = '2';
});
afterAll(() => {
  delete process.env.RINGPORT_TEST_URING_QUEUE_DEPTH;
});

describe.each(backends)('backend %s with a tiny submission queue', (kind) => {
  let backend: Backend;
  const peers: net.Socket[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await backend.shutdown();
  });

  it(`carries ${PEERS} connections' echoes and broadcasts, then closes them all`, async () => {
    const events: BackendEvent[] = [];
    backend = selectBackend(kind).create({
      ...DEFAULT_QUEUE_LIMITS,
      onEvents: (batch) => {
        for (const e of batch) if (e.type === 'data') backend.send(e.connId, e.bytes);
        events.push(...batch);
      },
    });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const received = new Array<number>(PEERS).fill(0);
    const ended = new Array<boolean>(PEERS).fill(false);
    for (let i = 0; i < PEERS; i++) {
      const peer = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
      peer.on('data', (chunk) => (received[i] += chunk.length));
      peer.on('end', () => (ended[i] = true));
      peers.push(peer);
    }
    const accepted = () => events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    await waitFor(() => accepted().length === PEERS, `${PEERS} accepts`, 60_000);

    // Every peer's echo and every broadcast land in the same few ticks.
    for (const peer of peers) peer.write(Buffer.alloc(ECHO_BYTES, 1));
    const ids = accepted();
    for (let b = 0; b < BROADCASTS; b++) backend.sendMany(ids, Buffer.alloc(BROADCAST_BYTES, 2));
    const expected = ECHO_BYTES + BROADCASTS * BROADCAST_BYTES;
    await waitFor(() => received.every((n) => n === expected), 'every echo and broadcast', 60_000);

    for (const connId of ids) backend.close(connId, 'graceful');
    await waitFor(() => events.filter((e) => e.type === 'close').length === PEERS && ended.every(Boolean), 'every close', 60_000);
    expect(events.filter((e) => e.type === 'close').every((e) => e.type === 'close' && e.reason === 'local')).toBe(true);
    expect(received.every((n) => n === expected)).toBe(true);
  }, 120_000);
});
