import {
  createServer,
  ErrorCodes,
  type FaultContext,
  type PacketHandler,
  type Server,
  type ServerOptions,
  type Session,
} from '../../src';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

/** Generous: Wine and a loaded CI machine are several times slower than a quiet one. */
const DEADLINE_MS = 30_000;
const ECHO = 1;
const BAD_REPLY = 2;

/**
 * Every call into application code goes through one guard (src/session/guard.ts):
 * whatever path a packet or an event takes, a throw or a rejection reaches
 * onError and the onHandlerError policy, and never the event loop.
 */
describe.each(matrix)('fault containment on %s over %s', (backend, protocol) => {
  let server: Server | undefined;
  let port = 0;
  const peers: RawPeer[] = [];
  let faults: Array<{ error: unknown; ctx: FaultContext }>;
  let unhandled: unknown[];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  beforeEach(() => {
    faults = [];
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    for (const peer of peers.splice(0)) peer.destroy();
    await server?.close({ drainMs: 1000 });
    server = undefined;
  });

  async function start(options: Omit<ServerOptions, 'backend'> = {}, setup?: (s: Server) => void): Promise<Server> {
    const s = createServer({ backend, onError: (error, ctx) => faults.push({ error, ctx }), ...options });
    server = s;
    s.handle(ECHO, (_session, bytes: Buffer) => bytes);
    setup?.(s);
    ({ port } = await listen(s, protocol));
    return s;
  }

  async function dial(): Promise<{ peer: RawPeer; session: Session }> {
    const peer = await RawPeer.connect(port, { protocol });
    peers.push(peer);
    const find = () => [...server!.sessions.values()].find((s) => s.remotePort === peer.socket.localPort);
    await waitFor(() => find() !== undefined, 'the server to accept the peer', DEADLINE_MS);
    return { peer, session: find()! };
  }

  async function expectEcho(peer: RawPeer, text: string): Promise<void> {
    const before = peer.packets.length;
    peer.sendPacket(ECHO, Buffer.from(text));
    await peer.waitForPackets(before + 1, DEADLINE_MS);
    expect(peer.packets[before].payload.toString()).toBe(text);
  }

  /** A reply the raw codec cannot encode (it takes bytes only), from each way a handler can be declared. */
  const badReplies: Array<[string, PacketHandler, boolean]> = [
    ['sync, without ctx', () => 'not a buffer', false],
    ['async, without ctx', async () => 'not a buffer', false],
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    ['async, with ctx', async (_s, _m, _ctx) => 'not a buffer', false],
    ['async, behind middleware', async () => 'not a buffer', true],
  ];

  describe.each(badReplies)('a reply that cannot be encoded (%s)', (_name, handler, withMiddleware) => {
    it("goes to onError with RP_ERR_ENCODE and closes the session with handler-error; nothing is unhandled", async () => {
      const closes: Array<[Session, string]> = [];
      await start({}, (s) => {
        if (withMiddleware) s.use((_ctx, next) => next());
        s.handle(BAD_REPLY, handler);
        s.on('sessionClose', (session, reason) => closes.push([session, reason]));
      });
      const good = await dial();
      const bad = await dial();
      bad.peer.sendPacket(BAD_REPLY, Buffer.from('x'));
      await waitFor(() => closes.length === 1, 'the bad session to close', DEADLINE_MS);
      expect(closes[0]).toEqual([bad.session, 'handler-error']);
      expect(faults).toHaveLength(1);
      expect((faults[0].error as { code?: string }).code).toBe(ErrorCodes.ENCODE);
      expect(faults[0].ctx.source).toBe('handler');
      expect(faults[0].ctx.packet).toBe(BAD_REPLY);
      expect(faults[0].ctx.session).toBe(bad.session);
      await bad.peer.waitClosed(DEADLINE_MS);
      await expectEcho(good.peer, 'still served');
      // A rejection nobody handled would surface by the next macrotask at the latest.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    });

    it("with onHandlerError 'keep', the session is not wedged: its later packets are served in order", async () => {
      await start({ onHandlerError: 'keep' }, (s) => {
        if (withMiddleware) s.use((_ctx, next) => next());
        s.handle(BAD_REPLY, handler);
      });
      const { peer, session } = await dial();
      for (let i = 0; i < 3; i++) {
        peer.sendPacket(BAD_REPLY, Buffer.from('x'));
        peer.sendPacket(ECHO, Buffer.from(`after ${i}`));
      }
      await peer.waitForPackets(3, DEADLINE_MS);
      expect(peer.packets.map((p) => p.payload.toString())).toEqual(['after 0', 'after 1', 'after 2']);
      expect(faults).toHaveLength(3);
      expect(faults.every((f) => (f.error as { code?: string }).code === ErrorCodes.ENCODE)).toBe(true);
      expect(session.isOpen).toBe(true);
      expect(unhandled).toEqual([]);
    });
  });

  it('a throwing sessionClose listener loses none of its batch: every session is forgotten and close resolves', async () => {
    const heard: Session[] = [];
    let throws = 0;
    await start({}, (s) => {
      s.on('sessionClose', () => {
        if (throws++ === 0) throw new Error('first listener call fails');
      });
      s.on('sessionClose', (session) => heard.push(session));
    });
    const dialled = [];
    for (let i = 0; i < 20; i++) dialled.push(await dial());
    // All twenty at once, so that their closes arrive together.
    for (const { peer } of dialled) peer.destroy();
    await waitFor(() => heard.length === 20, 'twenty close events', DEADLINE_MS);
    expect(new Set(heard)).toEqual(new Set(dialled.map((d) => d.session)));
    expect(server!.sessions.size).toBe(0);
    expect(faults).toHaveLength(1);
    expect(faults[0].ctx).toMatchObject({ source: 'listener', event: 'sessionClose' });
    await server!.close({ drainMs: 200 });
  });

  it("a throwing 'session' listener is reported with its session, the policy closes it, and later listeners still run", async () => {
    const seen: Session[] = [];
    const closes: Array<[Session, string]> = [];
    await start({}, (s) => {
      s.on('session', () => {
        throw new Error('cannot seat this player');
      });
      s.on('session', (session) => seen.push(session));
      s.on('sessionClose', (session, reason) => closes.push([session, reason]));
    });
    const bad = await RawPeer.connect(port, { protocol });
    peers.push(bad);
    await waitFor(() => closes.length === 1, 'the session to close', DEADLINE_MS);
    expect(seen).toHaveLength(1);
    expect(closes[0]).toEqual([seen[0], 'handler-error']);
    expect(faults[0].ctx).toMatchObject({ source: 'listener', event: 'session' });
    // By identity: toMatchObject would walk the whole session graph (on uring, its reactor's buffers: tens of seconds).
    expect(faults[0].ctx.session === seen[0]).toBe(true);
    await bad.waitClosed(DEADLINE_MS);
  });

  it('an async listener that rejects is reported like one that throws', async () => {
    await start({ onHandlerError: 'keep' }, (s) => {
      s.on('session', async () => {
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('late failure');
      });
    });
    const { peer } = await dial();
    await waitFor(() => faults.length === 1, 'the fault', DEADLINE_MS);
    expect((faults[0].error as Error).message).toBe('late failure');
    expect(faults[0].ctx.event).toBe('session');
    await expectEcho(peer, 'kept');
    expect(unhandled).toEqual([]);
  });

  it('an onError that throws is contained too: the policy still applies and the server carries on', async () => {
    const closes: string[] = [];
    const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await start(
        {
          onError: () => {
            throw new Error('the error hook is broken');
          },
        },
        (s) => {
          s.handle(BAD_REPLY, () => {
            throw new Error('handler bug');
          });
          s.on('sessionClose', (_session, reason) => closes.push(reason));
        },
      );
      const good = await dial();
      const bad = await dial();
      bad.peer.sendPacket(BAD_REPLY, Buffer.alloc(0));
      await waitFor(() => closes.length === 1, 'the bad session to close', DEADLINE_MS);
      expect(closes).toEqual(['handler-error']);
      await expectEcho(good.peer, 'unharmed');
      expect(stderr).toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
    }
  });

  it('looking rooms up by names clients choose does not list them; a joined room is listed until it empties', async () => {
    await start({}, (s) => {
      // A handler that answers how many players a named room has, for any name a client sends.
      s.handle(BAD_REPLY, (_session, name: Buffer) => Buffer.from(String(s.room(name.toString()).size)));
    });
    const { peer, session } = await dial();
    for (let i = 0; i < 2000; i++) peer.sendPacket(BAD_REPLY, Buffer.from(`room-${i}`));
    await peer.waitForPackets(2000, DEADLINE_MS);
    expect(peer.packets.every((p) => p.payload.toString() === '0')).toBe(true);
    expect(server!.rooms.size).toBe(0);
    expect(server!.stats().rooms).toBe(0);

    const arena = server!.room('arena');
    expect(server!.room('arena')).toBe(arena);
    arena.join(session);
    expect(server!.rooms.get('arena')).toBe(arena);
    arena.leave(session);
    expect(server!.rooms.size).toBe(0);
    // Held by this test, the emptied room is still the one its name gives.
    expect(server!.room('arena')).toBe(arena);
  });

  it('types session.data from createServer<Data>()', async () => {
    interface PlayerData {
      nickname?: string;
      moves: number;
    }
    const typed = createServer<PlayerData>({ backend });
    try {
      typed.on('session', (session) => {
        session.data = { moves: 0 };
      });
      // No casts: session.data is PlayerData in handlers and events alike.
      typed.handle(ECHO, (session, bytes: Buffer) => {
        session.data.moves++;
        session.data.nickname ??= bytes.toString();
        return Buffer.from(`${session.data.nickname}:${session.data.moves}`);
      });
      const { port: typedPort } = await listen(typed, protocol);
      const peer = await RawPeer.connect(typedPort, { protocol });
      peers.push(peer);
      peer.sendPacket(ECHO, Buffer.from('ada'));
      peer.sendPacket(ECHO, Buffer.from('ignored'));
      await peer.waitForPackets(2, DEADLINE_MS);
      expect(peer.packets.map((p) => p.payload.toString())).toEqual(['ada:1', 'ada:2']);
    } finally {
      await typed.close({ drainMs: 1000 });
    }
  });
});
