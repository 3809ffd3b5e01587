import * as net from 'node:net';
import { selectBackend, type Backend, type BackendEvent, DEFAULT_QUEUE_LIMITS } from '../../src';
import { connSlot } from '../../src/backend';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

/** A backend with its events recorded, batch by batch. */
function open(kind: (typeof backends)[number], limits = DEFAULT_QUEUE_LIMITS) {
  const batches: BackendEvent[][] = [];
  const events: BackendEvent[] = [];
  const backend: Backend = selectBackend(kind).create({
    ...limits,
    onEvents: (batch) => {
      batches.push([...batch]);
      events.push(...batch);
    },
  });
  const received = (connId: number) =>
    Buffer.concat(events.flatMap((e) => (e.type === 'data' && e.connId === connId ? [e.bytes] : [])));
  const find = <T extends BackendEvent['type']>(type: T, connId?: number) =>
    events.find((e) => e.type === type && (connId === undefined || e.connId === connId)) as
      | Extract<BackendEvent, { type: T }>
      | undefined;
  return { backend, batches, events, received, find };
}

/** Accepts one raw node:net client and returns both ends. */
async function acceptOne(t: ReturnType<typeof open>) {
  const { listenerId, port } = await t.backend.listen({ host: '127.0.0.1', port: 0 });
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  await waitFor(() => t.find('accept') !== undefined, 'accept');
  const connId = t.find('accept')!.connId;
  return { listenerId, port, socket, connId, fromServer: () => Buffer.concat(chunks) };
}

