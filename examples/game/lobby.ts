import type { Room, Server } from '../../src';
import { checkNickname } from './auth';
import { GameRoom, type RoomHost } from './game-room';
import type { Player, PlayerData, PlayerSession } from './player';
import type { CreateRoom, LobbyState } from './messages';
import { Refusal } from './refusal';
import type { RoundOptions } from './round';
import type { LobbyCounters } from './stats';

export interface LobbyOptions {
  round: RoundOptions;
  /** The largest player cap a room may ask for. */
  maxRoomPlayers: number;
  /** Changes are pushed to the lobby at most this often, so a burst of them costs one push. */
  pushMs: number;
}

const MAX_TEXT = 200;
const MAX_ROOM_NAME = 32;

/**
 * Who is online, which rooms exist, and the lobby itself: players who are
 * not in a room share the ringport room `lobby`, which hears lobby chat and
 * gets the room and player lists pushed whenever they change.
 */
export class Lobby implements RoomHost {
  readonly roundOptions: RoundOptions;
  private readonly players = new Map<number, Player>();
  private readonly nicknames = new Set<string>();
  private readonly rooms = new Map<number, GameRoom>();
  private readonly channel: Room<PlayerData>;
  private chatSeq = 0;
  private lastPlayerId = 0;
  private lastRoomId = 0;
  private lastGameId = 0;
  private pushTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly server: Server<PlayerData>,
    private readonly options: LobbyOptions,
    private readonly counters: LobbyCounters,
  ) {
    this.roundOptions = options.round;
    this.channel = server.room('lobby');
  }

  get playerCount(): number {
    return this.players.size;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** Takes the nickname, greets the player and puts them in the lobby. */
  login(session: PlayerSession, nickname: string): void {
    checkNickname(nickname);
    if (this.nicknames.has(nickname)) throw new Refusal('nickname-taken', `'${nickname}' is online already`);
    const player: Player = { id: ++this.lastPlayerId, nickname, session, room: undefined, ready: false };
    this.players.set(player.id, player);
    this.nicknames.add(nickname);
    session.data.player = player;
    this.counters.peakPlayers = Math.max(this.counters.peakPlayers, this.players.size);
    session.send('lobby.Welcome', { playerId: player.id, nickname });
    this.enterLobby(player);
  }

  /** The session closed: the player is gone, from their room too. */
  logout(session: PlayerSession): void {
    const player = session.data.player;
    if (player === undefined) return;
    this.players.delete(player.id);
    this.nicknames.delete(player.nickname);
    player.room?.leave(player, 'disconnected');
    this.changed();
  }

  say(player: Player, text: string): void {
    if (text.length === 0 || text.length > MAX_TEXT) throw new Refusal('bad-request', `say 1-${MAX_TEXT} characters`);
    if (player.room !== undefined) {
      player.room.say(player, text);
      return;
    }
    this.chatSeq++;
    this.channel.broadcast('lobby.ChatLine', { roomId: 0, seq: this.chatSeq, playerId: player.id, from: player.nickname, text });
  }

  createRoom(player: Player, request: CreateRoom): void {
    this.checkInLobby(player);
    const { name, maxPlayers } = request;
    if (name.length === 0 || name.length > MAX_ROOM_NAME) throw new Refusal('bad-request', `a room name is 1-${MAX_ROOM_NAME} characters`);
    if (maxPlayers < 2 || maxPlayers > this.options.maxRoomPlayers) {
      throw new Refusal('bad-request', `a room holds 2-${this.options.maxRoomPlayers} players`);
    }
    const room = new GameRoom(++this.lastRoomId, name, maxPlayers, this.server, this);
    this.rooms.set(room.id, room);
    this.leaveLobby(player);
    room.join(player);
  }

  joinRoom(player: Player, roomId: number): void {
    this.checkInLobby(player);
    const room = this.rooms.get(roomId);
    if (room === undefined) throw new Refusal('no-such-room', `there is no room ${roomId}`);
    room.checkJoinable();
    this.leaveLobby(player);
    room.join(player);
  }

  leaveRoom(player: Player): void {
    if (player.room === undefined) throw new Refusal('not-in-room', 'you are in the lobby');
    player.room.leave(player, 'left');
  }

  enterLobby(player: Player): void {
    if (!this.channel.join(player.session)) return;
    // The newcomer gets the lists at once; everyone else with the next push.
    player.session.send('lobby.LobbyState', this.state());
    this.changed();
  }

  roomClosed(room: GameRoom): void {
    this.rooms.delete(room.id);
    this.changed();
  }

  /** Schedules one push of the lists to everyone in the lobby. */
  changed(): void {
    if (!this.closed) this.pushTimer ??= setTimeout(this.push, this.options.pushMs);
  }

  nextGameId(): number {
    return ++this.lastGameId;
  }

  gameStarted(): void {
    this.counters.gameStarted();
  }

  gameEnded(reason: string): void {
    this.counters.gameEnded(reason);
  }

  tickTook(ms: number): void {
    this.counters.tickTook(ms);
  }

  /** Stops every round and timer; the server is about to close the sessions. */
  close(): void {
    this.closed = true;
    clearTimeout(this.pushTimer);
    for (const room of [...this.rooms.values()]) room.close();
  }

  private checkInLobby(player: Player): void {
    if (player.room !== undefined) throw new Refusal('not-in-lobby', 'leave your room first');
  }

  /** Tells the player they left the lobby, with its chat seq, before they enter a room. */
  private leaveLobby(player: Player): void {
    player.session.send('lobby.Left', { roomId: 0, reason: 'joined-room', chatSeq: this.chatSeq });
  }

  private readonly push = (): void => {
    this.pushTimer = undefined;
    if (this.channel.size > 0) this.channel.broadcast('lobby.LobbyState', this.state());
  };

  private state(): LobbyState {
    return {
      rooms: [...this.rooms.values()].map((room) => room.info()),
      players: [...this.players.values()].map((p) => ({ id: p.id, nickname: p.nickname, roomId: p.room?.id ?? 0 })),
      chatSeq: this.chatSeq,
    };
  }
}
