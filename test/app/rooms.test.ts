import * as path from 'node:path';
import { connect, createServer, ProtobufCodec, type Client, type Server, type Session } from '../../src';
import { listen, matrix, target } from '../support/backends';
import { waitFor } from '../support/wait';

const PROTO = path.join(__dirname, '../fixtures/game.proto');
const PACKETS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };
const MARKER = '(marker)';

interface Chat {
  from: string;
  text: string;
  seq: number;
}

/** A connected client and the server's session for it. */
interface Player {
  client: Client;
  session: Session;
  /** Chat packets this client received, markers left out. */
  chats: Chat[];
  markers: number;
}

describe.each(matrix)('rooms on %s over %s', (backend, protocol) => {
  const codec = ProtobufCodec.loadSync(PROTO, PACKETS);
  let server: Server;
  let port: number;
  let accepted: Session[];
  let clients: Client[];

  beforeEach(async () => {
    server = createServer({ backend, codec });
    accepted = [];
    clients = [];
    server.on('session', (session) => accepted.push(session));
    ({ port } = await listen(server, protocol));
  });

  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.close({ drainMs: 500 });
  });

  /** Connects players one at a time, so the n-th accepted session belongs to the n-th client. */
  async function join(count: number): Promise<Player[]> {
    const players: Player[] = [];
    for (let i = 0; i < count; i++) {
      const index = accepted.length;
      const client = await connect({ ...target(protocol, port), backend, codec });
      clients.push(client);
      await waitFor(() => accepted.length > index, 'the server to accept the client');
      const player: Player = { client, session: accepted[index], chats: [], markers: 0 };
      client.handle<Chat>('game.Chat', (_s, m) => {
        if (m.from === MARKER) player.markers++;
        else player.chats.push({ from: m.from, text: m.text, seq: m.seq });
      });
      players.push(player);
    }
    return players;
  }

  /**
   * Sends every player a marker straight to its session and waits for it.
   * Packets to one session arrive in order, so once the marker is in, every
   * broadcast sent before it has arrived too (or was never sent to that player).
   */
  async function settle(players: Player[]): Promise<void> {
    const expected = players.map((p) => p.markers + 1);
    for (const p of players) p.session.send('game.Chat', { from: MARKER, text: '', seq: 0 });
    await waitFor(() => players.every((p, i) => p.markers >= expected[i]), 'the markers');
  }

  it('joins and leaves: size, has, session.room and server.rooms agree', async () => {
    const [a, b] = await join(2);
    const arena = server.room('arena');
    expect(server.room('arena')).toBe(arena);
    expect(arena.name).toBe('arena');
    expect(arena.size).toBe(0);

    arena.join(a.session);
    arena.join(b.session);
    arena.join(b.session);
    expect(arena.size).toBe(2);
    expect(arena.has(a.session)).toBe(true);
    expect(arena.has(b.session)).toBe(true);
    expect([...arena.sessions()].map((s) => s.id)).toEqual([a.session.id, b.session.id]);
    expect(a.session.room).toBe(arena);
    expect(server.rooms.get('arena')).toBe(arena);

    arena.leave(a.session);
    expect(arena.size).toBe(1);
    expect(arena.has(a.session)).toBe(false);
    expect(a.session.room).toBeUndefined();
    expect(server.rooms.has('arena')).toBe(true);
    arena.leave(a.session);
    expect(arena.size).toBe(1);

    arena.leave(b.session);
    expect(arena.size).toBe(0);
    expect(server.rooms.has('arena')).toBe(false);
    expect(server.stats().rooms).toBe(0);
  });

  it('keeps a session in at most one room: joining a second room leaves the first', async () => {
    const [a, b] = await join(2);
    const red = server.room('red');
    const blue = server.room('blue');
    red.join(a.session);
    red.join(b.session);

    blue.join(a.session);
    expect(a.session.room).toBe(blue);
    expect(red.has(a.session)).toBe(false);
    expect(blue.has(a.session)).toBe(true);
    expect([red.size, blue.size]).toEqual([1, 1]);

    expect(red.broadcast('game.Chat', { from: 'red', text: 'red only', seq: 1 })).toBe(1);
    await settle([a, b]);
    expect(a.chats).toEqual([]);
    expect(b.chats).toEqual([{ from: 'red', text: 'red only', seq: 1 }]);

    // The last member moving on empties the first room, which goes away.
    blue.join(b.session);
    expect(server.rooms.has('red')).toBe(false);
    expect(server.rooms.get('blue')?.size).toBe(2);
  });

  it('removes a closed session from its room, and the room once it is empty', async () => {
    const [a, b, c] = await join(3);
    const lobby = server.room('lobby');
    for (const p of [a, b, c]) lobby.join(p.session);

    await a.client.close();
    await waitFor(() => !lobby.has(a.session), 'the closed session to leave');
    expect(a.session.room).toBeUndefined();
    expect(lobby.size).toBe(2);
    expect(lobby.broadcast('game.Chat', { from: 'lobby', text: 'still here', seq: 2 })).toBe(2);

    // A session the server closes (a kick) leaves too.
    b.session.close('kicked');
    await waitFor(() => lobby.size === 1, 'the kicked session to leave');
    expect(server.rooms.get('lobby')).toBe(lobby);

    await c.client.close();
    await waitFor(() => server.rooms.size === 0, 'the empty room to be removed');
    expect(server.sessions.size).toBe(0);
  });

  it('broadcasts to a room, except one session, and returns the number of recipients', async () => {
    const players = await join(4);
    const [a, b, c, outsider] = players;
    const room = server.room('table-1');
    for (const p of [a, b, c]) room.join(p.session);
    server.room('table-2').join(outsider.session);

    expect(room.broadcast('game.Chat', { from: 'a', text: 'my move', seq: 3 }, { except: a.session })).toBe(2);
    expect(room.broadcast('game.Chat', { from: 'dealer', text: 'new hand', seq: 4 })).toBe(3);
    await settle(players);

    expect(a.chats).toEqual([{ from: 'dealer', text: 'new hand', seq: 4 }]);
    for (const p of [b, c]) {
      expect(p.chats).toEqual([
        { from: 'a', text: 'my move', seq: 3 },
        { from: 'dealer', text: 'new hand', seq: 4 },
      ]);
    }
    expect(outsider.chats).toEqual([]);
  });

  it('does not count or reach a member that is already closing', async () => {
    const [a, b] = await join(2);
    const room = server.room('arena');
    room.join(a.session);
    room.join(b.session);
    const bClosed = new Promise<void>((resolve) => b.client.on('close', () => resolve()));
    b.session.close('kicked');
    expect(room.broadcast('game.Chat', { from: 'x', text: 'after kick', seq: 5 })).toBe(1);
    await settle([a]);
    await bClosed;
    expect(a.chats).toHaveLength(1);
    expect(b.chats).toEqual([]);
  });

  it('server.broadcast reaches every session, in a room or not', async () => {
    const players = await join(5);
    server.room('red').join(players[0].session);
    server.room('blue').join(players[1].session);

    expect(server.broadcast('game.Chat', { from: 'server', text: 'restart in 5 min', seq: 6 })).toBe(5);
    expect(server.broadcast('game.Chat', { from: 'p4', text: 'gg', seq: 7 }, { except: players[4].session })).toBe(4);
    await settle(players);

    for (const p of players.slice(0, 4)) {
      expect(p.chats.map((c) => c.text)).toEqual(['restart in 5 min', 'gg']);
    }
    expect(players[4].chats.map((c) => c.text)).toEqual(['restart in 5 min']);
  });

  it('keeps a room the game holds on to usable after it emptied once', async () => {
    const [a, b] = await join(2);
    // A long-lived room kept in a variable by the game, e.g. the main lobby.
    const lobby = server.room('lobby');
    lobby.join(a.session);
    lobby.leave(a.session);
    expect(server.rooms.has('lobby')).toBe(false);

    lobby.join(b.session);
    // Identity checks as booleans: a failure should not print the whole session graph.
    expect(server.rooms.get('lobby') === lobby).toBe(true);
    expect(server.room('lobby') === lobby).toBe(true);
    expect(server.room('lobby').broadcast('game.Chat', { from: 'lobby', text: 'welcome back', seq: 8 })).toBe(1);
  });

  it('does not keep a session that closed while its join handler was still running', async () => {
    let release!: () => void;
    const loaded = new Promise<void>((resolve) => (release = resolve));
    let handlerDone!: () => void;
    const done = new Promise<void>((resolve) => (handlerDone = resolve));
    server.handle<{ room: string; name: string }>('game.Join', async (session, join) => {
      // E.g. loading the player's profile from a database before seating them.
      await loaded;
      server.room(join.room).join(session);
      handlerDone();
    });
    const [a] = await join(1);
    a.client.send('game.Join', { room: 'arena', name: 'ada' });
    await waitFor(() => a.session.state !== 'open' || server.stats().packetsIn > 0, 'the Join to arrive');
    await a.client.close();
    await waitFor(() => a.session.state === 'closed', 'the server to see the close');

    release();
    await done;
    expect(a.session.room?.name).toBeUndefined();
    expect(server.room('arena').has(a.session)).toBe(false);
    expect(server.room('arena').broadcast('game.Chat', { from: 'x', text: 'anyone?', seq: 9 })).toBe(0);
  });
});
