import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableBackends } from '../src';
import { nextMessage, startScript, stop } from './child';
import { intFlag, parseFlags } from './flags';
import type { LoadMessage, LoadResult, ServerMessage } from './ipc';
import { HostCpuMeter, waitForQuiet } from './host';
import { median } from './stats';
import { formatTable, type SummaryRow } from './table';
import { workloads, type Workload } from './workloads';

/**
 * Runs every workload against ringport on each backend that loads here and
 * against the peers, several runs each, and prints medians and ratios to the
 * baseline. Each run starts a fresh server process and a fresh load-generator
 * process, so neither shares a thread with the other nor inherits the last
 * run's heap.
 *
 *   npm run bench -- [--runs 3] [--duration-ms 5000] [--warmup-ms 1000] [--workload echo|broadcast|all]
 *                    [--wait-quiet-ms 0]
 *
 * `--wait-quiet-ms N` is for shared machines: it waits up to N ms before each
 * run for the machine to go idle, and repeats a run that other processes
 * disturbed all the same. The default, 0, keeps the bench's duration fixed.
 */
const BASELINE = 'node:net';
// A target is a row: ringport on each backend that loads, then the peers (see bench/server.ts).
const targets = [...availableBackends().map((kind) => `ringport/${kind}`), BASELINE];

const START_TIMEOUT_MS = 30_000;
// Connecting 500 sockets, settling the last frames and starting ts-node all fit well within this.
const SLACK_MS = 30_000;
// Other processes using more than this much of a core during a window make its figures suspect.
const OTHER_CPU_WARNING_PERCENT = 20;
// With --wait-quiet-ms, how often a disturbed run is tried again before its result is taken as it is.
const MAX_REPEATS = 2;

interface RunRecord {
  target: string;
  run: number;
  result?: LoadResult;
  serverCpuPercent?: number;
  serverStats?: unknown;
  /** CPU used by everything but the server and the load generator over the window, in % of one core. */
  otherCpuPercent?: number;
  error?: string;
}

async function runOnce(target: string, workload: Workload, run: number, warmupMs: number, durationMs: number): Promise<RunRecord> {
  const server = startScript('server.ts', ['--target', target]);
  try {
    const { port } = await nextMessage<ServerMessage, 'listening'>(server, 'listening', START_TIMEOUT_MS, `server ${target}`);
    const budgetMs = START_TIMEOUT_MS + warmupMs + durationMs + SLACK_MS;
    const load = startScript(workload.script, [
      '--port', String(port), '--warmup-ms', String(warmupMs), '--duration-ms', String(durationMs),
    ]);
    try {
      // The load generator marks its measured window; the server measures its CPU over the same one.
      const host = new HostCpuMeter();
      let hostBusyPercent = NaN;
      load.on('message', (message: LoadMessage) => {
        if (message.type === 'window-start') host.restart();
        if (message.type === 'window-end') hostBusyPercent = host.busyPercent();
        if (message.type === 'window-start' || message.type === 'window-end') server.send(message);
      });
      const window = nextMessage<ServerMessage, 'window'>(server, 'window', budgetMs, `server ${target}`);
      window.catch(() => undefined);
      const { result } = await nextMessage<LoadMessage, 'result'>(load, 'result', budgetMs, `${workload.name} load generator`);
      const { cpuPercent, stats } = await window;
      const otherCpuPercent = Math.max(0, hostBusyPercent - cpuPercent - result.loadCpuPercent);
      return { target, run, result, serverCpuPercent: cpuPercent, serverStats: stats, otherCpuPercent };
    } finally {
      await stop(load);
    }
  } finally {
    await stop(server);
  }
}

interface Timing {
  warmupMs: number;
  durationMs: number;
  waitQuietMs: number;
}

/**
 * One run of one target. With `waitQuietMs`, it first waits for the machine
 * to go idle, and a run that other processes disturbed anyway is repeated
 * (at most MAX_REPEATS times); the disturbed attempts are returned apart, to
 * be kept in the JSON but out of the medians.
 */
async function measure(
  target: string,
  workload: Workload,
  run: number,
  timing: Timing,
): Promise<{ record: RunRecord; disturbed: RunRecord[] }> {
  const disturbed: RunRecord[] = [];
  for (;;) {
    if (timing.waitQuietMs > 0 && !(await waitForQuiet(timing.waitQuietMs, OTHER_CPU_WARNING_PERCENT))) {
      console.log(`  (the machine did not go idle within ${timing.waitQuietMs} ms; running anyway)`);
    }
    let record: RunRecord;
    try {
      record = await runOnce(target, workload, run, timing.warmupMs, timing.durationMs);
    } catch (err) {
      record = { target, run, error: (err as Error).message };
    }
    const busy = (record.otherCpuPercent ?? 0) > OTHER_CPU_WARNING_PERCENT;
    if (!busy || timing.waitQuietMs === 0 || disturbed.length === MAX_REPEATS) return { record, disturbed };
    console.log(
      `  ${workload.name} run ${run} ${target} disturbed (other processes used ${Math.round(record.otherCpuPercent!)}% of a core): repeating`,
    );
    disturbed.push(record);
  }
}

