/** Bucket width: each bucket is 5% wider than the last, so a percentile is within 5%. */
const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** Durations are kept in microseconds; anything under 1 µs lands in bucket 0. */
const MIN_US = 1;

/** Percentiles of durations in a fixed amount of memory (log-spaced buckets). */
export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    const us = Math.max(MIN_US, ms * 1000);
    const bucket = Math.floor(Math.log(us / MIN_US) / LOG_GROWTH);
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + 1);
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The duration (ms) under which a fraction `q` (0..1) of the recorded ones fall; 0 when empty. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket)!;
      // The bucket's upper edge, capped by the real maximum.
      if (seen >= rank) return Math.min(this.maxMs, (MIN_US * GROWTH ** (bucket + 1)) / 1000);
    }
    return this.maxMs;
  }

  summary(): TickSummary {
    return { count: this.count, p50Ms: this.percentile(0.5), p99Ms: this.percentile(0.99), maxMs: this.maxMs };
  }
}

export interface TickSummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** What the lobby counts as it runs; the server's `stats()` reads it. */
export class LobbyCounters {
  gamesStarted = 0;
  gamesRunning = 0;
  peakGamesRunning = 0;
  readonly gamesEnded: Record<string, number> = {};
  peakPlayers = 0;
  /** Tick durations since the server started. */
  readonly ticks = new Histogram();
  /** Tick durations in the last whole second (see `rotate`). */
  lastSecond: TickSummary = new Histogram().summary();
  private window = new Histogram();

  gameStarted(): void {
    this.gamesStarted++;
    this.gamesRunning++;
    this.peakGamesRunning = Math.max(this.peakGamesRunning, this.gamesRunning);
  }

  gameEnded(reason: string): void {
    this.gamesRunning--;
    this.gamesEnded[reason] = (this.gamesEnded[reason] ?? 0) + 1;
  }

  tickTook(ms: number): void {
    this.ticks.record(ms);
    this.window.record(ms);
  }

  /** Closes the current one-second window of tick durations. */
  rotate(): void {
    this.lastSecond = this.window.summary();
    this.window = new Histogram();
  }
}

/** Counters that only grow; `Rates` turns two readings of them into per-second rates. */
export interface Totals {
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export type PerSecond = Totals;

/** Per-second rates between successive readings of growing counters. */
export class Rates {
  private last: { at: number; totals: Totals } | undefined;

  /** Takes a reading; returns the rates since the previous one (zeros the first time). */
  sample(totals: Totals, atMs = performance.now()): PerSecond {
    const last = this.last;
    this.last = { at: atMs, totals };
    if (last === undefined || atMs <= last.at) return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
    const perSec = 1000 / (atMs - last.at);
    return {
      packetsIn: (totals.packetsIn - last.totals.packetsIn) * perSec,
      packetsOut: (totals.packetsOut - last.totals.packetsOut) * perSec,
      bytesIn: (totals.bytesIn - last.totals.bytesIn) * perSec,
      bytesOut: (totals.bytesOut - last.totals.bytesOut) * perSec,
    };
  }
}
