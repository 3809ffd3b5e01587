import type { CloseReason } from '../../src';
import type { Bot, GameRecord } from '../../examples/game/bot';
import { startBots } from '../../examples/game/bots';
import { startLobbyServer } from '../../examples/game/server';
import { matrix, WS_PATH } from '../support/backends';
import { waitFor } from '../support/wait';

const BOTS = 100;
const ROOM_SIZE = 4;
// 1.5 s rounds at 20 ticks per second: a round that runs its time has 30 ticks.
const ROUND_MS = 1500;
const TICKS = 30;
/** Generous: the test waits for what the bots do, never for a fixed time; Wine is several times slower. */
const DEADLINE_MS = 120_000;
/** Refusals a bot can meet by racing others to a room; anything else is a bug. */
const RACES = new Set(['room-full', 'room-in-game', 'no-such-room']);

/** The round a bot is playing now, if any. */
function playing(bot: Bot): GameRecord | undefined {
  const game = bot.record.games[bot.record.games.length - 1];
  return bot.state === 'game' && game !== undefined && game.over === undefined ? game : undefined;
}

describe.each(matrix)('the lobby game with %s over %s', (backend, protocol) => {
  it(`${BOTS} bots log in, fill rooms, play rounds; every line and tick reaches exactly its room; a dropped player is reported; nothing leaks`, async () => {
    const lobby = await startLobbyServer({
      backend,
      host: '127.0.0.1',
      port: 0,
      roundMs: ROUND_MS,
      lobbyPushMs: 50,
      // The web listener (HTTP, with the WebSocket at /play) serves the same lobby; the bots then play over it.
      webPort: protocol === 'websocket' ? 0 : undefined,
    });
    const url = lobby.webAddress === undefined ? undefined : `ws://127.0.0.1:${lobby.webAddress.port}${WS_PATH}`;
    expect(url === undefined).toBe(protocol === 'framed');
    const serverCloses: CloseReason[] = [];
    lobby.server.on('sessionClose', (_session, reason) => serverCloses.push(reason));
    // The bots play until told to retire: once every one of them has played a round to its end.
    const swarm = startBots({
      count: BOTS,
      backend,
      port: lobby.address.port,
      url,
      bot: { roomSize: ROOM_SIZE, thinkMs: [50, 400], readyAfterMs: 500, giveUpMs: 1500, chatChance: 0.7, keepChat: true },
    });
    const bots = swarm.bots;

    try {
      await waitFor(() => lobby.stats().players === BOTS, `all ${BOTS} bots to log in`, DEADLINE_MS);

      // Drop a player from a round that has at least two others in it, a few ticks in.
      let victim: Bot | undefined;
      await waitFor(() => {
        victim = bots.find((bot) => {
          const game = playing(bot);
          return game !== undefined && game.players.length >= 3 && game.lastTick >= 5;
        });
        return victim !== undefined;
      }, 'a round of three or more to be under way', DEADLINE_MS);
      const victimGame = playing(victim!)!;
      victim!.stop();

      const finishedARound = (bot: Bot) => bot.record.games.some((g) => g.over?.reason === 'time-up');
      await waitFor(
        () => bots.every((bot) => bot === victim || finishedARound(bot)),
        'every bot to play a round to its end',
        DEADLINE_MS,
      );
      swarm.retire();
      await swarm.done;
      await waitFor(
        () => lobby.server.sessions.size === 0 && lobby.server.rooms.size === 0,
        'the server to forget every session and room',
        DEADLINE_MS,
      );

      // Everyone logged in once, under their own name, and saw nothing out of order or out of place.
      expect(new Set(bots.map((b) => b.record.playerId)).size).toBe(BOTS);
      expect(bots.filter((b) => b.record.logins !== 1 || b.record.reconnects !== 0)).toEqual([]);
      expect(bots.flatMap((b) => b.record.violations.map((v) => `${b.record.nickname}: ${v}`))).toEqual([]);
      expect(bots.flatMap((b) => b.record.errors.filter((code) => !RACES.has(code)))).toEqual([]);

      // Every round: the players GameStart named, and only they, played it; each saw every tick.
      const games = new Map<number, Array<{ bot: Bot; game: GameRecord }>>();
      for (const bot of bots) {
        for (const game of bot.record.games) {
          const seen = games.get(game.gameId) ?? [];
          seen.push({ bot, game });
          games.set(game.gameId, seen);
        }
      }
      // A round the server starts in the very instant the bots retire reaches no bot; at most one per room.
      const started = lobby.stats().gamesStarted;
      expect(games.size).toBeLessThanOrEqual(started);
      expect(started - games.size).toBeLessThanOrEqual(BOTS / ROOM_SIZE);
      expect(games.size).toBeGreaterThanOrEqual(BOTS / ROOM_SIZE);
      expect([...games.values()].some((seen) => seen.length === ROOM_SIZE)).toBe(true);
      for (const [gameId, seen] of games) {
        const named = seen[0].game.players;
        expect({ gameId, players: seen.map((s) => s.bot.record.playerId).sort() }).toEqual({ gameId, players: [...named].sort() });
        for (const { bot, game } of seen) {
          expect(game.players).toEqual(named);
          if (bot === victim) continue;
          expect(game.over).toBeDefined();
          if (game.over!.reason === 'time-up') expect(game.over!.ticks).toBe(TICKS);
          else expect(game.over!.reason).toBe('last-player');
          expect(game.lastTick).toBe(game.over!.ticks);
        }
      }
      // Every bot played a round to its end before the swarm retired (what the wait above established).
      expect(bots.filter((b) => b !== victim && !finishedARound(b))).toEqual([]);

      // The dropped player: the others in its round were told, and played on to the end.
      const victimId = victim!.record.playerId;
      expect(victimGame.over?.reason).toBe('offline');
      const others = games.get(victimGame.gameId)!.filter((s) => s.bot !== victim);
      expect(others.length).toBeGreaterThanOrEqual(2);
      for (const { game } of others) {
        expect(game.playersLeft).toEqual([{ playerId: victimId, reason: 'disconnected' }]);
        expect(game.over?.reason).toBe('time-up');
      }
      // Nobody else heard of it.
      for (const bot of bots) {
        for (const game of bot.record.games) {
          if (game.gameId !== victimGame.gameId) expect(game.playersLeft).toEqual([]);
        }
      }

      // Chat: each line is the same everywhere it arrived, and its sayer, who is always where it was said, got it back.
      const lines = new Map<string, { text: string; playerId: number; receivers: Set<number> }>();
      for (const bot of bots) {
        for (const line of bot.record.chat) {
          const key = `${line.roomId}/${line.seq}`;
          const known = lines.get(key) ?? { text: line.text, playerId: line.playerId, receivers: new Set<number>() };
          expect({ key, text: line.text, playerId: line.playerId }).toEqual({ key, text: known.text, playerId: known.playerId });
          known.receivers.add(bot.record.playerId);
          lines.set(key, known);
        }
      }
      // Its sayer got every line back, but perhaps its very last (see below).
      const lastSaid = new Map(bots.map((b) => [b.record.playerId, `#${b.record.chatSent}`]));
      for (const [key, line] of lines) {
        const last = line.text.endsWith(lastSaid.get(line.playerId)!);
        expect({ key, sayerGotIt: line.receivers.has(line.playerId) || last }).toEqual({ key, sayerGotIt: true });
      }
      // Each bot heard all it said (its lines are numbered #1, #2, ...), except perhaps its very last line:
      // said just as the bots retired, it can reach a lobby whose every member is already on the way out.
      let unheard = 0;
      for (const bot of bots) {
        const own = bot.record.chat.filter((l) => l.playerId === bot.record.playerId).map((l) => Number(/#(\d+)$/.exec(l.text)![1]));
        const all = Array.from({ length: bot.record.chatSent }, (_, i) => i + 1);
        const heard = own.length === all.length ? all : all.slice(0, -1);
        expect({ bot: bot.record.nickname, own }).toEqual({ bot: bot.record.nickname, own: heard });
        unheard += all.length - own.length;
      }
      // A last line its sayer did not hear may still have reached others in the room (the sayer left
      // first): every line heard anywhere was said, and every line but those few was heard.
      const said = bots.reduce((n, b) => n + b.record.chatSent, 0);
      expect(lines.size).toBeGreaterThanOrEqual(said - unheard);
      expect(lines.size).toBeLessThanOrEqual(said);
      const lobbyLines = [...lines.keys()].filter((k) => k.startsWith('0/')).length;
      expect(lobbyLines).toBeGreaterThan(0);
      expect(lines.size - lobbyLines).toBeGreaterThan(0);

      // Every bot left by itself; the server saw each go and holds nothing.
      expect(bots.map((b) => b.record.closeReason)).toEqual(bots.map(() => 'closed'));
      expect(serverCloses).toHaveLength(BOTS);
      expect(new Set(serverCloses)).toEqual(new Set(['peer-closed']));
      expect(lobby.stats()).toMatchObject({ sessions: 0, players: 0, rooms: 0, gamesRunning: 0 });
    } finally {
      await swarm.stop();
      await lobby.close({ drainMs: 1000 });
    }
  }, 4 * DEADLINE_MS);
});
