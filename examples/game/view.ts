import type { BotsReport } from './bots';
import type { LobbyStats } from './server';
import type { PerSecond } from './stats';

export interface ViewSample {
  readonly elapsedMs: number;
  /** Undefined: runs until Ctrl-C. */
  readonly durationMs?: number;
  readonly stats: LobbyStats;
  readonly rates: PerSecond;
  readonly bots?: BotsReport;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function count(n: number): string {
  return int.format(n);
}

function bytes(n: number): string {
  if (n < 1000) return `${n.toFixed(0)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function ms(n: number): string {
  return `${n.toFixed(n < 10 ? 2 : 1)} ms`;
}

function seconds(msValue: number): string {
  return `${(msValue / 1000).toFixed(0)} s`;
}

function botsLine(b: BotsReport): string {
  return `${b.online} of ${b.bots} online, ${b.reconnecting} reconnecting, ${count(b.gamesPlayed)} games played, ` +
    `${count(b.chatLines)} chat lines, ${b.errors} errors, ${b.violations} order violations`;
}

/** The live panel, one string per line. */
export function panel(s: ViewSample): string[] {
  const { stats, rates } = s;
  const finished = Object.values(stats.gamesEnded).reduce((a, b) => a + b, 0);
  const lines = [
    `elapsed      ${seconds(s.elapsedMs)}${s.durationMs === undefined ? '' : ` of ${seconds(s.durationMs)}`}`,
    `sessions     ${count(stats.sessions).padEnd(12)}players ${count(stats.players)}`,
    `rooms        ${count(stats.rooms).padEnd(12)}games running ${count(stats.gamesRunning)} (started ${count(stats.gamesStarted)}, finished ${count(finished)})`,
    `packets/s    in ${count(rates.packetsIn).padStart(9)}   out ${count(rates.packetsOut).padStart(9)}`,
    `bytes/s      in ${bytes(rates.bytesIn).padStart(9)}   out ${bytes(rates.bytesOut).padStart(9)}`,
    `tick p99     ${ms(stats.tick.p99Ms).padEnd(12)}p50 ${ms(stats.tick.p50Ms)}, max ${ms(stats.tick.maxMs)}, ${count(stats.tick.count)} ticks/s`,
  ];
  if (s.bots !== undefined) lines.push(`bots         ${botsLine(s.bots)}`);
  lines.push('Ctrl-C to stop');
  return lines;
}

/** The same, as one line for a log or a pipe. */
export function line(s: ViewSample): string {
  const { stats, rates } = s;
  const parts = [
    `[${seconds(s.elapsedMs).padStart(4)}]`,
    stats.backend.kind,
    `sessions=${stats.sessions}`,
    `players=${stats.players}`,
    `rooms=${stats.rooms}`,
    `games=${stats.gamesRunning}`,
    `in=${count(rates.packetsIn)}pkt/s,${bytes(rates.bytesIn)}/s`,
    `out=${count(rates.packetsOut)}pkt/s,${bytes(rates.bytesOut)}/s`,
    `tick_p99=${ms(stats.tick.p99Ms)}`,
  ];
  if (s.bots !== undefined) parts.push(`bots=${s.bots.online}/${s.bots.bots}`);
  return parts.join(' ');
}

/**
 * Shows samples: on a terminal, a panel redrawn in place; anywhere else
 * (a pipe, a file, CI), one line per sample.
 */
export class LiveView {
  private drawn = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly title: readonly string[],
  ) {
    if (out.isTTY) out.write('\x1b[?25l'); // hide the cursor while redrawing
    else for (const t of title) out.write(`${t}\n`);
  }

  show(sample: ViewSample): void {
    if (!this.out.isTTY) {
      this.out.write(`${line(sample)}\n`);
      return;
    }
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    // A wrapped line would throw the count off, so lines are cut to the terminal's width.
    const lines = [...this.title, '', ...panel(sample)].map((l) => l.slice(0, width));
    let text = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    for (const l of lines) text += `\x1b[2K${l}\n`;
    this.out.write(text);
    this.drawn = lines.length;
  }

  /** Stops redrawing: the next output goes below the panel. */
  finish(): void {
    if (!this.out.isTTY) return;
    // The last line says how to stop; once stopped, it goes.
    this.out.write(`${this.drawn > 0 ? '\x1b[1F\x1b[2K' : ''}\x1b[?25h`);
  }

  /** The closing summary of a run. */
  summary(elapsedMs: number, stats: LobbyStats, bots?: BotsReport, leftOpen?: { sessions: number; rooms: number }): void {
    const sec = elapsedMs / 1000;
    const ended = Object.entries(stats.gamesEnded).map(([reason, n]) => `${n} ${reason}`).join(', ') || 'none';
    const finished = Object.values(stats.gamesEnded).reduce((a, b) => a + b, 0);
    const lines = [
      `summary: ${sec.toFixed(1)} s on ${stats.backend.kind}`,
      `  players    peak ${stats.peakPlayers}`,
      `  games      ${count(stats.gamesStarted)} started, ${count(finished)} finished (${ended}), peak ${stats.peakGamesRunning} at once`,
      `  packets    in ${count(stats.packetsIn)} (${count(stats.packetsIn / sec)}/s)   out ${count(stats.packetsOut)} (${count(stats.packetsOut / sec)}/s)`,
      `  bytes      in ${bytes(stats.bytesIn)} (${bytes(stats.bytesIn / sec)}/s)   out ${bytes(stats.bytesOut)} (${bytes(stats.bytesOut / sec)}/s)`,
      `  tick       p50 ${ms(stats.ticks.p50Ms)}, p99 ${ms(stats.ticks.p99Ms)}, max ${ms(stats.ticks.maxMs)} over ${count(stats.ticks.count)} ticks`,
    ];
    if (bots !== undefined) {
      lines.push(
        `  bots       ${bots.bots} bots, ${bots.logins} logins, ${count(bots.gamesPlayed)} games played, ` +
          `${count(bots.chatLines)} chat lines, ${bots.roomRaces} lost races for a seat, ${bots.errors} errors, ` +
          `${bots.violations} order violations`,
      );
    }
    if (leftOpen !== undefined) lines.push(`  left open  ${leftOpen.sessions} sessions, ${leftOpen.rooms} rooms`);
    this.out.write(`${lines.join('\n')}\n`);
  }
}
