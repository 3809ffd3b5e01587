// An application would import these from 'ringport'.
import { connect, type BackendChoice, type Client, type Codec } from '../../src';
import { OrderCheck } from './order-check';
import type {
  ChatLine, ErrorReply, GameOver, GameStart, GameTick, Left, LobbyState, Member, PlayerLeft, RoomInfo, RoomState, Vec2, Welcome,
} from './messages';

export interface BotOptions {
  host: string;
  port: number;
  /** `ws://host:port/play`: play over WebSocket instead of framed TCP (host and port are then unused). */
  url?: string;
  backend?: BackendChoice;
  codec: Codec;
  nickname: string;
  /** The player cap of rooms this bot creates. */
  roomSize: number;
  /** Pause before each move in the lobby, [min, max] ms. */
  thinkMs: readonly [number, number];
  /** In a room that is not full, ready up after this long if someone else is there. */
  readyAfterMs: number;
  /** Alone in a room this long: leave it. */
  giveUpMs: number;
  /** Chance of saying something on entering the lobby or a room. */
  chatChance: number;
  inputEveryMs: number;
  random: () => number;
  /** Keep every chat line received in `record.chat` (for tests). */
  keepChat: boolean;
}

export interface GameRecord {
  readonly gameId: number;
  readonly roomId: number;
  readonly players: number[];
  lastTick: number;
  over?: { reason: string; ticks: number; place: number };
  readonly playersLeft: Array<{ playerId: number; reason: string }>;
}

/** What a bot saw, for reports and tests. */
export interface BotRecord {
  nickname: string;
  playerId: number;
  logins: number;
  reconnects: number;
  chatSent: number;
  chatReceived: number;
  readonly chat: ChatLine[];
  readonly games: GameRecord[];
  readonly errors: string[];
  readonly violations: string[];
  closeReason?: string;
}

type BotState = 'offline' | 'lobby' | 'moving' | 'room' | 'game' | 'closed';

/** Refusals a bot meets by racing other players to a room: expected, not errors. */
export const ROOM_RACES: ReadonlySet<string> = new Set(['room-full', 'room-in-game', 'no-such-room']);

/** Requests that move a player between the lobby and a room. */
const MOVES = new Set(['lobby.JoinRoom', 'lobby.CreateRoom', 'lobby.LeaveRoom']);

/**
 * One simulated player: logs in, chats, joins (or creates) a room, readies
 * up, plays with noisy inputs, and goes round again. It reconnects, and
 * logs in again, when the server goes away and comes back.
 */
export class Bot {
  readonly check = new OrderCheck();
  readonly record: BotRecord;
  state: BotState = 'offline';

  private client: Client | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private inputs: NodeJS.Timeout | undefined;
  private rooms: RoomInfo[] = [];
  private room: { info: RoomInfo; members: Member[]; enteredMs: number; readySent: boolean } | undefined;
  private me: Vec2 | undefined;
  private coin: Vec2 | undefined;
  private retiring = false;
  private stopped = false;
  private renames = 0;
  private resolveClosed!: () => void;
  /** Resolves once the bot has closed for good. */
  readonly closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(private readonly options: BotOptions) {
    this.record = {
      nickname: options.nickname, playerId: 0, logins: 0, reconnects: 0, chatSent: 0, chatReceived: 0,
      chat: [], games: [], errors: [], violations: this.check.violations,
    };
  }

  get online(): boolean {
    return this.client?.session.isOpen ?? false;
  }

  get reconnecting(): boolean {
    return this.client?.session.state === 'reconnecting';
  }

