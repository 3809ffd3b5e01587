import { fork } from 'node:child_process';
import * as path from 'node:path';
import { availableBackends, type BackendKind } from '../src';
import { intFlag, parseFlags } from './flags';
import { SoakLoad } from './soak/load';
import type { SoakSample, SoakServerMessage } from './soak/protocol';

/**
 * The soak: minutes of mixed traffic against one server in a child process,
 * watching its memory for a leak. Not part of CI (see package.json `soak`):
 *
 *   node -r ts-node/register/transpile-only bench/soak.ts [--backend uring|net] [--minutes 10]
 *
 * Load (bench/soak/load.ts, plain node:net): 50 echo clients with 4 frames in
 * flight each, 100 receivers of a 50 Hz tick the server relays to a room,
 * and 16 loops of connection churn (connect, echo, then FIN, reset or FIN
 * mid-frame). Every 10 s the server takes a full garbage collection and
 * reports RSS and heapUsed, which are printed with the traffic rates.
 *
 * The verdict: the first WARM_UP_MINUTES are warm-up (JIT, heap and receive
 * pools reaching their working size; on a run shorter than twice that, the
 * first half is); over the samples after it, a least-squares line of RSS and
 * of heapUsed against time. A slope above RSS_SLOPE_LIMIT or
 * HEAP_SLOPE_LIMIT (MiB per minute) is an upward trend: exit 1. So is any
 * error of the traffic (a wrong echo, a missing tick, a long-lived
 * connection the server closed) or a session left open at the end. A run
 * with fewer than MIN_SAMPLES samples after the warm-up is too short to
 * judge the trend and says so (a smoke test: `--minutes 2`).
 */

const SAMPLE_MS = 10_000;
const WARM_UP_MINUTES = 2;
/** A leak of 2 MiB a minute is 120 MiB an hour: what a server running for days cannot afford; RSS after a GC is steadier than that. */
const RSS_SLOPE_LIMIT = 2;
/** heapUsed after a full GC moves by well under a MiB at a steady load; a steady climb of 1 MiB/min is retained objects. */
const HEAP_SLOPE_LIMIT = 1;
const MIN_SAMPLES = 6;
const MiB = 1024 * 1024;

interface Point {
  minutes: number;
  rss: number;
  heapUsed: number;
}

/** Least-squares slope of y against x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<number> {
  const defaultBackend = availableBackends()[0];
  const flags = parseFlags(process.argv.slice(2), { backend: defaultBackend, minutes: '10' });
  const backend = flags.backend as BackendKind;
  const minutes = intFlag(flags, 'minutes', 1);

  const child = fork(path.join(__dirname, 'soak', 'server.ts'), [backend], {
    execArgv: ['--expose-gc', '-r', 'ts-node/register/transpile-only'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const killChild = () => child.kill('SIGKILL');
  process.on('exit', killChild);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

  const next = <T extends SoakServerMessage['type']>(type: T): Promise<Extract<SoakServerMessage, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: SoakServerMessage) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as Extract<SoakServerMessage, { type: T }>);
      };
      const onExit = (code: number | null) => reject(new Error(`the soak server exited (code ${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const sample = async (): Promise<SoakSample> => {
    const reply = next('sample');
    child.send({ type: 'sample' });
    return (await reply).sample;
  };

  const { port, backend: running } = await next('listening');
  console.log(`soak: ${minutes} min against ringport/${running} on port ${port}; a sample every ${SAMPLE_MS / 1000} s (RSS and heapUsed after a full GC)`);
  const load = new SoakLoad(port, { echoClients: 50, receivers: 100, churn: 16, tickMs: 20 });
  await load.start();

  const started = Date.now();
  const points: Point[] = [];
  let before = { ...load.counters };
  let last = started;
  while (Date.now() - started < minutes * 60_000) {
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    const s = await sample();
    const now = Date.now();
    const seconds = (now - last) / 1000;
    const c = load.counters;
    const rate = (a: number, b: number) => Math.round((a - b) / seconds);
    points.push({ minutes: (now - started) / 60_000, rss: s.rss / MiB, heapUsed: s.heapUsed / MiB });
    console.log(
      `t=${String(Math.round((now - started) / 1000)).padStart(4)}s  rss ${(s.rss / MiB).toFixed(1).padStart(6)} MiB  ` +
        `heapUsed ${(s.heapUsed / MiB).toFixed(1).padStart(5)} MiB  sessions ${s.sessions}  ` +
        `echo/s ${rate(c.echoes, before.echoes)}  ticks/s ${rate(c.ticks, before.ticks)}  churn/s ${rate(c.cycles, before.cycles)}` +
        (s.recvBuffers !== undefined ? `  recvBuffers ${s.recvBuffers}` : '') +
        (load.errors.length > 0 ? `  ERRORS ${load.errors.length}` : ''),
    );
    before = { ...c };
    last = now;
  }

  await load.stop();
  let end = await sample();
  for (let i = 0; i < 100 && end.sessions > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    end = await sample();
  }
  const problems = [...load.errors];
  if (end.sessions > 0) problems.push(`${end.sessions} sessions still open after the load stopped`);
  if (end.faults > 0) problems.push(`${end.faults} faults in the server's handlers`);
  console.log(`soak: closes by reason ${JSON.stringify(end.closes)}`);

  const warmUp = Math.min(WARM_UP_MINUTES, minutes / 2);
  const judged = points.filter((p) => p.minutes > warmUp);
  if (judged.length < MIN_SAMPLES) {
    console.log(`soak: ${judged.length} sample(s) after the ${warmUp}-minute warm-up: too few to judge a trend (need ${MIN_SAMPLES}; run longer)`);
  } else {
    const rssSlope = slope(judged.map((p) => [p.minutes, p.rss]));
    const heapSlope = slope(judged.map((p) => [p.minutes, p.heapUsed]));
    console.log(
      `soak: after the ${warmUp}-minute warm-up, RSS ${rssSlope >= 0 ? '+' : ''}${rssSlope.toFixed(2)} MiB/min (limit ${RSS_SLOPE_LIMIT}), ` +
        `heapUsed ${heapSlope >= 0 ? '+' : ''}${heapSlope.toFixed(2)} MiB/min (limit ${HEAP_SLOPE_LIMIT}), over ${judged.length} samples`,
    );
    if (rssSlope > RSS_SLOPE_LIMIT) problems.push(`RSS climbs ${rssSlope.toFixed(2)} MiB/min, over the limit of ${RSS_SLOPE_LIMIT}`);
    if (heapSlope > HEAP_SLOPE_LIMIT) problems.push(`heapUsed climbs ${heapSlope.toFixed(2)} MiB/min, over the limit of ${HEAP_SLOPE_LIMIT}`);
  }
  child.disconnect();
  if (problems.length > 0) {
    console.log(`soak: FAILED\n- ${problems.join('\n- ')}`);
    return 1;
  }
  console.log('soak: passed');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
