import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  connect,
  createServer,
  ProtobufCodec,
  type Client,
  type PacketContext,
  type Server,
  type Session,
} from '../../src';
import { listen as listenOver, matrix, target } from '../support/backends';
import { nextEvent, waitFor } from '../support/wait';

const PROTO = path.join(__dirname, '../fixtures/game.proto');
const PACKETS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };

interface Join {
  room: string;
  name: string;
}
interface Joined {
  room: string;
  members: number;
}
interface Chat {
  from: string;
  text: string;
  seq: number;
}
interface Tick {
  seq: number;
}

interface Player {
  client: Client;
  chats: Chat[];
  joined: Joined[];
  closeReasons: string[];
}

describe.each(matrix)('middleware and handlers on %s over %s', (backend, protocol) => {
  const codec = ProtobufCodec.loadSync(PROTO, PACKETS);
  let server: Server;
  let port: number;
  let accepted: Session[];
  let clients: Client[];
  let errors: Array<{ error: unknown; packet: unknown; session: Session | undefined }>;

  beforeEach(() => {
    accepted = [];
    clients = [];
    errors = [];
    server = createServer({
      backend,
      codec,
      onError: (error, ctx) => errors.push({ error, packet: ctx.packet, session: ctx.session }),
    });
    server.on('session', (session) => accepted.push(session));
  });

  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.close({ drainMs: 500 });
  });

  async function listen(): Promise<void> {
    ({ port } = await listenOver(server, protocol));
  }

  /** Connects a client that collects Chat and Joined packets and its close reasons. */
  async function join(): Promise<Player> {
    const client = await connect({ ...target(protocol, port), backend, codec });
    clients.push(client);
    const player: Player = { client, chats: [], joined: [], closeReasons: [] };
    client.handle<Chat>('game.Chat', (_s, m) => {
      player.chats.push({ from: m.from, text: m.text, seq: m.seq });
    });
    client.handle<Joined>('game.Joined', (_s, m) => {
      player.joined.push({ room: m.room, members: m.members });
    });
    client.on('close', (reason) => player.closeReasons.push(reason));
    return player;
  }

  it('runs middleware in order around the handler', async () => {
    const order: string[] = [];
    server.use(async (_ctx, next) => {
      order.push('m1-before');
      await next();
      order.push('m1-after');
    });
    server.use(async (_ctx, next) => {
      order.push('m2-before');
      await next();
      order.push('m2-after');
    });
    server.handle<Chat>('game.Chat', (_session, chat) => {
      order.push('handler');
      return chat;
    });
    await listen();
    const p = await join();

    p.client.send('game.Chat', { from: 'ada', text: 'hi', seq: 1 });
    await waitFor(() => p.chats.length === 1 && order.length === 5, 'the reply and the middleware unwinding');
    expect(order).toEqual(['m1-before', 'm2-before', 'handler', 'm2-after', 'm1-after']);
    expect(p.chats).toEqual([{ from: 'ada', text: 'hi', seq: 1 }]);
  });

  it('gives middleware and handler one ctx: session, packet name, id, message and per-packet state', async () => {
    const seen: Array<{
      sameSession: boolean;
      packet: unknown;
      packetId: number;
      text: string;
      state: Record<string, unknown>;
      sameCtx: boolean;
    }> = [];
    let middlewareCtx: PacketContext | undefined;
    server.use(async (ctx, next) => {
      middlewareCtx = ctx;
      expect(ctx.state).toEqual({});
      ctx.state.startedAt = 1000 + (ctx.message as Chat).seq;
      // Middleware may replace the message; the handler gets the new one.
      ctx.message = { ...(ctx.message as Chat), text: (ctx.message as Chat).text.toUpperCase() };
      await next();
    });
    server.handle<Chat>('game.Chat', (session, chat, ctx) => {
      seen.push({
        sameSession: session === accepted[0] && ctx.session === session,
        packet: ctx.packet,
        packetId: ctx.packetId,
        text: chat.text,
        state: { ...ctx.state },
        sameCtx: ctx === middlewareCtx && ctx.message === chat,
      });
    });
    await listen();
    const p = await join();
    await waitFor(() => accepted.length === 1, 'the server to accept');

    p.client.send('game.Chat', { from: 'ada', text: 'gg', seq: 1 });
    p.client.send('game.Chat', { from: 'ada', text: 'wp', seq: 2 });
    await waitFor(() => seen.length === 2, 'both packets');
    expect(seen).toEqual([
      { sameSession: true, packet: 'game.Chat', packetId: 3, text: 'GG', state: { startedAt: 1001 }, sameCtx: true },
      { sameSession: true, packet: 'game.Chat', packetId: 3, text: 'WP', state: { startedAt: 1002 }, sameCtx: true },
    ]);
  });

  it('lets an auth middleware stop packets (no next) until a login sets session.data.user', async () => {
    const handled: string[] = [];
    server.use((ctx, next) => {
      if (ctx.packet === 'game.Join' || ctx.session.data.user !== undefined) return next();
      ctx.session.send('game.Chat', { from: 'server', text: `log in before ${String(ctx.packet)}`, seq: 0 });
    });
    server.handle<Join>(
      'game.Join',
      (session, login) => {
        session.data.user = login.name;
        return { room: login.room, members: 1 };
      },
      { reply: 'game.Joined' },
    );
    server.handle<Chat>('game.Chat', (session, chat) => {
      handled.push(chat.text);
      return { from: session.data.user as string, text: chat.text, seq: chat.seq };
    });
    await listen();
    const p = await join();

    p.client.send('game.Chat', { from: 'ada', text: 'too early', seq: 1 });
    await waitFor(() => p.chats.length === 1, 'the rejection');
    expect(p.chats).toEqual([{ from: 'server', text: 'log in before game.Chat', seq: 0 }]);
    expect(handled).toEqual([]);
    expect(p.client.session.isOpen).toBe(true);

    p.client.send('game.Join', { room: 'lobby', name: 'ada' });
    await waitFor(() => p.joined.length === 1, 'the login reply');
    p.client.send('game.Chat', { from: 'mallory', text: 'hello', seq: 2 });
    await waitFor(() => p.chats.length === 2, 'the chat reply');
    expect(p.chats[1]).toEqual({ from: 'ada', text: 'hello', seq: 2 });
    expect(handled).toEqual(['hello']);
    expect(errors).toEqual([]);
  });

  it('sends a throwing middleware to onError and closes only its session with handler-error', async () => {
    server.use(async (ctx, next) => {
      const chat = ctx.message as Chat;
      if (chat.text === 'boom') throw new Error('sync boom');
      if (chat.text === 'later') {
        await delay(5);
        throw new Error('async boom');
      }
      await next();
    });
    server.handle<Chat>('game.Chat', (_session, chat) => chat);
    const closes: Array<[Session, string]> = [];
    server.on('sessionClose', (session, reason) => closes.push([session, reason]));
    await listen();
    const a = await join();
    const b = await join();
    const c = await join();
    await waitFor(() => accepted.length === 3, 'three sessions');

    a.client.send('game.Chat', { from: 'a', text: 'boom', seq: 1 });
    b.client.send('game.Chat', { from: 'b', text: 'later', seq: 2 });
    await waitFor(() => closes.length === 2, 'two sessions to close');
    expect(closes.map(([, reason]) => reason)).toEqual(['handler-error', 'handler-error']);
    expect(new Set(closes.map(([session]) => session))).toEqual(new Set([accepted[0], accepted[1]]));
    expect(errors.map((e) => [(e.error as Error).message, e.packet])).toEqual(
      expect.arrayContaining([
        ['sync boom', 'game.Chat'],
        ['async boom', 'game.Chat'],
      ]),
    );
    expect(errors).toHaveLength(2);
    await waitFor(() => a.closeReasons.length === 1 && b.closeReasons.length === 1, 'the clients to see the close');
    // handler-error travels over WebSocket as 1011, the peer's own trouble: the client reads it as peer-closed, as on framed.
    const seen = 'peer-closed';
    expect([...a.closeReasons, ...b.closeReasons]).toEqual([seen, seen]);

    c.client.send('game.Chat', { from: 'c', text: 'fine', seq: 3 });
    await waitFor(() => c.chats.length === 1, 'the third client to be served');
    expect(c.chats).toEqual([{ from: 'c', text: 'fine', seq: 3 }]);
    expect(server.sessions.size).toBe(1);
  });

  it('lets middleware catch what the handler throws, so neither onError nor a close follows', async () => {
    server.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        ctx.session.send('game.Chat', { from: 'server', text: `refused: ${(err as Error).message}`, seq: 0 });
      }
    });
    server.handle<Chat>('game.Chat', (_session, chat) => {
      if (chat.text.length > 10) throw new Error('too long');
      return chat;
    });
    await listen();
    const p = await join();

    // One at a time: the packets of one session run through async middleware concurrently,
    // so a reply sent after an await may overtake the reply to an earlier packet.
    p.client.send('game.Chat', { from: 'ada', text: 'a very long line', seq: 1 });
    await waitFor(() => p.chats.length === 1, 'the refusal');
    p.client.send('game.Chat', { from: 'ada', text: 'short', seq: 2 });
    await waitFor(() => p.chats.length === 2, 'the second reply');
    expect(p.chats).toEqual([
      { from: 'server', text: 'refused: too long', seq: 0 },
      { from: 'ada', text: 'short', seq: 2 },
    ]);
    expect(errors).toEqual([]);
    expect(p.client.session.isOpen).toBe(true);
  });

  it('sends what an async handler resolves to as its reply', async () => {
    // An async middleware that waits before calling next, like a rate limiter would.
    server.use(async (_ctx, next) => {
      await delay(5);
      await next();
    });
    server.handle<Join>(
      'game.Join',
      async (_session, join) => {
        await delay(20);
        return { room: join.room, members: 7 };
      },
      { reply: 'game.Joined' },
    );
    server.handle('game.Chat', async () => {
      await delay(5);
      return undefined;
    });
    await listen();
    const p = await join();

    p.client.send('game.Chat', { from: 'ada', text: 'no reply expected', seq: 1 });
    p.client.send('game.Join', { room: 'arena', name: 'ada' });
    await waitFor(() => p.joined.length === 1, 'the async reply');
    expect(p.joined).toEqual([{ room: 'arena', members: 7 }]);
    expect(p.chats).toEqual([]);
  });

  it('sends an async handler rejection to onError and closes the session', async () => {
    server.handle('game.Join', async () => {
      await delay(5);
      throw new Error('no such room');
    });
    await listen();
    const p = await join();
    const closed = nextEvent<[Session, string]>(server, 'sessionClose');
    p.client.send('game.Join', { room: 'nowhere', name: 'ada' });
    const [, reason] = await closed;
    expect(reason).toBe('handler-error');
    expect(errors.map((e) => (e.error as Error).message)).toEqual(['no such room']);
  });

  it('reports a middleware that calls next twice to onError', async () => {
    server.use(async (_ctx, next) => {
      await next();
      await next();
    });
    let calls = 0;
    server.handle('game.Chat', () => {
      calls++;
    });
    await listen();
    const p = await join();
    const closed = nextEvent<[Session, string]>(server, 'sessionClose');
    p.client.send('game.Chat', { from: 'ada', text: 'twice?', seq: 1 });
    const [, reason] = await closed;
    expect(reason).toBe('handler-error');
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('lets a client use middleware and handle packets, replies included', async () => {
    const acks: Chat[] = [];
    server.handle<Chat>('game.Chat', (_session, chat) => {
      acks.push({ from: chat.from, text: chat.text, seq: chat.seq });
    });
    await listen();

    const client = await connect({ ...target(protocol, port), backend, codec });
    clients.push(client);
    const seenByMiddleware: Array<[unknown, boolean]> = [];
    const ticks: number[] = [];
    client.use((ctx, next) => {
      seenByMiddleware.push([ctx.packet, ctx.session === client.session]);
      // Drop ticks older than the last one seen, as a client would for stale state.
      if (ctx.packet === 'game.Tick' && (ctx.message as Tick).seq < (ticks.at(-1) ?? -1)) return;
      return next();
    });
    client.handle<Tick>(
      'game.Tick',
      (_session, tick) => {
        ticks.push(tick.seq);
        return { from: 'client', text: 'ack', seq: tick.seq };
      },
      { reply: 'game.Chat' },
    );
    await waitFor(() => accepted.length === 1, 'the server to accept');

    for (const seq of [1, 2, 0, 3]) accepted[0].send('game.Tick', { seq, players: [] });
    await waitFor(() => acks.length === 3, 'three acks');
    expect(ticks).toEqual([1, 2, 3]);
    expect(acks).toEqual([1, 2, 3].map((seq) => ({ from: 'client', text: 'ack', seq })));
    expect(seenByMiddleware).toEqual([1, 2, 0, 3].map(() => ['game.Tick', true]));
  });
});
