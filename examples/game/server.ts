import { parseArgs } from 'node:util';
// An application would import these from 'ringport'.
import { createServer, type BackendChoice, type BackendInfo, type Server } from '../../src';
import { loggedIn, requireLogin } from './auth';
import { ensureWebClient, WEB_BUNDLE_DIR } from './build-web';
import { Lobby } from './lobby';
import type { Player, PlayerData, PlayerSession } from './player';
import type { CreateRoom, Input, JoinRoom, Login, Ready, Say } from './messages';
import { loadCodec } from './protocol';
import { rateLimit, type RateLimitOptions } from './rate-limit';
import { Refusal, replyToRefusals } from './refusal';
import { LobbyCounters, Rates, type TickSummary } from './stats';
import { LiveView } from './view';

export interface LobbyServerOptions {
  /** Default: every interface. */
  host?: string;
  /** Default 7000; 0 picks a free port (see `address`). */
  port?: number;
  /** Default `auto`: the native backend where it works, else `net`. */
  backend?: BackendChoice;
  /** Length of a round. Default 20 s. */
  roundMs?: number;
  /** Default 20 ticks per second. */
  tickRate?: number;
  /** Largest room a player may create. Default 8. */
  maxRoomPlayers?: number;
  /** Lobby list pushes are coalesced over this long. Default 100 ms. */
  lobbyPushMs?: number;
  /** Chat rate limit. Default: 2 lines/s, bursts of 5, closed after 20 refusals in a row. */
  chat?: Partial<Omit<RateLimitOptions, 'packets'>>;
  /** A session that sends nothing for this long is closed. Default 2 minutes; 0 turns it off. */
  idleTimeoutMs?: number;
  /**
   * Also serve browsers on this port: HTTP with the web client's files
   * (`webDir`) at `/`, and WebSocket players at `/play`; 0 picks a free port.
   * Default: none.
   */
  webPort?: number;
  /** The web client's bundle (see build-web.ts). Default: web/dist beside this file. */
  webDir?: string;
}

export interface LobbyStats {
  readonly backend: BackendInfo;
  readonly sessions: number;
  readonly players: number;
  readonly peakPlayers: number;
  readonly rooms: number;
  readonly gamesRunning: number;
  readonly peakGamesRunning: number;
  readonly gamesStarted: number;
  /** Finished rounds by how they ended: time-up, last-player, shutdown. */
  readonly gamesEnded: Readonly<Record<string, number>>;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Tick durations over the last whole second. */
  readonly tick: TickSummary;
  /** Tick durations since the start. */
  readonly ticks: TickSummary;
}

