/**
 * A small seeded PRNG (mulberry32) for the stress suite. Every random choice
 * a stress test makes comes from one of these, so a failure names its seed
 * and `RINGPORT_STRESS_SEED=<seed>` replays the same choices (the network's
 * timing still varies from run to run).
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform uint32. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** An integer in [lo, hi] whose logarithm is uniform: small sizes are as likely as large ones. */
  logInt(lo: number, hi: number): number {
    const a = Math.log(Math.max(1, lo));
    const b = Math.log(hi + 1);
    return Math.min(hi, Math.max(lo, Math.floor(Math.exp(a + this.float() * (b - a)))));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)];
  }

  /** A child generator whose sequence depends on this one's seed and `label` only. */
  fork(label: string | number): Rng {
    return new Rng(mix(this.next(), hashString(String(label))));
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.next(), i);
    for (; i < n; i++) out[i] = this.next() & 255;
    return out;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ (b >>> 16), 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The default seed when RINGPORT_STRESS_SEED is not set: runs are reproducible by default. */
const DEFAULT_SEED = 0x5eed2024;

/** The suite's base seed: RINGPORT_STRESS_SEED (decimal or 0x hex) or the default. */
export function stressSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.RINGPORT_STRESS_SEED;
  if (text === undefined || text.trim() === '') return DEFAULT_SEED;
  const value = Number(text.trim());
  if (!Number.isFinite(value)) throw new Error(`RINGPORT_STRESS_SEED must be a number, got '${text}'`);
  return value >>> 0;
}

/** The seed of one test: the base seed mixed with the test's name, so tests do not share sequences. */
export function seedFor(base: number, name: string): number {
  return mix(base, hashString(name));
}
