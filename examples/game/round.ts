import type { Room } from '../../src';
import type { Player } from './player';
import type { GameOver, GameTick, Result, Vec2 } from './messages';

export interface RoundOptions {
  /** Ticks per second; every tick moves everyone and sends a GameTick to the room. */
  tickRate: number;
  /** The round ends after this long (or when one player is left). */
  durationMs: number;
  /** The arena is a square of this side. */
  arenaSize: number;
}

/** Arena units per second at full stick. */
const SPEED = 25;
/** How close a player must get to the coin to take it. */
const REACH = 4;

interface Runner {
  readonly player: Player;
  x: number;
  y: number;
  dx: number;
  dy: number;
  score: number;
}

/**
 * One round of "grab the coin": players steer, every tick the room gets
 * everyone's position, whoever touches the coin scores and it jumps
 * elsewhere. The round only talks to its own room.
 */
export class Round {
  private readonly runners = new Map<number, Runner>();
  private readonly lastTick: number;
  private tick = 0;
  private coin: Vec2;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    readonly gameId: number,
    private readonly roomId: number,
    private readonly channel: Room,
    players: readonly Player[],
    private readonly options: RoundOptions,
    private readonly hooks: { tickTook(ms: number): void; ended(reason: string): void },
  ) {
    this.lastTick = Math.max(1, Math.round((options.durationMs * options.tickRate) / 1000));
    this.coin = this.randomSpot();
    for (const player of players) {
      const spot = this.randomSpot();
      this.runners.set(player.id, { player, x: spot.x, y: spot.y, dx: 0, dy: 0, score: 0 });
    }
  }

  get playerCount(): number {
    return this.runners.size;
  }

  start(): void {
    const players = [...this.runners.values()].map(({ player }) => ({ id: player.id, nickname: player.nickname, ready: true }));
    const { tickRate, durationMs, arenaSize } = this.options;
    this.channel.broadcast('lobby.GameStart', { roomId: this.roomId, gameId: this.gameId, tickRate, durationMs, arenaSize, players });
    this.timer = setInterval(this.step, 1000 / tickRate);
  }

  /** Sets where a player is heading; each of dx, dy is clamped to [-1, 1]. */
  steer(player: Player, dx: number, dy: number): void {
    const runner = this.runners.get(player.id);
    if (runner === undefined) return;
    runner.dx = clamp(dx);
    runner.dy = clamp(dy);
  }

  /** A player left mid-round; with one (or no) player left, the round is over. */
  remove(player: Player): void {
    if (!this.runners.delete(player.id) || this.ended) return;
    if (this.runners.size <= 1) this.end('last-player');
  }

  /** Stops without a word to the players: the server is shutting down. */
  stop(): void {
    clearInterval(this.timer);
    this.ended = true;
  }

  private readonly step = (): void => {
    const started = performance.now();
    this.tick++;
    const dt = 1 / this.options.tickRate;
    const size = this.options.arenaSize;
    for (const r of this.runners.values()) {
      r.x = Math.min(size, Math.max(0, r.x + r.dx * SPEED * dt));
      r.y = Math.min(size, Math.max(0, r.y + r.dy * SPEED * dt));
      if (Math.hypot(r.x - this.coin.x, r.y - this.coin.y) <= REACH) {
        r.score++;
        this.coin = this.randomSpot();
      }
    }
    const players = [...this.runners.values()].map((r) => ({ id: r.player.id, x: r.x, y: r.y, score: r.score }));
    const tick: GameTick = { gameId: this.gameId, tick: this.tick, players, coin: this.coin };
    this.channel.broadcast('lobby.GameTick', tick);
    this.hooks.tickTook(performance.now() - started);
    if (this.tick >= this.lastTick) this.end('time-up');
  };

  private end(reason: string): void {
    this.stop();
    const over: GameOver = { gameId: this.gameId, reason, ticks: this.tick, results: this.results() };
    this.channel.broadcast('lobby.GameOver', over);
    this.hooks.ended(reason);
  }

  private results(): Result[] {
    const sorted = [...this.runners.values()].sort((a, b) => b.score - a.score);
    return sorted.map((r) => ({
      id: r.player.id,
      nickname: r.player.nickname,
      score: r.score,
      place: 1 + sorted.filter((other) => other.score > r.score).length,
    }));
  }

  private randomSpot(): Vec2 {
    return { x: Math.random() * this.options.arenaSize, y: Math.random() * this.options.arenaSize };
  }
}

function clamp(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(-1, v)) : 0;
}
