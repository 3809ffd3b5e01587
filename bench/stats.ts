/**
 * Latency samples go into a log-scaled histogram rather than an array: its
 * memory is fixed (no allocation per sample, whatever the frame rate), and
 * 1/64 of an octave per bucket (about 1.1 %) is finer than run-to-run noise.
 */
const BUCKETS_PER_OCTAVE = 64;
// 2^32 µs is over an hour; anything slower lands in the last bucket.
const OCTAVES = 32;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS_PER_OCTAVE * OCTAVES + 1);
  private total = 0;

  get count(): number {
    return this.total;
  }

  record(micros: number): void {
    // Below 1 µs is beneath what a timestamp crossing two processes can resolve: one bucket.
    const index = micros <= 1 ? 0 : Math.min(this.counts.length - 1, 1 + Math.floor(Math.log2(micros) * BUCKETS_PER_OCTAVE));
    this.counts[index]++;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** The value below which a fraction `p` (0..1) of the samples lie, as the geometric middle of its bucket. */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(p * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return i === 0 ? 1 : 2 ** ((i - 0.5) / BUCKETS_PER_OCTAVE);
    }
    return Infinity;
  }
}

/** The median of a few run results; NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Measures this process's CPU time over a window, as a percentage of one core. */
export class CpuMeter {
  private startCpu = process.cpuUsage();
  private startNs = process.hrtime.bigint();

  restart(): void {
    this.startCpu = process.cpuUsage();
    this.startNs = process.hrtime.bigint();
  }

  percentOfOneCore(): number {
    const { user, system } = this.split();
    return user + system;
  }

  /** User and system time apart, each in % of one core. */
  split(): { user: number; system: number } {
    const used = process.cpuUsage(this.startCpu);
    const elapsedMicros = Number(process.hrtime.bigint() - this.startNs) / 1000;
    return { user: (used.user / elapsedMicros) * 100, system: (used.system / elapsedMicros) * 100 };
  }
}