  /** Connects (waiting for the server as long as it takes) and logs in. */
  async start(): Promise<void> {
    const { host, port, url, backend, codec } = this.options;
    const reconnect = { initialDelayMs: 100, maxDelayMs: 1000 };
    // The same bot either way: only where it dials differs.
    const client = await (url === undefined
      ? connect({ host, port, backend, codec, reconnect })
      : connect({ url, backend, codec, reconnect }));
    this.client = client;
    client.handle<Welcome>('lobby.Welcome', (_s, m) => this.welcome(m));
    client.handle<ErrorReply>('lobby.Error', (_s, m) => this.refused(m));
    client.handle<LobbyState>('lobby.LobbyState', (_s, m) => this.lobbyState(m));
    client.handle<ChatLine>('lobby.ChatLine', (_s, m) => this.chatLine(m));
    client.handle<Left>('lobby.Left', (_s, m) => this.left(m));
    client.handle<RoomState>('lobby.RoomState', (_s, m) => this.roomState(m));
    client.handle<GameStart>('lobby.GameStart', (_s, m) => this.gameStart(m));
    client.handle<GameTick>('lobby.GameTick', (_s, m) => this.gameTick(m));
    client.handle<PlayerLeft>('lobby.PlayerLeft', (_s, m) => this.playerLeft(m));
    client.handle<GameOver>('lobby.GameOver', (_s, m) => this.gameOver(m));
    client.on('reconnecting', () => this.offline());
    client.on('reconnected', () => {
      this.record.reconnects++;
      this.login();
    });
    client.on('close', (reason) => {
      this.offline();
      this.state = 'closed';
      this.record.closeReason = reason;
      this.resolveClosed();
    });
    if (this.stopped) void client.close();
    else this.login();
  }

  /** Leaves as soon as it is not in a round. */
  retire(): void {
    this.retiring = true;
    if (this.state !== 'game') this.stop();
  }

  /** Leaves now, mid-round or not. */
  stop(): void {
    this.stopped = true;
    this.offline();
    void this.client?.close();
  }

  private login(): void {
    this.send('lobby.Login', { nickname: this.record.nickname });
  }

  private welcome(m: Welcome): void {
    this.record.playerId = m.playerId;
    this.record.logins++;
  }

  private refused(m: ErrorReply): void {
    this.record.errors.push(m.code);
    if (m.code === 'nickname-taken') {
      // Another bot process may use the same names, or the server still holds our old session.
      this.record.nickname = `${this.options.nickname}-${++this.renames}`;
      this.later(200, () => this.login());
    } else if (this.state === 'moving' && MOVES.has(m.packet)) {
      // The room filled up, started or closed while we were on our way.
      this.state = 'lobby';
      this.thinkThenAct();
    }
  }

  private lobbyState(m: LobbyState): void {
    this.rooms = m.rooms;
    if (!this.check.lobbyState(m.chatSeq)) return;
    this.state = 'lobby';
    if (this.retiring) {
      this.stop();
      return;
    }
    this.maybeSay(this.record.games.length === 0 ? 'hello' : 'gg');
    this.thinkThenAct();
  }

  private chatLine(m: ChatLine): void {
    this.check.chatLine(m.roomId, m.seq);
    this.record.chatReceived++;
    if (this.options.keepChat) this.record.chat.push({ roomId: m.roomId, seq: m.seq, playerId: m.playerId, from: m.from, text: m.text });
  }

  private left(m: Left): void {
    this.check.left(m.roomId, m.chatSeq);
    // Leaving mid-round (a LeaveRoom that crossed a GameStart) forfeits it.
    const game = this.currentGame();
    if (game !== undefined) game.over = { reason: 'forfeit', ticks: game.lastTick, place: 0 };
    this.clearTimers();
    this.room = undefined;
    this.state = 'moving';
  }

  private roomState(m: RoomState): void {
    const entered = this.check.roomState(m.room.id, m.chatSeq);
    if (entered) {
      this.state = 'room';
      this.room = { info: m.room, members: m.members, enteredMs: performance.now(), readySent: false };
      this.maybeSay('glhf');
      this.later(this.options.readyAfterMs, () => this.considerReady());
      this.later(this.options.giveUpMs, () => this.considerLeaving());
    }
    if (this.room === undefined) return;
    this.room.info = m.room;
    this.room.members = m.members;
    this.considerReady();
  }

  private gameStart(m: GameStart): void {
    this.check.gameStart(m.roomId, m.gameId);
    this.clearTimers();
    this.state = 'game';
    this.record.games.push({ gameId: m.gameId, roomId: m.roomId, players: m.players.map((p) => p.id), lastTick: 0, playersLeft: [] });
    this.inputs = setInterval(() => this.steer(), this.options.inputEveryMs);
  }

  private gameTick(m: GameTick): void {
    this.check.gameTick(m.gameId, m.tick);
    const game = this.currentGame();
    if (game !== undefined) game.lastTick = m.tick;
    const me = m.players.find((p) => p.id === this.record.playerId);
    this.me = me && { x: me.x, y: me.y };
    this.coin = m.coin ? { x: m.coin.x, y: m.coin.y } : undefined;
  }