function summarize(workload: Workload, records: readonly RunRecord[]): SummaryRow[] {
  const rows = targets.map((target) => {
    const mine = records.filter((r) => r.target === target);
    const ok = mine.filter((r) => r.result !== undefined).map((r) => ({ ...r, result: r.result! }));
    const metrics: Record<string, number> = {};
    for (const column of workload.columns) {
      const values = ok.map((r) => r.result.metrics[column.key]);
      metrics[column.key] = column.combine === 'sum' ? values.reduce((a, b) => a + b, 0) : median(values);
    }
    return {
      target,
      runs: mine.length,
      failedRuns: mine.length - ok.length,
      rate: median(ok.map((r) => r.result.rate)),
      ratio: NaN,
      loadCpuPercent: median(ok.map((r) => r.result.loadCpuPercent)),
      serverCpuPercent: median(ok.map((r) => r.serverCpuPercent ?? NaN)),
      otherCpuPercent: median(ok.map((r) => r.otherCpuPercent ?? NaN)),
      metrics,
    };
  });
  const baseRate = rows.find((row) => row.target === BASELINE)?.rate ?? NaN;
  return rows.map((row) => ({ ...row, ratio: row.rate / baseRate }));
}

function describe(record: RunRecord, workload: Workload): string {
  if (record.result === undefined) return `FAILED: ${record.error}`;
  const r = record.result;
  const extra = workload.columns.map((c) => `${c.label} ${Math.round(r.metrics[c.key]).toLocaleString('en-US')}`).join(', ');
  return (
    `${Math.round(r.rate).toLocaleString('en-US')} ${workload.rateUnit}, ${extra}` +
    ` (CPU: load-gen ${Math.round(r.loadCpuPercent)}%, server ${Math.round(record.serverCpuPercent ?? NaN)}%,` +
    ` other ${Math.round(record.otherCpuPercent ?? NaN)}%)`
  );
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    runs: '3',
    'duration-ms': '5000',
    'warmup-ms': '1000',
    workload: 'all',
    'wait-quiet-ms': '0',
  });
  const runs = intFlag(flags, 'runs', 1);
  const durationMs = intFlag(flags, 'duration-ms', 100);
  const warmupMs = intFlag(flags, 'warmup-ms', 0);
  const waitQuietMs = intFlag(flags, 'wait-quiet-ms', 0);
  const chosen = flags.workload === 'all' ? workloads : workloads.filter((w) => w.name === flags.workload);
  if (chosen.length === 0) {
    throw new Error(`--workload must be all or one of ${workloads.map((w) => w.name).join(', ')}, got '${flags.workload}'`);
  }

  console.log(`bench: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log(`bench: targets ${targets.join(', ')}; ${runs} runs of ${durationMs} ms after ${warmupMs} ms warm-up\n`);

  const errors: string[] = [];
  const report: Record<string, unknown> = {};
  const tables: string[] = [];
  for (const workload of chosen) {
    const records: RunRecord[] = [];
    const discarded: RunRecord[] = [];
    for (let run = 1; run <= runs; run++) {
      // Rotating the order spreads any drift (heat, a noisy neighbour) over every target.
      const order = targets.map((_, i) => targets[(i + run - 1) % targets.length]);
      for (const target of order) {
        const { record, disturbed } = await measure(target, workload, run, { warmupMs, durationMs, waitQuietMs });
        discarded.push(...disturbed);
        records.push(record);
        console.log(`${workload.name} run ${run}/${runs} ${target}: ${describe(record, workload)}`);
        if ((record.otherCpuPercent ?? 0) > OTHER_CPU_WARNING_PERCENT) {
          console.log(`  warning: other processes used ${Math.round(record.otherCpuPercent!)}% of a core during this run`);
        }
        for (const problem of record.error !== undefined ? [record.error] : record.result!.errors) {
          const line = `${workload.name} run ${run} ${target}: ${problem}`;
          errors.push(line);
          console.error(`\n!!! ERROR ${line}\n`);
        }
      }
    }
    const rows = summarize(workload, records);
    const redone = discarded.length > 0 ? ` (${discarded.length} disturbed runs repeated)` : '';
    const table = `${workload.title}\nmedian of ${runs} runs of ${durationMs} ms${redone}\n${formatTable(workload, BASELINE, rows)}`;
    tables.push(table);
    report[workload.name] = { title: workload.title, rateUnit: workload.rateUnit, rows, runs: records, discarded };
  }

  console.log(`\n${tables.join('\n\n')}`);
  const resultsDir = path.join(__dirname, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const out = path.join(resultsDir, 'latest.json');
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, platform: os.platform(), release: os.release(), node: process.version };
  const options = { runs, durationMs, warmupMs, workload: flags.workload, waitQuietMs };
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, options, baseline: BASELINE, workloads: report, errors }, null, 2)}\n`);
  console.log(`\nbench: wrote ${path.relative(process.cwd(), out)}`);
  if (errors.length > 0) {
    console.error(`\n!!! ${errors.length} ERROR(S): the figures above are not valid:\n${errors.map((e) => `  ${e}`).join('\n')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