export interface LobbyServer {
  /** The ringport server underneath: its sessions, rooms and events. */
  readonly server: Server<PlayerData>;
  readonly address: { host: string; port: number };
  /** Where browsers go, when `webPort` was given: `http://host:port/` for the page, `ws://host:port/play` for the game. */
  readonly webAddress: { host: string; port: number } | undefined;
  readonly backend: BackendInfo;
  stats(): LobbyStats;
  /** Stops the rounds, then closes the server (see `Server.close`). */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** The auth gate runs before every handler, so a handler's session always has a player. */
function playerOf(session: PlayerSession): Player {
  return loggedIn(session)!;
}

/** Starts a lobby server: wiring only; the game lives in lobby.ts, game-room.ts and round.ts. */
export async function startLobbyServer(options: LobbyServerOptions = {}): Promise<LobbyServer> {
  const server = createServer<PlayerData>({
    backend: options.backend ?? 'auto',
    codec: loadCodec(),
    // No lobby message comes near this; a bigger frame is an attack or a bug.
    framing: { maxFrameBytes: 16 * 1024 },
    limits: { idleTimeoutMs: options.idleTimeoutMs ?? 120_000 },
  });
  const counters = new LobbyCounters();
  const lobby = new Lobby(
    server,
    {
      round: { tickRate: options.tickRate ?? 20, durationMs: options.roundMs ?? 20_000, arenaSize: 100 },
      maxRoomPlayers: options.maxRoomPlayers ?? 8,
      pushMs: options.lobbyPushMs ?? 100,
    },
    counters,
  );

  // Middleware runs in this order around every handler.
  server.use(replyToRefusals('lobby.Error'));
  server.use(requireLogin('lobby.Login'));
  server.use(rateLimit({ packets: ['lobby.Say'], ratePerSec: 2, burst: 5, closeAfterRefusals: 20, ...options.chat }));

  server.handle<Login>('lobby.Login', (session, m) => lobby.login(session, m.nickname));
  server.handle<Say>('lobby.Say', (session, m) => lobby.say(playerOf(session), m.text));
  server.handle<CreateRoom>('lobby.CreateRoom', (session, m) => lobby.createRoom(playerOf(session), m));
  server.handle<JoinRoom>('lobby.JoinRoom', (session, m) => lobby.joinRoom(playerOf(session), m.roomId));
  server.handle('lobby.LeaveRoom', (session) => lobby.leaveRoom(playerOf(session)));
  server.handle<Ready>('lobby.Ready', (session, m) => {
    const player = playerOf(session);
    if (player.room === undefined) throw new Refusal('not-in-room', 'you are in the lobby');
    player.room.setReady(player, m.ready);
  });
  server.handle<Input>('lobby.Input', (session, m) => {
    const player = playerOf(session);
    player.room?.steer(player, m.dx, m.dy);
  });
  server.on('sessionClose', (session) => lobby.logout(session));

  const address = await server.listen({ host: options.host, port: options.port ?? 7000 });
  // One HTTP listener serves the page and upgrades /play to WebSocket. The same handlers,
  // middleware and rooms serve both listeners: a browser player meets the bots in one room.
  let webAddress: { host: string; port: number } | undefined;
  if (options.webPort !== undefined) {
    // The page, its script and styles: content types, ETags with 304s, gzip.
    server.http.static('/', options.webDir ?? WEB_BUNDLE_DIR);
    try {
      webAddress = await server.listen({ host: options.host, port: options.webPort, protocol: 'http', websocket: { path: '/play' } });
    } catch (err) {
      await server.close(); // the framed listener is open: leave nothing behind
      throw err;
    }
  }
  const rotation = setInterval(() => counters.rotate(), 1000);
  rotation.unref();

  return {
    server,
    address,
    webAddress,
    backend: server.backend,
    stats(): LobbyStats {
      const s = server.stats();
      return {
        backend: server.backend,
        sessions: s.sessions,
        players: lobby.playerCount,
        peakPlayers: counters.peakPlayers,
        rooms: lobby.roomCount,
        gamesRunning: counters.gamesRunning,
        peakGamesRunning: counters.peakGamesRunning,
        gamesStarted: counters.gamesStarted,
        gamesEnded: { ...counters.gamesEnded },
        packetsIn: s.packetsIn,
        packetsOut: s.packetsOut,
        bytesIn: s.backend.bytesIn,
        bytesOut: s.backend.bytesOut,
        tick: counters.lastSecond,
        ticks: counters.ticks.summary(),
      };
    },
    async close(closeOptions = {}): Promise<void> {
      clearInterval(rotation);
      lobby.close();
      await server.close(closeOptions);
    },
  };
}

/** `server.ts --port 7000 [--web-port 8080] [--host 0.0.0.0] [--backend auto] [--round-ms 20000]`: runs until Ctrl-C. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string', default: '7000' },
      'web-port': { type: 'string', default: '8080' },
      backend: { type: 'string', default: 'auto' },
      'round-ms': { type: 'string', default: '20000' },
    },
  });
  await ensureWebClient();
  const lobby = await startLobbyServer({
    host: values.host,
    port: Number(values.port),
    webPort: Number(values['web-port']),
    backend: values.backend as BackendChoice,
    roundMs: Number(values['round-ms']),
  });
  const { host, port } = lobby.address;
  // A server on every interface is reached here as localhost.
  const web = `${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${lobby.webAddress!.port}`;
  const view = new LiveView(process.stdout, [
    `ringport lobby on ${host}:${port} (framed TCP) and ws://${web}/play (WebSocket)`,
    `open http://${web}/ to play in a browser`,
    `backend ${lobby.backend.kind} (${lobby.backend.reason})`,
  ]);
  const rates = new Rates();
  const startedMs = performance.now();
  const timer = setInterval(() => {
    const stats = lobby.stats();
    view.show({ elapsedMs: performance.now() - startedMs, stats, rates: rates.sample(stats) });
  }, 1000);

  const stop = async (): Promise<void> => {
    clearInterval(timer);
    view.finish();
    await lobby.close({ drainMs: 2000 });
    view.summary(performance.now() - startedMs, lobby.stats());
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
