/**
 * A client-side witness of the server's promises: every chat line of the
 * place you are in reaches you exactly once and in order (ChatLine seqs
 * count up by one, and the messages that put you in or take you out of a
 * place carry its current seq); nothing from another place reaches you; and
 * every tick of your round arrives, in order, up to the one GameOver names.
 * Each broken promise is written down in `violations`.
 */
export class OrderCheck {
  readonly violations: string[] = [];
  /** Where the server has put us: 0 the lobby, n room n, undefined between places (or not logged in). */
  place: number | undefined = undefined;
  private chatSeq = 0;
  private game: { id: number; tick: number; over: boolean } | undefined = undefined;

  /** A new connection: nothing carries over. */
  reset(): void {
    this.place = undefined;
    this.game = undefined;
  }

  /** Returns true when this state is our entry into the lobby. */
  lobbyState(chatSeq: number): boolean {
    return this.state(0, chatSeq, 'LobbyState');
  }

  /** Returns true when this state is our entry into the room. */
  roomState(roomId: number, chatSeq: number): boolean {
    return this.state(roomId, chatSeq, 'RoomState');
  }

  chatLine(roomId: number, seq: number): void {
    if (!this.expectPlace(roomId, `ChatLine ${seq}`)) return;
    if (seq !== this.chatSeq + 1) this.fail(`ChatLine in ${name(roomId)}: seq ${seq} after ${this.chatSeq}`);
    this.chatSeq = seq;
  }

  left(roomId: number, chatSeq: number): void {
    if (!this.expectPlace(roomId, 'Left')) return;
    if (chatSeq !== this.chatSeq) this.fail(`Left ${name(roomId)} at chat seq ${chatSeq}, saw up to ${this.chatSeq}`);
    this.place = undefined;
    this.game = undefined;
  }

  gameStart(roomId: number, gameId: number): void {
    if (!this.expectPlace(roomId, `GameStart ${gameId}`)) return;
    if (this.game !== undefined) this.fail(`GameStart ${gameId} during game ${this.game.id}`);
    this.game = { id: gameId, tick: 0, over: false };
  }

  gameTick(gameId: number, tick: number): void {
    const game = this.game;
    if (game === undefined || game.id !== gameId || game.over) {
      this.fail(`GameTick ${tick} of game ${gameId}, which we are not playing`);
      return;
    }
    if (tick !== game.tick + 1) this.fail(`game ${gameId}: tick ${tick} after ${game.tick}`);
    game.tick = tick;
  }

  gameOver(gameId: number, ticks: number): void {
    const game = this.game;
    if (game === undefined || game.id !== gameId || game.over) {
      this.fail(`GameOver of game ${gameId}, which we are not playing`);
      return;
    }
    if (ticks !== game.tick) this.fail(`game ${gameId} ended at tick ${ticks}, saw up to ${game.tick}`);
    game.over = true;
  }

  playerLeft(roomId: number): void {
    this.expectPlace(roomId, 'PlayerLeft');
  }

  private state(placeId: number, chatSeq: number, what: string): boolean {
    if (this.place === undefined) {
      this.place = placeId;
      this.chatSeq = chatSeq;
      return true;
    }
    if (this.expectPlace(placeId, what) && chatSeq !== this.chatSeq) {
      this.fail(`${what} of ${name(placeId)} at chat seq ${chatSeq}, saw up to ${this.chatSeq}`);
    }
    return false;
  }

  private expectPlace(placeId: number, what: string): boolean {
    if (this.place === placeId) return true;
    this.fail(`${what} for ${name(placeId)} while in ${this.place === undefined ? 'no place' : name(this.place)}`);
    return false;
  }

  private fail(violation: string): void {
    this.violations.push(violation);
  }
}

function name(placeId: number): string {
  return placeId === 0 ? 'the lobby' : `room ${placeId}`;
}
