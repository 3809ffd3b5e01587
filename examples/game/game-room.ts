import type { Room, Server } from '../../src';
import type { PlayerData } from './player';
import type { Player } from './player';
import type { Member, RoomInfo, RoomState } from './messages';
import { Refusal } from './refusal';
import { Round, type RoundOptions } from './round';

/** What a room needs from the lobby that holds it. */
export interface RoomHost {
  readonly roundOptions: RoundOptions;
  /** Puts a player who left a room back in the lobby. */
  enterLobby(player: Player): void;
  /** The room is empty and gone: drop it from the list. */
  roomClosed(room: GameRoom): void;
  /** Something the lobby's room list shows has changed. */
  changed(): void;
  nextGameId(): number;
  gameStarted(): void;
  gameEnded(reason: string): void;
  tickTook(ms: number): void;
}

/**
 * A game room: players gather, chat and ready up; when every member (two or
 * more) is ready a round starts; when it ends everyone goes back to the
 * lobby and the room closes. Its members share one ringport room, so
 * everything it broadcasts reaches them and nobody else.
 */
export class GameRoom {
  private readonly members = new Map<number, Player>();
  private readonly channel: Room<PlayerData>;
  private chatSeq = 0;
  private round: Round | undefined;
  private closed = false;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly maxPlayers: number,
    server: Server<PlayerData>,
    private readonly host: RoomHost,
  ) {
    this.channel = server.room(`room-${id}`);
  }

  get size(): number {
    return this.members.size;
  }

  get inGame(): boolean {
    return this.round !== undefined;
  }

  info(): RoomInfo {
    return { id: this.id, name: this.name, maxPlayers: this.maxPlayers, players: this.members.size, inGame: this.inGame };
  }

  /** Throws a `Refusal` when a player cannot join now. */
  checkJoinable(): void {
    if (this.inGame) throw new Refusal('room-in-game', `room ${this.id} is playing`);
    if (this.members.size >= this.maxPlayers) throw new Refusal('room-full', `room ${this.id} is full`);
  }

  join(player: Player): void {
    // Cannot fail: handlers run only for open sessions, and this one runs synchronously within one.
    this.channel.join(player.session);
    this.members.set(player.id, player);
    player.room = this;
    player.ready = false;
    this.pushState();
    this.host.changed();
  }

  /** A player leaves: by asking (`left`) or by disconnecting. */
  leave(player: Player, reason: 'left' | 'disconnected'): void {
    if (!this.members.delete(player.id)) return;
    player.room = undefined;
    player.ready = false;
    // Out of the ringport room first, so the leaver hears nothing more from here.
    this.channel.leave(player.session);
    if (this.round !== undefined) {
      this.channel.broadcast('lobby.PlayerLeft', { roomId: this.id, playerId: player.id, nickname: player.nickname, reason });
      this.round.remove(player); // may end the round, which empties the room
    } else if (this.members.size > 0) {
      this.pushState();
      this.startIfAllReady();
    }
    if (this.members.size === 0) this.close();
    // A player who asked goes back to the lobby, which by now lists this room as it is.
    if (reason === 'left') this.sendBackToLobby(player, 'left');
    this.host.changed();
  }

  say(player: Player, text: string): void {
    this.chatSeq++;
    this.channel.broadcast('lobby.ChatLine', { roomId: this.id, seq: this.chatSeq, playerId: player.id, from: player.nickname, text });
  }

  setReady(player: Player, ready: boolean): void {
    if (this.round !== undefined) throw new Refusal('in-game', 'the round has started');
    if (player.ready === ready) return;
    player.ready = ready;
    this.pushState();
    this.startIfAllReady();
  }

  steer(player: Player, dx: number, dy: number): void {
    // Inputs that were in flight when the round ended are dropped quietly.
    this.round?.steer(player, dx, dy);
  }

  /** Removes the room; a running round stops without telling anyone (the server is going away). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.round !== undefined) {
      this.round.stop();
      this.round = undefined;
      this.host.gameEnded('shutdown');
    }
    // Whoever is still here is on the way out with their session; the room must not start again.
    for (const player of this.members.values()) player.room = undefined;
    this.members.clear();
    this.host.roomClosed(this);
  }

  private startIfAllReady(): void {
    const players = [...this.members.values()];
    if (players.length < 2 || !players.every((p) => p.ready)) return;
    const gameId = this.host.nextGameId();
    this.round = new Round(gameId, this.id, this.channel, players, this.host.roundOptions, {
      tickTook: (ms) => this.host.tickTook(ms),
      ended: (reason) => this.roundEnded(reason),
    });
    this.host.gameStarted();
    this.round.start();
    this.host.changed();
  }

  private roundEnded(reason: string): void {
    this.round = undefined;
    this.host.gameEnded(reason);
    const players = [...this.members.values()];
    this.members.clear();
    this.close();
    for (const player of players) {
      player.room = undefined;
      player.ready = false;
      this.sendBackToLobby(player, 'game-over');
    }
  }

  /** Tells the player they left (with the chat seq, so they can tell they missed nothing) and moves them to the lobby. */
  private sendBackToLobby(player: Player, reason: string): void {
    if (!player.session.isOpen) return;
    player.session.send('lobby.Left', { roomId: this.id, reason, chatSeq: this.chatSeq });
    this.host.enterLobby(player);
  }

  private pushState(): void {
    const members: Member[] = [...this.members.values()].map((p) => ({ id: p.id, nickname: p.nickname, ready: p.ready }));
    const state: RoomState = { room: this.info(), members, chatSeq: this.chatSeq };
    this.channel.broadcast('lobby.RoomState', state);
  }
}
