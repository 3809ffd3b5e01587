import type { QueueLimits } from '../../src/backend';
import { backends } from '../support/backends';
import { StressBackend, checkQuiet } from '../support/stress-backend';
import { Report, type ConnPlan, type Ending, type Mode, type Origin } from '../support/stress-conn';
import { Rng, seedFor, stressSeed } from '../support/stress-rng';
import { runApp } from '../support/stress-app';
import { runGracefulDeadline } from '../support/stress-graceful';
import { PairRun, type PairEnding } from '../support/stress-pairs';
import { StreamRun, type RunOptions } from '../support/stress-run';
import { eventually, sleep, within } from '../support/stress-wait';

/**
 * Randomized, deterministic, bounded stress over every backend that loads
 * here. Each test draws its choices from a seed printed in its name; set
 * RINGPORT_STRESS_SEED to the base seed a failure names to replay it.
 */

const BASE_SEED = stressSeed();
const KiB = 1024;
const MiB = 1024 * KiB;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

interface Stress {
  rng: Rng;
  report: Report;
  backend(limits: QueueLimits, name?: string): StressBackend;
  run(sb: StressBackend, options: RunOptions): Promise<StreamRun>;
}

describe.each(backends)('stress on %s', (kind) => {
  const cleanups: Array<() => unknown> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await within(Promise.resolve().then(cleanup).catch(() => undefined), 5000);
    }
  });

  /** Defines one stress test whose name carries its seed. */
  function stress(name: string, body: (s: Stress) => Promise<void>, timeoutMs = 30_000): void {
    const seed = seedFor(BASE_SEED, `${kind}:${name}`);
    it(`${name} [seed ${hex(seed)}]`, async () => {
      const report = new Report(`${kind}: ${name} [seed ${hex(seed)}; replay with RINGPORT_STRESS_SEED=${BASE_SEED}]`);
      const s: Stress = {
        rng: new Rng(seed),
        report,
        backend(limits, backendName) {
          const sb = new StressBackend(kind, limits, report, backendName);
          cleanups.push(() => sb.backend.shutdown());
          return sb;
        },
        async run(sb, options) {
          const run = new StreamRun(sb, s.rng.fork(`run ${sb.name}`), options);
          cleanups.push(() => run.dispose());
          await run.prepare();
          await run.run();
          return run;
        },
      };
      await body(s);
      report.assertClean();
    }, timeoutMs);
  }

  function randomLimits(rng: Rng, maxChunk: number): QueueLimits {
    const high = rng.logInt(4 * KiB, 512 * KiB);
    const low = rng.chance(0.2) ? 0 : rng.chance(0.2) ? high : rng.int(0, high);
    return { highWaterMarkBytes: high, lowWaterMarkBytes: low, maxQueueBytes: high + maxChunk + rng.logInt(1, 4 * MiB) };
  }

  function plan(origin: Origin, backendBytes: number, peerBytes: number, ending: Ending = 'clean', endAt = 0, mode: Mode = 'paced'): ConnPlan {
    return { origin, backendBytes, peerBytes, ending, endAt, mode };
  }

  const ENDINGS: readonly Ending[] = ['clean', 'local-graceful', 'local-abort', 'peer-end', 'peer-reset'];

  function randomEnding(rng: Rng, origin: Origin, maxBytes: number): ConnPlan {
    const backendBytes = rng.int(0, maxBytes);
    const peerBytes = origin === 'accepted' ? rng.int(0, maxBytes) : 0;
    const total = backendBytes + (origin === 'accepted' ? peerBytes : backendBytes);
    return plan(origin, backendBytes, peerBytes, rng.pick(ENDINGS), rng.int(0, Math.ceil(total * 1.2)));
  }

  stress('every byte arrives in order under random chunking and broadcasts', async (s) => {
    const maxChunk = 200 * KiB;
    // Room for jumbo sends, which go past any high-water mark in one call.
    const limits = { ...randomLimits(s.rng, maxChunk), maxQueueBytes: 24 * MiB };
    const sb = s.backend(limits);
    const plans = Array.from({ length: 64 }, (_, i) => {
      const origin: Origin = i % 2 === 0 ? 'accepted' : 'dialled';
      return plan(origin, s.rng.int(0, 2 * MiB), origin === 'accepted' ? s.rng.int(0, 2 * MiB) : 0);
    });
    const run = await s.run(sb, {
      plans: s.rng.shuffle(plans),
      concurrency: 64,
      maxChunk,
      sendManyChance: 0.3,
      pumpBytes: MiB,
      deadlineMs: 15_000,
      tinyBurstChance: 0.01,
      emptyChance: 0.02,
      jumboChance: 0.005,
    });
    for (const conn of run.conns) {
      if (!conn.toPeer.complete || !conn.toBackend.complete) s.report.fail(`not every byte arrived: ${conn.describe()}`);
      if (conn.backpressureExpected) s.report.fail(`a paced connection hit maxQueueBytes: ${conn.describe()}`);
    }
    await checkQuiet(sb, run.echo);
  });

  stress('closes from either side mid-stream end each connection once, with the right reason', async (s) => {
    const maxChunk = 128 * KiB;
    const sb = s.backend(randomLimits(s.rng, maxChunk));
    const plans = Array.from({ length: 96 }, (_, i) => randomEnding(s.rng, i % 2 === 0 ? 'accepted' : 'dialled', MiB));
    const run = await s.run(sb, {
      plans: s.rng.shuffle(plans),
      concurrency: 48,
      maxChunk,
      sendManyChance: 0.3,
      pumpBytes: MiB,
      deadlineMs: 15_000,
      closeListenerAfter: 0.25,
    });
    if (run.closedListener === undefined) s.report.fail('the second listener was never closed');
    await checkQuiet(sb, run.echo);
  });

  stress('slots reused by 2000 short connections never leak events into a long stream', async (s) => {
    const maxChunk = 64 * KiB;
    const sb = s.backend({ highWaterMarkBytes: 256 * KiB, lowWaterMarkBytes: 64 * KiB, maxQueueBytes: 8 * MiB });
    const long = plan(s.rng.chance(0.5) ? 'accepted' : 'dialled', 0, 0);
    const short = (): ConnPlan => {
      const roll = s.rng.float();
      const p = randomEnding(s.rng, roll < 0.45 ? 'accepted' : roll < 0.9 ? 'dialled' : 'refused', 4 * KiB);
      // Some dials are closed before their outcome is known.
      if (p.origin !== 'accepted' && s.rng.chance(p.origin === 'refused' ? 0.3 : 0.05)) p.closeAtDial = s.rng.pick(['graceful', 'abort'] as const);
      return p;
    };
    const plans = [long, ...Array.from({ length: 2000 }, short)];
    const run = await s.run(sb, { plans, concurrency: 100, maxChunk, sendManyChance: 0.2, pumpBytes: 512 * KiB, deadlineMs: 20_000, longLived: true });
    const longConn = run.conns[0];
    if (longConn.sent < MiB) s.report.fail(`the long connection carried only ${longConn.sent} bytes: ${longConn.describe()}`);
    if (!longConn.toPeer.complete || !longConn.toBackend.complete) s.report.fail(`the long stream lost bytes: ${longConn.describe()}`);
    const ids = [...sb.tracks.keys()];
    if (new Set(ids).size !== ids.length) s.report.fail('a connection id was handed out twice');
    await checkQuiet(sb, run.echo);
  }, 40_000);

  stress('backend to backend: both ends on one loop, closes from either end', async (s) => {
    const maxChunk = 128 * KiB;
    const limits = randomLimits(s.rng, maxChunk);
    const client = s.backend(limits, 'client');
    const server = s.backend(limits, 'server');
    const endings: PairEnding[] = ['clean', 'a-graceful', 'b-graceful', 'a-abort', 'b-abort', 'both-graceful'];
    const plans = Array.from({ length: 300 }, (_, i) => {
      const big = i % 10 === 0;
      const aBytes = s.rng.int(0, big ? 2 * MiB : 16 * KiB);
      const bBytes = s.rng.int(0, big ? 2 * MiB : 16 * KiB);
      return { aBytes, bBytes, ending: s.rng.pick(endings), endAt: s.rng.int(0, Math.ceil((aBytes + bBytes) * 1.2)) };
    });
    const run = new PairRun(client, server, s.rng.fork('pairs'), { plans, concurrency: 60, maxChunk, sendManyChance: 0.3, deadlineMs: 15_000 });
    await run.prepare();
    await run.run();
    await checkQuiet(client);
    await checkQuiet(server);
  });

  stress('a thousand connections at once, broadcasts to all of them in one tick', async (s) => {
    // More connections than the ring's 1024 submission entries: one flush of a
    // broadcast to all of them fills the submission queue mid-flush.
    const maxChunk = 16 * KiB;
    const sb = s.backend({ highWaterMarkBytes: 64 * KiB, lowWaterMarkBytes: 16 * KiB, maxQueueBytes: 4 * MiB });
    const plans = Array.from({ length: 1200 }, () => randomEnding(s.rng, s.rng.chance(0.8) ? 'accepted' : 'dialled', 24 * KiB));
    const run = await s.run(sb, { plans, concurrency: 1200, maxChunk, sendManyChance: 0.9, pumpBytes: 4 * MiB, deadlineMs: 20_000 });
    const broadcastTargets = run.conns.filter((c) => c.sent > c.plan.backendBytes).length;
    if (broadcastTargets === 0) s.report.fail('no connection got a broadcast');
    await checkQuiet(sb, run.echo);
  }, 40_000);

  stress('backpressure: false over high water, one drain per crossing, the hard limit closes only its connection', async (s) => {
    const maxChunk = s.rng.logInt(KiB, 200 * KiB);
    const limits = randomLimits(s.rng, maxChunk);
    const sb = s.backend(limits);
    const plans: ConnPlan[] = [];
    for (let i = 0; i < 16; i++) {
      const origin: Origin = i % 2 === 0 ? 'accepted' : 'dialled';
      const mode: Mode = i < 3 ? 'flood' : i < 7 ? 'stall' : 'paced';
      const bytes = mode === 'flood' ? 0 : s.rng.int(limits.highWaterMarkBytes, 4 * limits.highWaterMarkBytes + MiB);
      plans.push(plan(origin, bytes, origin === 'accepted' && mode !== 'flood' ? s.rng.int(0, MiB) : 0, 'clean', 0, mode));
    }
    const run = await s.run(sb, { plans: s.rng.shuffle(plans), concurrency: 16, maxChunk, sendManyChance: 0.3, pumpBytes: 2 * MiB, deadlineMs: 15_000 });
    for (const conn of run.conns) {
      if (conn.plan.mode === 'flood') {
        if (!conn.backpressureExpected) s.report.fail(`a flooded connection never reached maxQueueBytes: ${conn.describe()}`);
      } else {
        if (!conn.toPeer.complete || !conn.toBackend.complete) s.report.fail(`a connection beside the flooded ones lost bytes: ${conn.describe()}`);
      }
    }
    await checkQuiet(sb, run.echo);
  });

  stress('graceful close: a reader that keeps reading gets every byte, a stalled one is reset after 2 s', async (s) => {
    const sb = s.backend({ highWaterMarkBytes: 64 * KiB, lowWaterMarkBytes: 16 * KiB, maxQueueBytes: 64 * MiB });
    await runGracefulDeadline(sb, s.rng.fork('graceful'), 2);
    await checkQuiet(sb);
  });

  stress('app level: echoes, broadcasts and closes from both sides through createServer and connect', async (s) => {
    await runApp(kind, s.rng.fork('app'), s.report, cleanups);
  });

  stress('shutdown while busy resolves, spares other backends, and a new backend works', async (s) => {
    const limits: QueueLimits = { highWaterMarkBytes: 128 * KiB, lowWaterMarkBytes: 32 * KiB, maxQueueBytes: 8 * MiB };
    const busy = s.backend(limits, 'busy');
    const other = s.backend(limits, 'other');
    const busyPlans = Array.from({ length: 24 }, (_, i) => plan(i % 2 === 0 ? 'accepted' : 'dialled', 64 * MiB, i % 2 === 0 ? 64 * MiB : 0));
    const otherPlans = Array.from({ length: 8 }, (_, i) => plan(i % 2 === 0 ? 'accepted' : 'dialled', s.rng.int(0, 2 * MiB), s.rng.int(0, MiB)));
    const options = { concurrency: 24, maxChunk: 128 * KiB, sendManyChance: 0.2, pumpBytes: MiB, deadlineMs: 15_000 };
    const busyRun = new StreamRun(busy, s.rng.fork('busy'), { ...options, plans: busyPlans });
    const otherRun = new StreamRun(other, s.rng.fork('other'), { ...options, plans: otherPlans });
    cleanups.push(() => busyRun.dispose(), () => otherRun.dispose());
    await busyRun.prepare();
    await otherRun.prepare();
    const busyDone = busyRun.run();
    const otherDone = otherRun.run();

    // Shut down once bytes are moving, from a timer or from inside the event sink.
    const inSink = s.rng.chance(0.5);
    const threshold = s.rng.int(256 * KiB, 8 * MiB);
    let shutdown: Promise<void> | undefined;
    const start = () => {
      if (shutdown !== undefined) return;
      busy.noteShutdown();
      shutdown = busy.backend.shutdown();
    };
    // Every connection must be open first: an accept still in flight at shutdown is never reported.
    const moved = () =>
      busyRun.conns.every((c) => c.track?.state === 'open') ? busyRun.conns.reduce((n, c) => n + c.toBackend.received, 0) : 0;
    if (inSink) {
      const data = busy.hooks.data;
      busy.hooks.data = (conn) => {
        if (moved() >= threshold) start();
        data?.(conn);
      };
    }
    if (!(await eventually(() => shutdown !== undefined || moved() >= threshold, 8000))) {
      s.report.fail(`only ${moved()} bytes moved before the shutdown deadline`);
    }
    start();
    const second = busy.backend.shutdown();
    if ((await within(Promise.all([shutdown!, second]), 5000)) === 'timeout') {
      s.report.fail(`shutdown (${inSink ? 'from the event sink' : 'from a timer'}) did not resolve within 5 s`);
    }
    try {
      if (busy.backend.send(busyRun.conns[0].connId ?? 1, Buffer.from('x'))) s.report.fail('send after shutdown returned true');
      busy.backend.close(busyRun.conns[0].connId ?? 1, 'abort');
      busy.backend.sendMany([busyRun.conns[0].connId ?? 1], Buffer.from('x'));
      if (busy.backend.bufferedAmount(busyRun.conns[0].connId ?? 1) !== 0) s.report.fail('bufferedAmount after shutdown is not 0');
    } catch (err) {
      s.report.fail(`a call after shutdown threw: ${(err as Error).message}`);
    }
    await busyDone;
    if (!(await eventually(() => busy.backend.stats().connections === 0, 2000))) {
      s.report.fail(`stats().connections is ${busy.backend.stats().connections} after shutdown`);
    }

    // The other backend (on the same native loop) carries on to the end, intact.
    await otherDone;
    for (const conn of otherRun.conns) {
      if (!conn.toPeer.complete || !conn.toBackend.complete) s.report.fail(`the other backend lost bytes: ${conn.describe()}`);
    }
    await checkQuiet(other, otherRun.echo);
    await within(other.backend.shutdown(), 5000);

    // A backend made after every earlier one has shut down starts afresh and works;
    // it is shut down from inside its own event sink as its last connection closes.
    const fresh = s.backend(limits, 'fresh');
    const freshRun = new StreamRun(fresh, s.rng.fork('fresh'), {
      ...options,
      plans: [plan('accepted', 64 * KiB, 64 * KiB), plan('dialled', 64 * KiB, 0)],
    });
    cleanups.push(() => freshRun.dispose());
    await freshRun.prepare();
    let finalShutdown: Promise<void> | undefined;
    const freshDone = freshRun.run();
    const close = fresh.hooks.close!;
    fresh.hooks.close = (conn) => {
      close(conn);
      if (freshRun.conns.every((c) => c.track?.state === 'closed')) {
        for (const id of fresh.listeners.keys()) fresh.backend.closeListener(id);
        finalShutdown = fresh.backend.shutdown();
      }
    };
    await freshDone;
    for (const conn of freshRun.conns) {
      if (!conn.toPeer.complete || !conn.toBackend.complete) s.report.fail(`the fresh backend lost bytes: ${conn.describe()}`);
    }
    if (finalShutdown === undefined) s.report.fail('the fresh backend never closed its last connection');
    else if ((await within(finalShutdown, 5000)) === 'timeout') s.report.fail('shutdown from inside the event sink did not resolve');
    await sleep(20);
  });
});