  private playerLeft(m: PlayerLeft): void {
    this.check.playerLeft(m.roomId);
    this.currentGame()?.playersLeft.push({ playerId: m.playerId, reason: m.reason });
  }

  private gameOver(m: GameOver): void {
    this.check.gameOver(m.gameId, m.ticks);
    const game = this.currentGame();
    const mine = m.results.find((r) => r.id === this.record.playerId);
    if (game !== undefined) game.over = { reason: m.reason, ticks: m.ticks, place: mine?.place ?? 0 };
    this.stopInputs();
    if (this.retiring) this.stop();
  }

  private thinkThenAct(): void {
    const [min, max] = this.options.thinkMs;
    this.later(min + this.options.random() * (max - min), () => this.act());
  }

  /** In the lobby: join the fullest room that has space, or open one. */
  private act(): void {
    if (this.state !== 'lobby') return;
    const open = this.rooms.filter((r) => !r.inGame && r.players < r.maxPlayers);
    this.state = 'moving';
    if (open.length > 0) {
      const most = Math.max(...open.map((r) => r.players));
      const fullest = open.filter((r) => r.players === most);
      const pick = fullest[Math.floor(this.options.random() * fullest.length)];
      this.send('lobby.JoinRoom', { roomId: pick.id });
    } else {
      this.send('lobby.CreateRoom', { name: `${this.record.nickname}'s room`, maxPlayers: this.options.roomSize });
    }
  }

  /** Ready when the room is full, or when someone else is here and we have waited long enough. */
  private considerReady(): void {
    const room = this.room;
    if (this.state !== 'room' || room === undefined || room.readySent) return;
    const full = room.members.length >= room.info.maxPlayers;
    const waited = performance.now() - room.enteredMs >= this.options.readyAfterMs;
    if (full || (waited && room.members.length >= 2)) {
      room.readySent = true;
      this.send('lobby.Ready', { ready: true });
    }
  }

  private considerLeaving(): void {
    if (this.state !== 'room' || this.room === undefined) return;
    if (this.room.members.length < 2) {
      this.state = 'moving';
      this.send('lobby.LeaveRoom', {});
    } else {
      this.later(this.options.giveUpMs, () => this.considerLeaving());
    }
  }

  /** Mostly toward the coin, with noise; now and then anywhere. */
  private steer(): void {
    const r = this.options.random;
    let dx = r() * 2 - 1;
    let dy = r() * 2 - 1;
    if (this.me !== undefined && this.coin !== undefined && r() < 0.7) {
      const len = Math.hypot(this.coin.x - this.me.x, this.coin.y - this.me.y) || 1;
      dx = (this.coin.x - this.me.x) / len + (r() - 0.5) * 0.6;
      dy = (this.coin.y - this.me.y) / len + (r() - 0.5) * 0.6;
    }
    this.send('lobby.Input', { dx: Math.max(-1, Math.min(1, dx)), dy: Math.max(-1, Math.min(1, dy)) });
  }

  private maybeSay(what: string): void {
    if (this.options.random() >= this.options.chatChance) return;
    this.record.chatSent++;
    this.send('lobby.Say', { text: `${what} from ${this.record.nickname} #${this.record.chatSent}` });
  }

  private currentGame(): GameRecord | undefined {
    const game = this.record.games[this.record.games.length - 1];
    return game !== undefined && game.over === undefined ? game : undefined;
  }

  /** The connection is gone (for now): forget where we were; the server has. */
  private offline(): void {
    if (this.state !== 'closed') this.state = 'offline';
    const game = this.currentGame();
    if (game !== undefined) game.over = { reason: 'offline', ticks: game.lastTick, place: 0 };
    this.clearTimers();
    this.room = undefined;
    this.check.reset();
  }

  private send(packet: string, message: unknown): void {
    // While reconnecting there is nothing to say: the bot logs in afresh once it is back.
    if (this.client?.session.isOpen) this.client.send(packet, message);
  }

  private later(delayMs: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, delayMs);
    this.timers.add(timer);
  }

  private stopInputs(): void {
    clearInterval(this.inputs);
    this.inputs = undefined;
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.stopInputs();
  }
}
