import { startLobbyServer, type LobbyServer } from '../../examples/game/server';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';
import { ScriptedPlayer } from './scripted-player';

// Half-second rounds at 20 ticks per second: 10 ticks each.
const ROUND_MS = 500;
const TICKS = 10;

describe.each(backends)('lobby rules, step by step, on %s', (backend) => {
  let lobby: LobbyServer;
  let players: ScriptedPlayer[];

  beforeEach(async () => {
    lobby = await startLobbyServer({ backend, host: '127.0.0.1', port: 0, roundMs: ROUND_MS, lobbyPushMs: 10 });
    players = [];
  });

  afterEach(async () => {
    await Promise.all(players.map((p) => p.close()));
    await lobby.close({ drainMs: 500 });
  });

  async function join(): Promise<ScriptedPlayer> {
    const player = await ScriptedPlayer.connect(lobby.address.port, backend);
    players.push(player);
    return player;
  }

  async function login(nickname: string): Promise<{ player: ScriptedPlayer; id: number }> {
    const player = await join();
    player.send('lobby.Login', { nickname });
    const welcome = await player.next('lobby.Welcome');
    expect(welcome.nickname).toBe(nickname);
    expect(await player.next('lobby.LobbyState')).toMatchObject({ chatSeq: 0 });
    return { player, id: welcome.playerId };
  }

  /** Waits until a lobby push shows room `roomId`. */
  async function seesRoom(player: ScriptedPlayer, roomId: number): Promise<void> {
    for (;;) {
      const state = await player.next('lobby.LobbyState');
      if (state.rooms.some((r: { id: number }) => r.id === roomId)) return;
    }
  }

  it('refuses what it must and keeps every session open', async () => {
    const guest = await join();
    guest.send('lobby.Say', { text: 'anyone?' });
    expect(await guest.next('lobby.Error')).toEqual({ code: 'not-logged-in', message: 'log in first', packet: 'lobby.Say' });
    guest.send('lobby.Login', { nickname: 'no spaces allowed' });
    expect(await guest.next('lobby.Error')).toMatchObject({ code: 'bad-nickname', packet: 'lobby.Login' });

    const { player: ada } = await login('ada');
    guest.send('lobby.Login', { nickname: 'ada' });
    expect(await guest.next('lobby.Error')).toMatchObject({ code: 'nickname-taken', packet: 'lobby.Login' });
    ada.send('lobby.Login', { nickname: 'ada2' });
    expect(await ada.next('lobby.Error')).toMatchObject({ code: 'already-logged-in' });

    const refusals: Array<[string, object, string]> = [
      ['lobby.JoinRoom', { roomId: 99 }, 'no-such-room'],
      ['lobby.LeaveRoom', {}, 'not-in-room'],
      ['lobby.Ready', { ready: true }, 'not-in-room'],
      ['lobby.CreateRoom', { name: '', maxPlayers: 2 }, 'bad-request'],
      ['lobby.CreateRoom', { name: 'huge', maxPlayers: 9 }, 'bad-request'],
      ['lobby.Say', { text: '' }, 'bad-request'],
    ];
    for (const [packet, message, code] of refusals) {
      ada.send(packet as any, message);
      expect(await ada.next('lobby.Error')).toMatchObject({ code, packet });
    }
    // Inputs outside a round are dropped without a word.
    ada.send('lobby.Input', { dx: 1, dy: 0 });
    ada.send('lobby.Say', { text: 'still here' });
    expect(await ada.next('lobby.ChatLine')).toMatchObject({ roomId: 0, seq: 1, from: 'ada', text: 'still here' });
    expect(ada.all('lobby.Error')).toHaveLength(refusals.length + 1);

    expect(lobby.stats()).toMatchObject({ sessions: 2, players: 1 });
    expect(lobby.server.sessions.size).toBe(2);
  });

  it('keeps room chat and ticks in the room, tells the room when a player drops, and sends the rest back to the lobby', async () => {
    const { player: ada, id: adaId } = await login('ada');
    const { player: bob, id: bobId } = await login('bob');
    const { player: cy } = await login('cy');

    ada.send('lobby.CreateRoom', { name: 'duel', maxPlayers: 2 });
    expect(await ada.next('lobby.Left')).toEqual({ roomId: 0, reason: 'joined-room', chatSeq: 0 });
    const created = await ada.next('lobby.RoomState');
    const roomId = created.room.id;
    expect(created).toEqual({
      room: { id: roomId, name: 'duel', maxPlayers: 2, players: 1, inGame: false },
      members: [{ id: adaId, nickname: 'ada', ready: false }],
      chatSeq: 0,
    });

    await seesRoom(bob, roomId);
    bob.send('lobby.JoinRoom', { roomId });
    await bob.next('lobby.Left');
    expect((await bob.next('lobby.RoomState')).members.map((m: { nickname: string }) => m.nickname)).toEqual(['ada', 'bob']);
    expect((await ada.next('lobby.RoomState')).room.players).toBe(2);

    await seesRoom(cy, roomId);
    cy.send('lobby.JoinRoom', { roomId });
    expect(await cy.next('lobby.Error')).toMatchObject({ code: 'room-full' });

    ada.send('lobby.Say', { text: 'in the room' });
    cy.send('lobby.Say', { text: 'in the lobby' });
    for (const p of [ada, bob]) {
      expect(await p.next('lobby.ChatLine')).toEqual({ roomId, seq: 1, playerId: adaId, from: 'ada', text: 'in the room' });
    }
    expect(await cy.next('lobby.ChatLine')).toMatchObject({ roomId: 0, seq: 1, from: 'cy', text: 'in the lobby' });

    // One ready player of two: no round yet.
    ada.send('lobby.Ready', { ready: true });
    expect((await bob.next('lobby.RoomState')).members).toEqual([
      { id: adaId, nickname: 'ada', ready: true },
      { id: bobId, nickname: 'bob', ready: false },
    ]);
    expect(ada.all('lobby.GameStart')).toEqual([]);
    bob.send('lobby.Ready', { ready: true });
    const start = await ada.next('lobby.GameStart');
    expect(start).toMatchObject({ roomId, tickRate: 20, durationMs: ROUND_MS, arenaSize: 100 });
    expect(start.players.map((p: { id: number }) => p.id)).toEqual([adaId, bobId]);
    expect(await bob.next('lobby.GameStart')).toEqual(start);

    cy.send('lobby.JoinRoom', { roomId });
    expect(await cy.next('lobby.Error')).toMatchObject({ code: 'room-in-game' });

    bob.send('lobby.Input', { dx: 1, dy: -1 });
    for (let tick = 1; tick <= 3; tick++) {
      const t = await ada.next('lobby.GameTick');
      expect(t).toMatchObject({ gameId: start.gameId, tick });
      expect(t.players.map((p: { id: number }) => p.id)).toEqual([adaId, bobId]);
    }

    // Bob drops mid-round: Ada is told, is the last player, wins, and goes back to the lobby.
    await bob.close();
    expect(await ada.next('lobby.PlayerLeft')).toEqual({ roomId, playerId: bobId, nickname: 'bob', reason: 'disconnected' });
    const over = await ada.next('lobby.GameOver');
    expect(over).toMatchObject({ gameId: start.gameId, reason: 'last-player' });
    expect(over.results).toEqual([{ id: adaId, nickname: 'ada', score: over.results[0].score, place: 1 }]);
    expect(ada.all('lobby.GameTick').map((t) => t.tick)).toEqual(Array.from({ length: over.ticks }, (_, i) => i + 1));
    expect(await ada.next('lobby.Left')).toEqual({ roomId, reason: 'game-over', chatSeq: 1 });
    expect((await ada.next('lobby.LobbyState')).chatSeq).toBe(1);

    await waitFor(() => lobby.stats().rooms === 0 && lobby.stats().players === 2, 'the room to close and bob to be gone');
    // Cy, in the lobby all along, heard nothing from the room.
    for (const name of ['lobby.GameStart', 'lobby.GameTick', 'lobby.PlayerLeft', 'lobby.GameOver', 'lobby.RoomState'] as const) {
      expect({ name, got: cy.all(name) }).toEqual({ name, got: [] });
    }
    expect(cy.all('lobby.ChatLine').map((c) => c.roomId)).toEqual([0]);
    expect([...lobby.server.rooms.keys()]).toEqual(['lobby']);
  });

  it('plays a round to the end of its time and hands out results', async () => {
    const { player: ada, id: adaId } = await login('ada');
    const { player: bob, id: bobId } = await login('bob');
    ada.send('lobby.CreateRoom', { name: 'three', maxPlayers: 3 });
    const roomId = (await ada.next('lobby.RoomState')).room.id;
    await seesRoom(bob, roomId);
    bob.send('lobby.JoinRoom', { roomId });
    await bob.next('lobby.RoomState');
    // Two of three seats taken, both ready: that is everyone, so the round starts.
    ada.send('lobby.Ready', { ready: true });
    bob.send('lobby.Ready', { ready: true });
    const start = await ada.next('lobby.GameStart');
    ada.send('lobby.Input', { dx: 0.5, dy: 0.5 });

    for (const p of [ada, bob]) {
      const over = await p.next('lobby.GameOver', 3000);
      expect(over).toMatchObject({ gameId: start.gameId, reason: 'time-up', ticks: TICKS });
      expect(over.results.map((r: { id: number }) => r.id).sort()).toEqual([adaId, bobId].sort());
      expect(over.results[0].place).toBe(1);
      expect(p.all('lobby.GameTick').map((t) => t.tick)).toEqual(Array.from({ length: TICKS }, (_, i) => i + 1));
      expect(await p.next('lobby.Left')).toMatchObject({ roomId, reason: 'game-over' });
      await p.next('lobby.LobbyState');
    }
    const ticks = ada.all('lobby.GameTick');
    const adaMoved = ticks[TICKS - 1].players.find((p: { id: number }) => p.id === adaId);
    const adaFirst = ticks[0].players.find((p: { id: number }) => p.id === adaId);
    expect(adaMoved.x).not.toBe(adaFirst.x);
    expect(lobby.stats()).toMatchObject({ rooms: 0, gamesRunning: 0, gamesStarted: 1, gamesEnded: { 'time-up': 1 } });
  });

  it('closes an empty room when its last player leaves', async () => {
    const { player: ada } = await login('ada');
    ada.send('lobby.CreateRoom', { name: 'solo', maxPlayers: 4 });
    const roomId = (await ada.next('lobby.RoomState')).room.id;
    ada.send('lobby.Say', { text: 'hello?' });
    await ada.next('lobby.ChatLine');
    ada.send('lobby.LeaveRoom');
    expect(await ada.next('lobby.Left')).toEqual({ roomId, reason: 'left', chatSeq: 1 });
    expect(await ada.next('lobby.LobbyState')).toMatchObject({ rooms: [], chatSeq: 0 });
    expect(lobby.stats().rooms).toBe(0);
    expect([...lobby.server.rooms.keys()]).toEqual(['lobby']);
  });

  it('stops a running round on shutdown without starting another', async () => {
    const { player: ada } = await login('ada');
    const { player: bob } = await login('bob');
    ada.send('lobby.CreateRoom', { name: 'last', maxPlayers: 2 });
    const roomId = (await ada.next('lobby.RoomState')).room.id;
    await seesRoom(bob, roomId);
    bob.send('lobby.JoinRoom', { roomId });
    await bob.next('lobby.RoomState');
    ada.send('lobby.Ready', { ready: true });
    bob.send('lobby.Ready', { ready: true });
    await ada.next('lobby.GameTick');

    // Both leave with their sessions, both were ready: a room that outlived the shutdown would start again.
    await lobby.close({ drainMs: 500 });
    expect(lobby.stats()).toMatchObject({ gamesStarted: 1, gamesRunning: 0, gamesEnded: { shutdown: 1 }, rooms: 0, players: 0 });
    expect(lobby.server.rooms.size).toBe(0);
  });
});
