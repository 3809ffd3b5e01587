import { Report } from './stress-conn';
import { Rng, seedFor, stressSeed } from './stress-rng';
import { within } from './stress-wait';
import { stopChaosServers } from './chaos-child';

/**
 * Shared pieces of the chaos suite (test/chaos/): deadlines, seeds and
 * clean-up. Nothing in the suite is timed: every wait is for a condition or
 * an event, bounded by a deadline far above what it needs, so a slow or
 * shared machine makes the suite slower, never red.
 */

/** The most any one wait may take before the test gives up on it. */
export const DEADLINE_MS = 60_000;

/** Windows (node.exe under Wine in CI): several times slower, with its own loopback quirks; counts scale down there. */
export const onWindows = process.platform === 'win32';

export const KiB = 1024;
export const MiB = 1024 * KiB;

const BASE_SEED = stressSeed();

export function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * The seeded randomness of one test: its seed comes from the suite's base
 * seed (RINGPORT_STRESS_SEED, as in the stress suite) and the test's name, and
 * every failure it reports names both so the same choices can be replayed.
 */
export function seeded(name: string): { rng: Rng; report: Report; label: string } {
  const seed = seedFor(BASE_SEED, name);
  const label = `${name} [seed ${hex(seed)}; replay with RINGPORT_STRESS_SEED=${BASE_SEED}]`;
  return { rng: new Rng(seed), report: new Report(label), label };
}

/**
 * Clean-up run after each test, newest first, each bounded so one stuck
 * close cannot hang the rest; then every server child still running is
 * stopped. Call once per describe block.
 */
export function cleanupAfterEach(): Array<() => unknown> {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await within(Promise.resolve().then(cleanup).catch(() => undefined), 10_000);
    }
    await stopChaosServers();
  });
  return cleanups;
}
