import { startBots } from '../../examples/game/bots';
import { startLobbyServer, type LobbyServer } from '../../examples/game/server';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const BOTS = 6;
/** Generous: Wine and a loaded CI machine are several times slower than a quiet one. */
const DEADLINE_MS = 60_000;

describe.each(backends)('bots and a restarting lobby server on %s', (backend) => {
  it('reconnect, log in again and play on the new server', async () => {
    const options = { backend, host: '127.0.0.1', roundMs: 500, lobbyPushMs: 20 } as const;
    let lobby: LobbyServer = await startLobbyServer({ ...options, port: 0 });
    const port = lobby.address.port;
    const swarm = startBots({
      count: BOTS,
      backend,
      port,
      bot: { thinkMs: [20, 100], readyAfterMs: 200, giveUpMs: 800 },
    });
    try {
      await waitFor(() => lobby.stats().gamesRunning > 0, 'a round on the first server', DEADLINE_MS);
      await lobby.close({ drainMs: 500 });
      // A bot is between dials or dialling: each must be seen reconnecting once, not all at one instant.
      const noticed = new Set<unknown>();
      await waitFor(
        () => {
          for (const b of swarm.bots) if (b.reconnecting) noticed.add(b);
          return noticed.size === BOTS;
        },
        'every bot to notice',
        DEADLINE_MS,
      );

      lobby = await startLobbyServer({ ...options, port });
      await waitFor(() => lobby.stats().players === BOTS, 'every bot to log in to the second server', DEADLINE_MS);
      await waitFor(() => lobby.stats().gamesEnded['time-up'] > 0, 'a round played on the second server', DEADLINE_MS);

      for (const bot of swarm.bots) {
        expect(bot.record).toMatchObject({ logins: 2, reconnects: 1 });
        // Nicknames are free again on the new server.
        expect(bot.record.errors.filter((code) => code === 'nickname-taken')).toEqual([]);
      }
      expect(swarm.bots.flatMap((b) => b.record.violations)).toEqual([]);
      await swarm.stop();
      await waitFor(() => lobby.server.sessions.size === 0 && lobby.server.rooms.size === 0, 'the second server to empty', DEADLINE_MS);
    } finally {
      await swarm.stop();
      await lobby.close({ drainMs: 500 });
    }
  }, 4 * DEADLINE_MS);
});
