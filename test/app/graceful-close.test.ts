import * as net from 'node:net';
import { createServer, ErrorCodes, type CloseReason, type Server, type ServerOptions, type Session } from '../../src';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const DATA = 1;

/** Dials `port` once more and resolves with the error code the dial failed with. */
function dialError(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error(`port ${port} still accepts connections`));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'no code'));
  });
}

/** Resolves with how many milliseconds `promise` took; rejects if it takes over `timeoutMs`. */
async function timed(promise: Promise<unknown>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([promise, timeout]);
    return Date.now() - started;
  } finally {
    clearTimeout(timer);
  }
}

/** A payload that names its peer and sequence number, so loss and reordering both show. */
function payload(peerIndex: number, seq: number, bytes: number): Buffer {
  const p = Buffer.alloc(bytes, (peerIndex * 31 + seq) & 0xff);
  p.writeUInt32LE(peerIndex, 0);
  p.writeUInt32LE(seq, 4);
  return p;
}

describe.each(matrix)('server.close on %s over %s', (backend, protocol) => {
  let server: Server | undefined;
  let port: number;
  let closes: Map<Session, CloseReason>;
  const peers: RawPeer[] = [];

  async function start(options: Omit<ServerOptions, 'backend'> = {}): Promise<Server> {
    const s = createServer({ backend, ...options });
    server = s;
    closes = new Map();
    s.on('sessionClose', (session, reason) => closes.set(session, reason));
    ({ port } = await listen(s, protocol));
    return s;
  }

  async function dial(count: number): Promise<Array<{ peer: RawPeer; session: Session }>> {
    const dialled = await Promise.all(Array.from({ length: count }, () => RawPeer.connect(port, { protocol })));
    peers.push(...dialled);
    const sessionOf = (peer: RawPeer) =>
      [...server!.sessions.values()].find((s) => s.remotePort === peer.socket.localPort);
    await waitFor(() => dialled.every((peer) => sessionOf(peer) !== undefined), `${count} accepted sessions`);
    return dialled.map((peer) => ({ peer, session: sessionOf(peer)! }));
  }

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    // Returns the test's own close promise when the test already closed the server.
    await server?.close({ drainMs: 100 });
    server = undefined;
  });

  it('delivers every queued packet to every peer, in order, before closing each with shutdown', async () => {
    const s = await start();
    const peerCount = 20;
    const perPeer = 50;
    const payloadBytes = 8 * 1024;
    const pairs = await dial(peerCount);
    // What each peer held when its socket closed, and whether it closed by a clean end of stream.
    const atClose = pairs.map(
      ({ peer }) =>
        new Promise<{ packets: number; hadError: boolean; ended: boolean }>((resolve) =>
          peer.socket.once('close', (hadError) =>
            resolve({ packets: peer.packets.length, hadError, ended: peer.socket.readableEnded }),
          ),
        ),
    );

    pairs.forEach(({ session }, i) => {
      for (let seq = 0; seq < perPeer; seq++) session.send(DATA, payload(i, seq, payloadBytes));
    });
    for (const { session } of pairs) expect(session.bufferedAmount).toBeGreaterThan(0);

    await timed(s.close({ drainMs: 5000 }), 8000, 'server.close');

    const outcomes = await Promise.all(atClose);
    pairs.forEach(({ peer }, i) => {
      expect(outcomes[i]).toEqual({ packets: perPeer, hadError: false, ended: true });
      peer.packets.forEach(({ id, payload: p }, seq) => {
        if (id !== DATA || !p.equals(payload(i, seq, payloadBytes))) {
          throw new Error(`peer ${i}, packet ${seq}: id ${id}, ${p.length} bytes, from peer ${p.readUInt32LE(0)} seq ${p.readUInt32LE(4)}`);
        }
      });
    });
    expect(closes.size).toBe(peerCount);
    expect([...closes.values()].every((reason) => reason === 'shutdown')).toBe(true);
    for (const { session } of pairs) expect(closes.get(session)).toBe('shutdown');
    expect(s.stats().sessions).toBe(0);

    expect(await dialError(port)).toBe('ECONNREFUSED');
  });

  it('is not held up past drainMs by a peer that never reads', async () => {
    // A queue bound well above what is sent, so only the close can end the slow session.
    const s = await start({ limits: { maxQueueBytes: 64 * 1024 * 1024 } });
    const [slow, reader] = await dial(2);
    slow.peer.socket.pause();

    // 8 MiB is about twice what loopback's kernel buffers take: it can never all leave.
    const big = Buffer.alloc(64 * 1024, 0x5a);
    for (let i = 0; i < 128; i++) slow.session.send(DATA, big);
    for (let seq = 0; seq < 20; seq++) reader.session.send(DATA, payload(1, seq, 8 * 1024));

    // The slow peer can never take its 8 MiB, so only the drain deadline can end the close: its resolving
    // at all (within a deadline far past drainMs, for slow machines) shows that the deadline cut the peer off.
    const drainMs = 200;
    await timed(s.close({ drainMs }), 60_000, 'server.close');
    slow.peer.socket.resume();
    await slow.peer.waitClosed(60_000);
    // Cut off: it got less than it was sent.
    expect(slow.peer.packets.length).toBeLessThan(128);

    expect(closes.get(slow.session)).toBe('shutdown');
    expect(closes.get(reader.session)).toBe('shutdown');
    await reader.peer.waitClosed();
    expect(reader.peer.packets.map((p) => p.payload.readUInt32LE(4))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await dialError(port)).toBe('ECONNREFUSED');
  });

  it('returns the same promise from every close, and refuses to listen afterwards', async () => {
    const s = await start();
    const first = s.close();
    expect(s.close({ drainMs: 10 })).toBe(first);
    await first;
    expect(s.close()).toBe(first);
    await expect(listen(s, protocol)).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    await expect(listen(s, protocol)).rejects.toMatchObject({ code: 'RP_ERR_CLOSED' });
  });
});