describe.each(backends)('backend %s', (kind) => {
  const live: Backend[] = [];
  const make = (limits = DEFAULT_QUEUE_LIMITS) => {
    const t = open(kind, limits);
    live.push(t.backend);
    return t;
  };
  afterEach(async () => {
    await Promise.all(live.splice(0).map((b) => b.shutdown()));
  });

  it('accepts, receives and sends bytes, reporting the peer address', async () => {
    const t = make();
    const { socket, connId, fromServer } = await acceptOne(t);
    const accept = t.find('accept')!;
    expect(accept.remoteAddress).toBe('127.0.0.1');
    expect(accept.remotePort).toBe(socket.localPort);

    socket.write('ping');
    await waitFor(() => t.received(connId).toString() === 'ping', 'data');
    expect(t.backend.send(connId, Buffer.from('pong'))).toBe(true);
    await waitFor(() => fromServer().toString() === 'pong', 'reply');
    const stats = t.backend.stats();
    expect(stats.connections).toBe(1);
    expect(stats.bytesIn).toBe(4);
    expect(stats.bytesOut).toBe(4);
    socket.destroy();
  });


  it('sendText queues a string one byte per character, in order with send, under the same limits', async () => {
    const limits = { highWaterMarkBytes: 64 * 1024, lowWaterMarkBytes: 16 * 1024, maxQueueBytes: 8 * 1024 * 1024 };
    const t = make(limits);
    const { socket, connId, fromServer } = await acceptOne(t);
    // Bytes over 0x7f go as themselves (latin1), not as UTF-8; a text larger than the native send arena (4 MiB) goes in pieces.
    const large = 'x'.repeat(5 * 1024 * 1024);
    const expected = Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\n', 'latin1'),
      Buffer.from([1, 2, 3]),
      Buffer.from('caf\u00e9 \u00ff', 'latin1'),
      Buffer.from(large, 'latin1'),
    ]);
    t.backend.sendText(connId, 'HTTP/1.1 200 OK\r\n');
    t.backend.send(connId, Buffer.from([1, 2, 3]));
    t.backend.sendText(connId, 'caf\u00e9 \u00ff');
    // Over the high-water mark: the same answer send gives.
    expect(t.backend.sendText(connId, large)).toBe(false);
    await waitFor(() => fromServer().length >= expected.length, 'the text');
    expect(fromServer().equals(expected)).toBe(true);
    expect(t.backend.stats().bytesOut).toBe(expected.length);
    socket.destroy();
  });
  it('delivers events in batches, not one call per event', async () => {
    const t = make();
    const { listenerId, port } = await t.backend.listen({ host: '127.0.0.1', port: 0 });
    const sockets = Array.from({ length: 20 }, () => net.connect({ host: '127.0.0.1', port }));
    await waitFor(() => t.events.filter((e) => e.type === 'accept').length === 20, '20 accepts');
    expect(t.events.every((e) => e.type !== 'accept' || e.listenerId === listenerId)).toBe(true);
    const before = t.batches.length;
    // Twenty peers write in the same tick: their bytes are ready in one wake-up.
    for (const s of sockets) s.write('x');
    await waitFor(() => t.events.filter((e) => e.type === 'data').length === 20, '20 data events');
    expect(t.batches.length - before).toBeLessThan(5);
    expect(t.backend.stats().batches).toBe(t.batches.length);
    sockets.forEach((s) => s.destroy());
  });

  it('dials out and reports the connect outcome, then carries bytes both ways', async () => {
    const echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const t = make();
    const connId = t.backend.connect('127.0.0.1', (echo.address() as net.AddressInfo).port);
    await waitFor(() => t.find('connect', connId) !== undefined, 'connect');
    expect(t.find('connect', connId)!.error).toBeUndefined();
    t.backend.send(connId, Buffer.from('abc'));
    t.backend.send(connId, Buffer.from('def'));
    await waitFor(() => t.received(connId).toString() === 'abcdef', 'echo');
    t.backend.close(connId, 'abort');
    await waitFor(() => t.find('close', connId) !== undefined, 'close');
    expect(t.find('close', connId)!.reason).toBe('local');
    echo.close();
  });

  it('reports a refused dial as a connect event with an error and nothing else', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const t = make();
    const connId = t.backend.connect('127.0.0.1', port);
    await waitFor(() => t.find('connect', connId) !== undefined, 'connect outcome');
    expect(t.find('connect', connId)!.error?.code).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 50));
    expect(t.events.filter((e) => e.connId === connId)).toHaveLength(1);
  });

  it('sendMany queues one buffer for many connections', async () => {
    const t = make();
    const { port } = await t.backend.listen({ host: '127.0.0.1', port: 0 });
    const got: string[] = Array(5).fill('');
    const sockets = got.map((_, i) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('data', (c) => (got[i] += c.toString()));
      return s;
    });
    await waitFor(() => t.events.filter((e) => e.type === 'accept').length === 5, 'accepts');
    const ids = t.events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    t.backend.sendMany(ids, Buffer.from('tick1;'));
    t.backend.sendMany(ids.slice(0, 2), Buffer.from('tick2;'));
    await waitFor(() => got.filter((g) => g === 'tick1;tick2;').length === 2 && got.filter((g) => g === 'tick1;').length === 3, 'broadcasts');
    expect(t.backend.stats().sends).toBe(7);
    sockets.forEach((s) => s.destroy());
  });

  it('graceful close flushes everything queued before the FIN', async () => {
    const t = make();
    const { socket, connId, fromServer } = await acceptOne(t);
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 32; i++) t.backend.send(connId, chunk);
    t.backend.close(connId, 'graceful');
    await new Promise<void>((r) => socket.on('end', r));
    expect(fromServer().length).toBe(32 * chunk.length);
    await waitFor(() => t.find('close', connId) !== undefined, 'close event');
    expect(t.find('close', connId)!.reason).toBe('local');
  });

  it('reports one close when an abort follows a graceful close in the same tick', async () => {
    // node:net issues the FIN at once when nothing is queued, and libuv
    // cannot reset a socket while that FIN is in flight.
    const t = make();
    const { socket, connId } = await acceptOne(t);
    t.backend.close(connId, 'graceful');
    t.backend.close(connId, 'abort');
    await waitFor(() => t.find('close', connId) !== undefined, 'close event');
    expect(t.find('close', connId)!.reason).toBe('local');
    expect(t.events.filter((e) => e.type === 'close')).toHaveLength(1);
    socket.destroy();
  });

  it('reports a peer FIN as reason peer and a reset as reason error', async () => {
    const t = make();
    const { port } = await t.backend.listen({ host: '127.0.0.1', port: 0 });
    const polite = net.connect({ host: '127.0.0.1', port });
    await waitFor(() => t.events.filter((e) => e.type === 'accept').length === 1, 'first accept');
    const rude = net.connect({ host: '127.0.0.1', port });
    await waitFor(() => t.events.filter((e) => e.type === 'accept').length === 2, 'second accept');
    const [politeId, rudeId] = t.events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    polite.end();
    rude.resetAndDestroy();
    await waitFor(() => t.events.filter((e) => e.type === 'close').length === 2, 'two closes');
    expect(t.find('close', politeId)!.reason).toBe('peer');
    expect(t.find('close', rudeId)!.reason).toBe('error');
    expect(t.find('close', rudeId)!.error?.code).toBe('ECONNRESET');
  });

  it('returns false over the high-water mark, drains at the low one, and closes past the hard limit', async () => {
    const limits = { highWaterMarkBytes: 64 * 1024, lowWaterMarkBytes: 16 * 1024, maxQueueBytes: 8 * 1024 * 1024 };
    const t = make(limits);
    const { socket, connId } = await acceptOne(t);
    socket.pause();
    const chunk = Buffer.alloc(32 * 1024);
    let accepted = 0;
    while (t.backend.send(connId, chunk) && accepted < 1000) accepted++;
    expect(accepted).toBeLessThan(1000);
    expect(t.backend.bufferedAmount(connId)).toBeGreaterThan(limits.highWaterMarkBytes);
    socket.resume();
    await waitFor(() => t.find('drain', connId) !== undefined, 'drain');
    expect(t.backend.bufferedAmount(connId)).toBeLessThanOrEqual(limits.lowWaterMarkBytes);

    socket.pause();
    for (let i = 0; i < 2000 && t.find('close', connId) === undefined; i++) {
      t.backend.send(connId, chunk);
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => t.find('close', connId) !== undefined, 'backpressure close');
    expect(t.find('close', connId)!.reason).toBe('backpressure');
    socket.destroy();
  });

  it('gives open connections distinct slots and reuses a freed slot under a new id', async () => {
    const t = make();
    const { port } = await t.backend.listen({ host: '127.0.0.1', port: 0 });
    const accepted = () => t.events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    const dial = () => net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    const sockets = [dial(), dial(), dial()];
    await waitFor(() => accepted().length === 3, 'three accepts');
    const first = accepted();
    expect(new Set(first.map(connSlot)).size).toBe(3);

    sockets[0].resetAndDestroy();
    await waitFor(() => t.find('close', first[0]) !== undefined, 'close');
    sockets.push(dial());
    await waitFor(() => accepted().length === 4, 'fourth accept');
    const reused = accepted()[3];
    expect(reused).not.toBe(first[0]);
    expect(connSlot(reused)).toBe(connSlot(first[0]));
    // The old id names nothing now.
    expect(t.backend.send(first[0], Buffer.from('x'))).toBe(false);
    expect(t.backend.bufferedAmount(first[0])).toBe(0);
    sockets.forEach((socket) => socket.destroy());
  });

  it('routes ids past 2^31 (a slot reused thousands of times) for send, sendMany and close', async () => {
    // Thousands of connections one after another: woken by the events
    // themselves rather than by polling, or this takes half a minute.
    let lastAccepted = -1;
    const closed = new Set<number>();
    let wake = () => undefined as void;
    const backend = selectBackend(kind).create({
      ...DEFAULT_QUEUE_LIMITS,
      onEvents: (batch) => {
        for (const e of batch) {
          if (e.type === 'accept') lastAccepted = e.connId;
          if (e.type === 'close') closed.add(e.connId);
        }
        wake();
      },
    });
    live.push(backend);
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 5000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
    };
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    // One connection at a time, so each reuses the slot the last one freed.
    let id = -1;
    for (let i = 0; id < 2 ** 31; i++) {
      if (i === 3000) throw new Error(`ids stayed under 2^31 after ${i} connections (last ${id})`);
      const previous = lastAccepted;
      const socket = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
      await until(() => lastAccepted !== previous, `accept ${i + 1}`);
      id = lastAccepted;
      if (id < 2 ** 31) {
        socket.resetAndDestroy();
        await until(() => closed.has(id), `close ${i + 1}`);
        continue;
      }
      const received: Buffer[] = [];
      socket.on('data', (chunk) => received.push(chunk));
      expect(backend.send(id, Buffer.from('one,'))).toBe(true);
      backend.sendMany([id], Buffer.from('two'));
      await waitFor(() => Buffer.concat(received).toString() === 'one,two', 'both sends');
      backend.close(id, 'abort');
      await until(() => closed.has(id), 'the close of the last id');
      socket.destroy();
    }
    expect(backend.stats().connections).toBe(0);
  }, 60_000);

  it('stops accepting after closeListener and releases everything on shutdown', async () => {
    const t = make();
    const { listenerId, port, socket } = await acceptOne(t);
    t.backend.closeListener(listenerId);
    await waitFor(() => t.backend.stats().listeners === 0, 'listener closed');
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('connect', () => resolve('connected'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    await t.backend.shutdown();
    await new Promise<void>((r) => (socket.destroyed ? r() : socket.on('close', () => r())));
    await waitFor(() => t.backend.stats().connections === 0, 'connections released');
  });
});
