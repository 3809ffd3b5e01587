import { byId, colourOf, el } from './dom';
import { playerChip } from './lobby-view';
import type { GameOver, GameStart, GameTick, PlayerLeft } from '../messages';

/** Arrow keys and WASD: which way each one pushes. */
const KEYS: Record<string, readonly [number, number]> = {
  ArrowLeft: [-1, 0], a: [-1, 0],
  ArrowRight: [1, 0], d: [1, 0],
  ArrowUp: [0, -1], w: [0, -1],
  ArrowDown: [0, 1], s: [0, 1],
};
/** As in round.ts: how close a player must get to the coin to take it. */
const REACH = 4;
const PLAYER_RADIUS = 2.5;
/** Pixels around the arena, so a player or coin at its edge is drawn whole. */
const PAD = 14;

const ENDINGS: Record<string, string> = { 'time-up': 'time is up', 'last-player': 'one player left' };

/**
 * The round: a canvas that draws every player and the coin from each
 * GameTick, a scoreboard, and the results. It steers with the arrow keys or
 * WASD, or towards the mouse (or a finger) held on the arena, and sends an
 * Input whenever the direction changes; the server moves everyone by their
 * last Input on each tick.
 */
export class GameView {
  private readonly canvas = byId<HTMLCanvasElement>('arena');
  private readonly ctx = this.canvas.getContext('2d')!;
  private readonly status = byId('game-status');
  private readonly scoreboard = byId('scoreboard');
  private readonly scores = byId<HTMLOListElement>('scores');
  private readonly results = byId('results');
  private readonly resultsTitle = byId('results-title');
  private readonly resultRows = byId<HTMLTableSectionElement>('result-rows');
  private readonly held = new Set<string>();
  /** Where the pointer is held on the arena, in arena units. */
  private pointer: { x: number; y: number } | undefined;
  private game: GameStart | undefined;
  private readonly names = new Map<number, string>();
  private last: GameTick | undefined;
  private myId = 0;
  private sent = { dx: 0, dy: 0 };
  private playing = false;

  constructor(
    private readonly steer: (dx: number, dy: number) => void,
    back: () => void,
  ) {
    window.addEventListener('keydown', (event) => this.key(event, true));
    window.addEventListener('keyup', (event) => this.key(event, false));
    window.addEventListener('blur', () => {
      this.held.clear();
      this.sendInput();
    });
    this.canvas.addEventListener('pointerdown', (event) => {
      this.canvas.setPointerCapture(event.pointerId);
      this.point(event);
    });
    this.canvas.addEventListener('pointermove', (event) => this.pointer && this.point(event));
    const release = (): void => {
      this.pointer = undefined;
      this.sendInput();
    };
    this.canvas.addEventListener('pointerup', release);
    this.canvas.addEventListener('pointercancel', release);
    byId('back').addEventListener('click', back);
  }

  start(m: GameStart, myId: number): void {
    this.game = m;
    this.myId = myId;
    this.names.clear();
    for (const p of m.players) this.names.set(p.id, p.nickname);
    this.last = undefined;
    this.playing = true;
    this.sent = { dx: 0, dy: 0 };
    this.results.hidden = true;
    this.scoreboard.hidden = false;
    delete this.canvas.dataset.over;
    this.status.textContent = `Round ${m.gameId}: grab the coin! Arrow keys or WASD to move.`;
    this.scores.replaceChildren();
    this.draw();
    this.sendInput(); // a key already held counts from the first tick
  }

  tick(m: GameTick): void {
    if (m.gameId !== this.game?.gameId) return;
    this.last = m;
    const { durationMs, tickRate } = this.game;
    const total = Math.max(1, Math.round((durationMs * tickRate) / 1000));
    const secondsLeft = Math.max(0, (total - m.tick) / tickRate);
    this.status.textContent = `Tick ${m.tick} of ${total}, ${secondsLeft.toFixed(1)} s left`;
    const me = m.players.find((p) => p.id === this.myId);
    this.canvas.dataset.tick = String(m.tick);
    if (me !== undefined) {
      this.canvas.dataset.x = me.x.toFixed(1);
      this.canvas.dataset.y = me.y.toFixed(1);
    }
    const ranked = [...m.players].sort((a, b) => b.score - a.score);
    this.scores.replaceChildren(
      ...ranked.map((p) => el('li', {}, playerChip(p.id, this.names.get(p.id) ?? `#${p.id}`, p.id === this.myId), el('span', {}, String(p.score)))),
    );
    this.draw();
    if (this.pointer !== undefined) this.sendInput(); // the way to the pointer changes as we move
  }

  playerLeft(m: PlayerLeft): void {
    this.names.set(m.playerId, `${m.nickname} (${m.reason})`);
  }

