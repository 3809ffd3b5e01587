import * as path from 'node:path';
import { connect, createServer, ProtobufCodec, type Client, type Server } from '../../src';
import { listen, matrix, target } from '../support/backends';
import { waitFor } from '../support/wait';

// 200 real connections per backend; the whole case runs in a few seconds, the
// headroom is for a loaded CI machine.
jest.setTimeout(60_000);

const PROTO = path.join(__dirname, '../fixtures/game.proto');
const PACKETS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };

const PLAYERS = 200;
const ROOMS = 10;
const TICKS = 50;

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
  players: Array<{ id: number; x: number; y: number }>;
}

interface Player {
  name: string;
  room: string;
  client: Client;
  joined: Joined[];
  chats: Chat[];
  ticks: Tick[];
}

describe.each(matrix)('a lobby of 200 players on %s over %s', (backend, protocol) => {
  const codec = ProtobufCodec.loadSync(PROTO, PACKETS);
  let server: Server | undefined;
  let clients: Client[] = [];

  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
    clients = [];
    await server?.close({ drainMs: 1000 });
    server = undefined;
  });

  it('joins rooms, relays chat within each room only, and delivers every tick to everyone in order', async () => {
    const srv = createServer({ backend, codec });
    server = srv;
    const closeReasons: string[] = [];
    srv.on('sessionClose', (_session, reason) => closeReasons.push(reason));
    srv.handle<Join>(
      'game.Join',
      (session, join): Joined => {
        session.data.name = join.name;
        const room = srv.room(join.room);
        room.join(session);
        return { room: room.name, members: room.size };
      },
      { reply: 'game.Joined' },
    );
    srv.handle<Chat>('game.Chat', (session, chat) => {
      session.room?.broadcast('game.Chat', chat, { except: session });
    });
    const { port } = await listen(srv, protocol);

    const players = await Promise.all(
      Array.from({ length: PLAYERS }, async (_, i): Promise<Player> => {
        const client = await connect({ ...target(protocol, port), backend, codec });
        clients.push(client);
        const player: Player = { name: `p${i}`, room: `room-${i % ROOMS}`, client, joined: [], chats: [], ticks: [] };
        client.handle<Joined>('game.Joined', (_s, m) => {
          player.joined.push({ room: m.room, members: m.members });
        });
        client.handle<Chat>('game.Chat', (_s, m) => {
          player.chats.push({ from: m.from, text: m.text, seq: m.seq });
        });
        client.handle<Tick>('game.Tick', (_s, m) => {
          player.ticks.push({ seq: m.seq, players: m.players.map((p) => ({ id: p.id, x: p.x, y: p.y })) });
        });
        return player;
      }),
    );
    // A dial completes before the server has taken the accept in; wait for that side too.
    await waitFor(() => srv.sessions.size === PLAYERS, 'the server to accept every player', 15_000);

    for (const player of players) player.client.send('game.Join', { room: player.room, name: player.name });
    await waitFor(() => players.every((p) => p.joined.length >= 1), 'every Joined reply', 15_000);

    expect(srv.rooms.size).toBe(ROOMS);
    for (let r = 0; r < ROOMS; r++) expect(srv.rooms.get(`room-${r}`)?.size).toBe(PLAYERS / ROOMS);
    // Joins are handled one at a time, so the members counts a room hands out are 1..20, each once.
    for (let r = 0; r < ROOMS; r++) {
      const inRoom = players.filter((p) => p.room === `room-${r}`);
      expect(inRoom.every((p) => p.joined.length === 1 && p.joined[0].room === p.room)).toBe(true);
      expect(inRoom.map((p) => p.joined[0].members).sort((a, b) => a - b)).toEqual(
        Array.from({ length: PLAYERS / ROOMS }, (_, k) => k + 1),
      );
    }

    players.forEach((player, i) => player.client.send('game.Chat', { from: player.name, text: `hi from ${player.name}`, seq: i }));
    const othersInRoom = PLAYERS / ROOMS - 1;
    await waitFor(() => players.every((p) => p.chats.length >= othersInRoom), 'every room chat', 15_000);

    for (let seq = 0; seq < TICKS; seq++) {
      const recipients = srv.broadcast('game.Tick', { seq, players: [{ id: 7, x: seq + 0.5, y: -seq }] });
      expect(recipients).toBe(PLAYERS);
    }
    // A last packet after the ticks: once it is in, anything duplicated would have arrived before it.
    expect(srv.broadcast('game.Chat', { from: 'server', text: 'end of round', seq: 0 })).toBe(PLAYERS);
    await waitFor(
      () => players.every((p) => p.chats.some((c) => c.from === 'server')),
      'the end-of-round packet at every player',
      15_000,
    );

    const expectedTicks = Array.from({ length: TICKS }, (_, seq) => seq);
    for (const player of players) {
      const chats = player.chats.filter((c) => c.from !== 'server');
      const expectedFrom = players
        .filter((p) => p.room === player.room && p !== player)
        .map((p) => p.name)
        .sort();
      expect({ player: player.name, from: chats.map((c) => c.from).sort() }).toEqual({ player: player.name, from: expectedFrom });
      for (const chat of chats) expect(chat.text).toBe(`hi from ${chat.from}`);
      expect({ player: player.name, ticks: player.ticks.map((t) => t.seq) }).toEqual({ player: player.name, ticks: expectedTicks });
    }
    expect(players[0].ticks[49].players).toEqual([{ id: 7, x: 49.5, y: -49 }]);

    await Promise.all(clients.map((client) => client.close()));
    clients = [];
    await waitFor(() => srv.sessions.size === 0 && srv.rooms.size === 0, 'the server to forget every session and room', 15_000);
    expect(closeReasons).toHaveLength(PLAYERS);
    expect(new Set(closeReasons)).toEqual(new Set(['peer-closed']));
  });
});