  over(m: GameOver): void {
    this.playing = false;
    this.resultsTitle.textContent = `Round over: ${ENDINGS[m.reason] ?? m.reason} after ${m.ticks} ticks`;
    this.resultRows.replaceChildren(
      ...m.results.map((r) =>
        el(
          'tr',
          { class: r.id === this.myId ? 'mine' : '' },
          el('td', {}, r.place === 1 ? '1st' : r.place === 2 ? '2nd' : r.place === 3 ? '3rd' : `${r.place}th`),
          el('td', {}, playerChip(r.id, r.nickname, r.id === this.myId)),
          el('td', {}, String(r.score)),
        ),
      ),
    );
    this.results.hidden = false;
    this.scoreboard.hidden = true; // the results say it all
    this.canvas.dataset.over = String(m.ticks);
    this.status.textContent = `Round ${m.gameId} is over.`;
    this.draw();
  }

  /** The connection is gone: nothing more to send. */
  stop(): void {
    this.playing = false;
  }

  private key(event: KeyboardEvent, down: boolean): void {
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (!(key in KEYS) || event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (this.playing) event.preventDefault(); // arrows would scroll the page
    if (down) this.held.add(key);
    else this.held.delete(key);
    this.sendInput();
  }

  private point(event: PointerEvent): void {
    const box = this.canvas.getBoundingClientRect();
    const px = this.canvas.width / box.width; // CSS pixels to canvas pixels
    const scale = this.scale();
    this.pointer = { x: ((event.clientX - box.left) * px - PAD) / scale, y: ((event.clientY - box.top) * px - PAD) / scale };
    this.sendInput();
  }

  /** Where the player wants to go: the keys held, else towards the pointer, else nowhere. */
  private direction(): { dx: number; dy: number } {
    if (this.held.size > 0) {
      let dx = 0;
      let dy = 0;
      for (const key of this.held) {
        dx += KEYS[key][0];
        dy += KEYS[key][1];
      }
      return { dx: Math.max(-1, Math.min(1, dx)), dy: Math.max(-1, Math.min(1, dy)) };
    }
    const me = this.last?.players.find((p) => p.id === this.myId);
    if (this.pointer === undefined || me === undefined) return { dx: 0, dy: 0 };
    const distance = Math.hypot(this.pointer.x - me.x, this.pointer.y - me.y);
    if (distance < 1) return { dx: 0, dy: 0 };
    return { dx: (this.pointer.x - me.x) / distance, dy: (this.pointer.y - me.y) / distance };
  }

  private sendInput(): void {
    if (!this.playing) return;
    const { dx, dy } = this.direction();
    if (Math.abs(dx - this.sent.dx) < 0.05 && Math.abs(dy - this.sent.dy) < 0.05) return;
    this.sent = { dx, dy };
    this.steer(dx, dy);
  }

  /** Canvas pixels per arena unit. */
  private scale(): number {
    return (this.canvas.width - 2 * PAD) / (this.game?.arenaSize ?? 100);
  }

  private draw(): void {
    const { ctx } = this;
    const side = this.canvas.width;
    const size = this.game?.arenaSize ?? 100;
    const scale = this.scale();
    const at = (u: number): number => PAD + u * scale;
    ctx.fillStyle = '#0f141b';
    ctx.fillRect(0, 0, side, side);
    ctx.strokeStyle = '#1b2430';
    ctx.lineWidth = 1;
    for (let u = 0; u <= size; u += 10) {
      ctx.beginPath();
      ctx.moveTo(at(u), at(0));
      ctx.lineTo(at(u), at(size));
      ctx.moveTo(at(0), at(u));
      ctx.lineTo(at(size), at(u));
      ctx.stroke();
    }
    const tick = this.last;
    if (tick?.coin) {
      ctx.fillStyle = '#f5c542';
      ctx.shadowColor = '#f5c542';
      ctx.shadowBlur = 16;
      circle(ctx, at(tick.coin.x), at(tick.coin.y), REACH * scale * 0.6);
      ctx.shadowBlur = 0;
    }
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    for (const p of tick?.players ?? []) {
      const x = at(p.x);
      const y = at(p.y);
      const r = PLAYER_RADIUS * scale;
      ctx.fillStyle = colourOf(p.id);
      circle(ctx, x, y, r);
      if (p.id === this.myId) {
        ctx.strokeStyle = '#ffffff';
        ctx.lineWidth = 3;
        ctx.beginPath();
        ctx.arc(x, y, r + 3, 0, Math.PI * 2);
        ctx.stroke();
      }
      ctx.fillStyle = '#d8dee9';
      const above = y - r - 6;
      ctx.fillText(this.names.get(p.id) ?? `#${p.id}`, x, above > 12 ? above : y + r + 16); // below at the top edge
    }
    if (!this.playing && this.last !== undefined) {
      ctx.fillStyle = 'rgba(15, 20, 27, 0.6)';
      ctx.fillRect(0, 0, side, side);
    }
  }
}

function circle(ctx: CanvasRenderingContext2D, x: number, y: number, r: number): void {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.fill();
}
