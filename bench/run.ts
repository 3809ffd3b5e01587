import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableBackends } from '../src';
import { nextMessage, sendLine, startProgram, startScript, stop } from './child';
import { intFlag, parseFlags } from './flags';
import type { LoadMessage, LoadResult, ServerMessage } from './ipc';
import { HostCpuMeter, waitForQuiet } from './host';
import { buildLoadgen, buildMallocStats } from './loadgen';
import { median } from './stats';
import { formatTable, number, targetText, targetVerdict, type SummaryRow } from './table';
import {
  C_EPOLL,
  FIXED_RATE,
  IDLE_CONNECTIONS,
  NODE_NET,
  PER_SERVER_CPU_SECOND,
  protocolOf,
  rowsFor,
  TARGET_GROUPS,
  withFixedRate,
  workloads,
  wrkArgs,
  type Protocol,
  type Workload,
} from './workloads';

/**
 * Runs every workload against ringport on each backend that loads here and
 * against the peers, several runs each, and prints medians, ratios to the
 * peers, and the issues' targets: issue 3's uring against net on the framed
 * workloads, issue 10's ringport/websocket/uring against uWebSockets.js and
 * ws on the WebSocket ones, issue 11's ringport/http/uring against
 * uWebSockets.js's HTTP and node:http on the HTTP ones. Each run starts a
 * fresh server process and a fresh load-generator process, so neither
 * shares a thread with the other nor inherits the last run's heap.
 *
 *   npm run bench -- [--runs 3] [--duration-ms 3000] [--warmup-ms 1000] [--workload all|echo,broadcast,...]
 *                    [--targets all|ringport/uring,...] [--loadgen c|js] [--settle-ms 1000]
 *                    [--wait-quiet-ms 0] [--profile off|cpu|perf] [--fixed-rate 50000]
 *                    [--http-loadgen auto|wrk|c] [--wrk-threads 1] [--pin off|S,L]
 *
 * `--wait-quiet-ms N` is for shared machines: it waits up to N ms before each
 * run for the machine to go idle, and repeats a run that other processes
 * disturbed all the same, or that lost over 10 % of the CPUs to steal. The
 * default, 0, keeps the bench's duration fixed.
 *
 * `--pin S,L` holds the server to CPU S and the load generator to CPU L
 * (taskset, every thread, a forked wrk too), the same for every row. It is
 * not neutral: a node server's collector helper threads then share its core
 * (bench/README.md, Measured: HTTP), so the tables are measured unpinned.
 */
const BASELINE = NODE_NET;
/**
 * The reference row: the C load generator's `serve` mode, a plain epoll
 * server in C with next to no cost per frame above the kernel's. It is not a
 * contender; it shows how far this machine's kernel lets any backend go.
 */
const REFERENCE = C_EPOLL;
/**
 * A target is a row: for the framed workloads ringport on each backend that
 * loads, the node:net peer and the reference; for the WebSocket workloads
 * ringport/websocket on each backend, uWebSockets.js and ws; for the HTTP
 * workloads ringport/http on each backend, uWebSockets.js's HTTP and
 * node:http (see bench/server.ts). A workload plays the rows of its
 * protocol only.
 */
const rowsByProtocol = rowsFor(availableBackends());
const allTargets = [...rowsByProtocol.framed, ...rowsByProtocol.websocket, ...rowsByProtocol.http];

const START_TIMEOUT_MS = 30_000;
// Connecting 500 sockets, settling the last frames and starting ts-node all fit well within this.
const SLACK_MS = 30_000;
// Other processes using more than this much of a core during a window make its figures suspect.
const OTHER_CPU_WARNING_PERCENT = 20;
// The hypervisor running other guests on this one's CPUs for more than this share of the window (steal) makes it suspect too.
const STEAL_WARNING_PERCENT = 10;
// With --wait-quiet-ms, how often a disturbed run is tried again before its result is taken as it is.
const MAX_REPEATS = 2;
// A load generator using this much of each of its threads may be what limits the row: its figure is then a floor.
const LOADGEN_BOUND_PERCENT = 90;
// Descriptors each process needs for `conns`: the idle connections, the listener and a margin.
const CONNS_FDS = IDLE_CONNECTIONS + 200;
const RESULTS_DIR = path.join(__dirname, 'results');

interface RunRecord {
  target: string;
  run: number;
  result?: LoadResult;
  serverCpuPercent?: number;
  serverUserPercent?: number;
  serverSystemPercent?: number;
  serverStats?: unknown;
  /** CPU used by everything but the server and the load generator over the window, in % of one core. */
  otherCpuPercent?: number;
  /** CPU time the hypervisor took from this VM over the window, in % of one core. */
  stealPercent?: number;
  error?: string;
}

interface Options {
  warmupMs: number;
  durationMs: number;
  waitQuietMs: number;
  settleMs: number;
  /** The C load generator's path; undefined runs the JS ones. */
  cLoadgen: string | undefined;
  /** The allocator addon the server loads for the memory workloads; undefined where it did not build. */
  mallocStats: string | undefined;
  profile: 'off' | 'cpu' | 'perf';
  /** Who generates each HTTP workload's load, by workload name. */
  httpLoadgen: Map<string, 'wrk' | 'c'>;
  /** wrk's threads (`-t`). */
  wrkThreads: number;
  /** `--pin S,L`: the CPUs the server and the load generator are held to (every thread), or undefined. */
  pin: { server: string; load: string } | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function profileDir(workload: Workload, target: string, run: number): string {
  const dir = path.join(RESULTS_DIR, 'profiles', `${workload.name}-${target.replace(/[/:]/g, '_')}-${run}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * V8 flags for the `memory` workloads only. V8's young generation grows its
 * semi-spaces up to 16 MiB each under allocation pressure and keeps them, and
 * a full GC leaves partly used old-space pages committed (here, tens of MiB
 * left by ts-node compiling the server at startup); either would swallow or
 * inflate the growth of 10,000 connections by several MiB at random. A fixed
 * 1 MiB semi-space and compaction on every full GC leave a committed heap
 * within a few MiB of the live one, so RSS growth follows what the
 * connections hold. Retained memory per connection does not depend on them.
 */
const MEMORY_NODE_ARGS = ['--max-semi-space-size=1', '--compact-on-every-full-gc'];

/** What the orchestrator needs of a server under test, whether a node script or the C reference server. */
interface ServerHandle {
  readonly child: ChildProcess;
  readonly port: number;
  windowStart(): void;
  /** CPU over the window, and ringport's counters where there are any. */
  windowEnd(budgetMs: number): Promise<{ cpuPercent: number; userPercent: number; systemPercent: number; stats?: unknown }>;
  /** A full GC where there is a garbage collector: V8's heap figures after it, and malloc's bytes in use after a trim. */
  gc(): Promise<{ heapUsed: number; external: number; malloc: number } | undefined>;
}

async function startServer(target: string, workload: Workload, run: number, options: Options): Promise<ServerHandle> {
  if (target === REFERENCE) {
    const child = startProgram(options.cLoadgen!, ['serve']);
    const { port } = await nextMessage<ServerMessage, 'listening'>(child, 'listening', START_TIMEOUT_MS, `server ${target}`);
    let cpu = new ProcCpuMeter(child.pid!);
    return {
      child,
      port,
      windowStart: () => (cpu = new ProcCpuMeter(child.pid!)),
      windowEnd: () => Promise.resolve(cpu.read()),
      gc: () => Promise.resolve(undefined),
    };
  }
  const nodeArgs = ['--expose-gc', ...(workload.kind === 'memory' ? MEMORY_NODE_ARGS : [])];
  if (options.profile === 'cpu') nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir(workload, target, run)}`);
  if (options.profile === 'perf') nodeArgs.push('--perf-basic-prof');
  const memory = workload.kind === 'memory' && options.mallocStats !== undefined ? ['--malloc-stats', options.mallocStats] : [];
  const child = startScript('server.ts', ['--target', target, ...memory], nodeArgs);
  try {
    const { port } = await nextMessage<ServerMessage, 'listening'>(child, 'listening', START_TIMEOUT_MS, `server ${target}`);
    return {
      child,
      port,
      windowStart: () => child.send({ type: 'window-start' }),
      windowEnd: (budgetMs) => {
        const window = nextMessage<ServerMessage, 'window'>(child, 'window', budgetMs, `server ${target}`);
        child.send({ type: 'window-end' });
        return window;
      },
      gc: async () => {
        child.send({ type: 'gc' });
        const heap = await nextMessage<ServerMessage, 'gc-done'>(child, 'gc-done', START_TIMEOUT_MS, 'server gc');
        return { heapUsed: heap.heapUsed, external: heap.external + heap.arrayBuffers, malloc: heap.malloc ?? NaN };
      },
    };
  } catch (err) {
    await stop(child);
    throw err;
  }
}

/** A process's CPU time from /proc/<pid>/stat (utime, stime; USER_HZ = 100 on Linux), for the C reference server. */
class ProcCpuMeter {
  private readonly start: { user: number; system: number; at: bigint };

  constructor(private readonly pid: number) {
    this.start = this.sample();
  }

  private sample(): { user: number; system: number; at: bigint } {
    const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100, at: process.hrtime.bigint() };
  }

  read(): { cpuPercent: number; userPercent: number; systemPercent: number } {
    const end = this.sample();
    const seconds = Number(end.at - this.start.at) / 1e9;
    const userPercent = ((end.user - this.start.user) / seconds) * 100;
    const systemPercent = ((end.system - this.start.system) / seconds) * 100;
    return { cpuPercent: userPercent + systemPercent, userPercent, systemPercent };
  }
}

/** Holds process `pid`, every thread of it and every process it started, to CPU `cpu` (`--pin`). */
function pinTree(pid: number, cpu: string): void {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        for (const child of fs.readFileSync(`/proc/${pids[i]}/task/${tid}/children`, 'utf8').split(' ')) if (child !== '') pids.push(Number(child));
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
  for (const p of pids) {
    const result = spawnSync('taskset', ['-a', '-p', '-c', cpu, String(p)], { stdio: 'ignore' });
    if (result.status !== 0 && fs.existsSync(`/proc/${p}`)) throw new Error(`--pin: taskset -a -p -c ${cpu} ${p} failed`);
  }
}

/** `perf record` of the server over the measured window, for `--profile perf`. */
function startPerf(pid: number, workload: Workload, target: string, run: number): ChildProcess | undefined {
  const out = path.join(profileDir(workload, target, run), 'perf.data');
  const perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', out], { stdio: 'ignore' });
  perf.on('error', (err) => console.error(`bench: perf record failed to start: ${err.message}`));
  return perf;
}

async function stopPerf(perf: ChildProcess | undefined): Promise<void> {
  if (perf === undefined || perf.exitCode !== null || perf.signalCode !== null || perf.pid === undefined) return;
  await new Promise<void>((resolve) => {
    // perf writes its file on SIGINT; a perf that hangs is not worth the run.
    const timer = setTimeout(() => perf.kill('SIGKILL'), 10_000);
    perf.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    perf.kill('SIGINT');
  });
}

function startLoad(workload: Workload, port: number, options: Options): ChildProcess {
  const common = ['--port', String(port), '--warmup-ms', String(options.warmupMs), '--duration-ms', String(options.durationMs)];
  if (workload.http !== undefined && options.httpLoadgen.get(workload.name) === 'wrk') {
    return startScript('load/wrk.ts', [...wrkArgs(workload.http), '--threads', String(options.wrkThreads), ...common]);
  }
  if (options.cLoadgen !== undefined) return startProgram(options.cLoadgen, [...workload.cArgs, ...common]);
  return startScript(workload.script!, common);
}

/** One traffic run: the load generator marks its window, the server measures its CPU over the same one. */
async function runTraffic(target: string, workload: Workload, run: number, options: Options): Promise<RunRecord> {
  const server = await startServer(target, workload, run, options);
  try {
    const budgetMs = START_TIMEOUT_MS + options.warmupMs + options.durationMs + SLACK_MS;
    const load = startLoad(workload, server.port, options);
    if (options.pin !== undefined) {
      pinTree(server.child.pid!, options.pin.server);
      pinTree(load.pid!, options.pin.load);
    }
    let perf: ChildProcess | undefined;
    try {
      const host = new HostCpuMeter();
      let hostBusyPercent = NaN;
      let stealPercent = NaN;
      let window: ReturnType<ServerHandle['windowEnd']> | undefined;
      load.on('message', (message: LoadMessage) => {
        if (message.type === 'window-start') {
          // Again: a load generator may have started its own program (wrk) since.
          if (options.pin !== undefined) pinTree(load.pid!, options.pin.load);
          host.restart();
          server.windowStart();
          if (options.profile === 'perf') perf = startPerf(server.child.pid!, workload, target, run);
        } else if (message.type === 'window-end') {
          hostBusyPercent = host.busyPercent();
          stealPercent = host.stealPercent();
          window = server.windowEnd(budgetMs);
          window.catch(() => undefined);
        }
      });
      const { result } = await nextMessage<LoadMessage, 'result'>(load, 'result', budgetMs, `${workload.name} load generator`);
      await stopPerf(perf);
      // A load generator that failed before its window (wrk.ts's check of the answers) says why in its errors.
      if (window === undefined && result.errors.length > 0) throw new Error(result.errors.join('; '));
      if (window === undefined) throw new Error(`${workload.name} load generator sent a result without a window`);
      const { cpuPercent, userPercent, systemPercent, stats } = await window;
      // An HTTP row with a single bad answer (not 200, another body, a socket error) has no figure: the run fails.
      if (workload.http !== undefined && result.errors.length > 0) throw new Error(result.errors.join('; '));
      const otherCpuPercent = Math.max(0, hostBusyPercent - cpuPercent - result.loadCpuPercent);
      return {
        target,
        run,
        result,
        serverCpuPercent: cpuPercent,
        serverUserPercent: userPercent,
        serverSystemPercent: systemPercent,
        serverStats: stats,
        otherCpuPercent,
        stealPercent,
      };
    } finally {
      await stopPerf(perf);
      await stop(load);
    }
  } finally {
    await stop(server.child);
  }
}

/** The server's resident set, from /proc/<pid>/status (VmRSS), in bytes. */
function readRss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Reads the server's memory the same way before and after: a full GC and a
 * malloc_trim (where the allocator addon built), then half the settle time
 * (V8 and malloc hand pages back lazily), repeated until three readings of
 * RSS in a row agree within 64 KiB (at most 8 rounds). Three, spanning a
 * settle time: caches a server trims on a timer of its own (io_uring's
 * receive buffer pool, once a second) have had their turn, so the figure is
 * what idle connections hold, not what connecting them left behind.
 */
async function readMemory(server: ServerHandle, settleMs: number): Promise<{ rss: number; heapUsed: number; external: number; malloc: number }> {
  const readings: number[] = [];
  for (let round = 1; ; round++) {
    const heap = await server.gc();
    await sleep(settleMs / 2);
    const rss = readRss(server.child.pid!);
    readings.push(rss);
    const last = readings.slice(-3);
    if ((last.length === 3 && Math.max(...last) - Math.min(...last) <= 64 * 1024) || round === 8) {
      return { rss, heapUsed: heap?.heapUsed ?? NaN, external: heap?.external ?? NaN, malloc: heap?.malloc ?? NaN };
    }
  }
}

/**
 * One `conns` run: the C load generator warms the server up with a few
 * hundred connections it then closes, the server's memory is read, the
 * generator opens IDLE_CONNECTIONS connections and holds them, the memory is
 * read again. The figure is the RSS growth over the connections held.
 */
async function runMemory(target: string, workload: Workload, run: number, options: Options): Promise<RunRecord> {
  const server = await startServer(target, workload, run, options);
  try {
    const budgetMs = START_TIMEOUT_MS + SLACK_MS;
    const load = startProgram(options.cLoadgen!, [...workload.cArgs, '--port', String(server.port)]);
    try {
      const result = nextMessage<LoadMessage, 'result'>(load, 'result', 3 * budgetMs, `${workload.name} load generator`);
      result.catch(() => undefined);
      await nextMessage<LoadMessage, 'ready'>(load, 'ready', budgetMs, `${workload.name} load generator`);
      const before = await readMemory(server, options.settleMs);
      const host = new HostCpuMeter();
      server.windowStart();
      sendLine(load, 'go');
      const holding = await nextMessage<LoadMessage, 'holding'>(load, 'holding', budgetMs, `${workload.name} load generator`);
      const hostBusyPercent = host.busyPercent();
      const stealPercent = host.stealPercent();
      const { cpuPercent, userPercent, systemPercent, stats } = await server.windowEnd(budgetMs);
      const after = await readMemory(server, options.settleMs);
      sendLine(load, 'release');
      const generated = (await result).result;
      const n = holding.connections;
      const otherCpuPercent = Math.max(0, hostBusyPercent - cpuPercent - generated.loadCpuPercent);
      const mib = 1024 * 1024;
      return {
        target,
        run,
        result: {
          rate: (after.rss - before.rss) / n,
          windowMs: generated.windowMs,
          loadCpuPercent: generated.loadCpuPercent,
          metrics: {
            ...generated.metrics,
            connections: n,
            rssBeforeMiB: before.rss / mib,
            rssAfterMiB: after.rss / mib,
            heapPerConn: (after.heapUsed - before.heapUsed) / n,
            externalPerConn: (after.external - before.external) / n,
            mallocPerConn: (after.malloc - before.malloc) / n,
          },
          errors: generated.errors,
        },
        serverCpuPercent: cpuPercent,
        serverUserPercent: userPercent,
        serverSystemPercent: systemPercent,
        serverStats: stats,
        otherCpuPercent,
        stealPercent,
      };
    } finally {
      await stop(load);
    }
  } finally {
    await stop(server.child);
  }
}

/**
 * One run of one target. With `waitQuietMs`, it first waits for the machine
 * to go idle, and a run that other processes or the hypervisor (steal)
 * disturbed anyway is repeated
 * (at most MAX_REPEATS times); the disturbed attempts are returned apart, to
 * be kept in the JSON but out of the medians.
 */
async function measure(
  target: string,
  workload: Workload,
  run: number,
  options: Options,
): Promise<{ record: RunRecord; disturbed: RunRecord[] }> {
  const disturbed: RunRecord[] = [];
  for (;;) {
    if (options.waitQuietMs > 0 && !(await waitForQuiet(options.waitQuietMs, OTHER_CPU_WARNING_PERCENT))) {
      console.log(`  (the machine did not go idle within ${options.waitQuietMs} ms; running anyway)`);
    }
    let record: RunRecord;
    try {
      record = workload.kind === 'memory' ? await runMemory(target, workload, run, options) : await runTraffic(target, workload, run, options);
    } catch (err) {
      record = { target, run, error: (err as Error).message };
    }
    const busy = (record.otherCpuPercent ?? 0) > OTHER_CPU_WARNING_PERCENT;
    const stolen = (record.stealPercent ?? 0) > STEAL_WARNING_PERCENT;
    if ((!busy && !stolen) || options.waitQuietMs === 0 || disturbed.length === MAX_REPEATS) return { record, disturbed };
    const why = busy
      ? `other processes used ${Math.round(record.otherCpuPercent!)}% of a core`
      : `the hypervisor took ${Math.round(record.stealPercent!)}% of the CPUs (steal)`;
    console.log(`  ${workload.name} run ${run} ${target} disturbed (${why}): repeating`);
    disturbed.push(record);
  }
}

function metric(result: LoadResult, key: string): number {
  return key === 'rate' ? result.rate : (result.metrics[key] ?? NaN);
}

/** A run's headline figure (see `Workload.headline`). */
function headlineOf(workload: Workload, record: RunRecord): number {
  if (record.result === undefined) return NaN;
  if (workload.headline === PER_SERVER_CPU_SECOND) return record.result.rate / ((record.serverCpuPercent ?? NaN) / 100);
  return metric(record.result, workload.headline);
}

function summarize(workload: Workload, targets: readonly string[], records: readonly RunRecord[]): SummaryRow[] {
  const rows = targets.map((target) => {
    const mine = records.filter((r) => r.target === target);
    const ok = mine.filter((r) => r.result !== undefined).map((r) => ({ ...r, result: r.result! }));
    const metrics: Record<string, number> = {};
    for (const column of workload.columns) {
      const values = ok.map((r) => metric(r.result, column.key));
      metrics[column.key] = column.combine === 'sum' ? values.reduce((a, b) => a + b, 0) : median(values);
    }
    const per = (percent: (r: RunRecord) => number | undefined): number =>
      workload.cpuPer === undefined
        ? NaN
        : median(ok.map((r) => ((percent(r) ?? NaN) / 100) * (workload.cpuPer!.scale / r.result.rate)));
    return {
      target,
      runs: mine.length,
      failedRuns: mine.length - ok.length,
      headline: median(ok.map((r) => headlineOf(workload, r))),
      ratios: {},
      loadCpuPercent: median(ok.map((r) => r.result.loadCpuPercent)),
      serverCpuPercent: median(ok.map((r) => r.serverCpuPercent ?? NaN)),
      serverUserPercent: median(ok.map((r) => r.serverUserPercent ?? NaN)),
      serverSystemPercent: median(ok.map((r) => r.serverSystemPercent ?? NaN)),
      otherCpuPercent: median(ok.map((r) => r.otherCpuPercent ?? NaN)),
      cpuPerUser: per((r) => r.serverUserPercent),
      cpuPerSystem: per((r) => r.serverSystemPercent),
      metrics,
    };
  });
  const others = new Set([...workload.compare, ...workload.targets.map((t) => t.against)]);
  const headline = (target: string): number => rows.find((row) => row.target === target)?.headline ?? NaN;
  return rows.map((row) => ({
    ...row,
    ratios: Object.fromEntries([...others].map((other) => [other, row.headline / headline(other)])),
  }));
}

function describe(record: RunRecord, workload: Workload): string {
  if (record.result === undefined) return `FAILED: ${record.error}`;
  const r = record.result;
  const extra = workload.columns.map((c) => `${c.label} ${number(metric(r, c.key), c.decimals)}`).join(', ');
  return (
    `${number(headlineOf(workload, record))} ${workload.unit}, ${extra}` +
    ` (CPU: load-gen ${Math.round(r.loadCpuPercent)}%, server ${Math.round(record.serverCpuPercent ?? NaN)}%` +
    ` = ${Math.round(record.serverUserPercent ?? NaN)}% usr + ${Math.round(record.serverSystemPercent ?? NaN)}% sys,` +
    ` other ${Math.round(record.otherCpuPercent ?? NaN)}%` +
    `${(record.stealPercent ?? 0) >= 1 ? `, steal ${Math.round(record.stealPercent!)}%` : ''})`
  );
}

/** wrk's version line (`wrk debian/4.1.0-3+b2 [epoll]`), or undefined where it is not installed. */
function wrkVersion(): string | undefined {
  const result = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (result.error !== undefined) return undefined;
  const line = (result.stdout ?? '').split('\n')[0].replace(/ Copyright.*$/, '').trim();
  return line.startsWith('wrk ') ? line : undefined;
}

/** The open-files limit (soft, hard) of this process, which its children inherit. */
function fdLimits(): { soft: number; hard: number } {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? '';
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft, hard };
}

/**
 * Makes sure the server and the load generator may each open `need`
 * descriptors: node raises its soft limit to the hard one at startup, and the
 * C load generator does the same, so the hard limit is what counts. Raises it
 * with prlimit where allowed (root with CAP_SYS_RESOURCE); children inherit it.
 * Returns why not, if it cannot.
 */
function ensureFdLimit(need: number): string | undefined {
  if (process.platform !== 'linux') return 'the conns workload needs Linux';
  if (fdLimits().hard >= need) return undefined;
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${need}:${need}`], { stdio: 'ignore' });
  const { hard } = fdLimits();
  return hard >= need ? undefined : `the open-files limit is ${hard} and could not be raised to ${need} (try: ulimit -n ${need})`;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    runs: '3',
    'duration-ms': '3000',
    'warmup-ms': '1000',
    workload: 'all',
    targets: 'all',
    loadgen: 'c',
    'settle-ms': '1000',
    'wait-quiet-ms': '0',
    profile: 'off',
    'fixed-rate': String(FIXED_RATE),
    'http-loadgen': 'auto',
    'wrk-threads': '1',
    pin: 'off',
  });
  const runs = intFlag(flags, 'runs', 1);
  const durationMs = intFlag(flags, 'duration-ms', 100);
  const warmupMs = intFlag(flags, 'warmup-ms', 0);
  const waitQuietMs = intFlag(flags, 'wait-quiet-ms', 0);
  const settleMs = intFlag(flags, 'settle-ms', 0);
  const fixedRate = intFlag(flags, 'fixed-rate', 1);
  const wrkThreads = intFlag(flags, 'wrk-threads', 1);
  let pin: Options['pin'];
  if (flags.pin !== 'off') {
    const [server, load, extra] = flags.pin.split(',');
    const cpus = os.cpus().length;
    const ok = (cpu: string | undefined) => cpu !== undefined && /^\d+$/.test(cpu) && Number(cpu) < cpus;
    if (!ok(server) || !ok(load) || server === load || extra !== undefined) {
      throw new Error(`--pin must be off or two different CPUs below ${cpus}, server first (0,1), got '${flags.pin}'`);
    }
    pin = { server: server!, load: load! };
  }
  if (!['auto', 'wrk', 'c'].includes(flags['http-loadgen'])) throw new Error(`--http-loadgen must be auto, wrk or c, got '${flags['http-loadgen']}'`);
  if (!['off', 'cpu', 'perf'].includes(flags.profile)) throw new Error(`--profile must be off, cpu or perf, got '${flags.profile}'`);
  if (!['c', 'js'].includes(flags.loadgen)) throw new Error(`--loadgen must be c or js, got '${flags.loadgen}'`);
  const names = flags.workload === 'all' ? workloads.map((w) => w.name) : flags.workload.split(',');
  let chosen = names.map((name) => {
    const workload = workloads.find((w) => w.name === name);
    if (workload === undefined) throw new Error(`--workload must be all or a list of ${workloads.map((w) => w.name).join(', ')}, got '${name}'`);
    return withFixedRate(workload, fixedRate);
  });

  let cLoadgen: string | undefined;
  if (flags.loadgen === 'c') {
    const build = buildLoadgen();
    if (build.ok) {
      cLoadgen = build.binary;
    } else {
      console.log(`bench: the C load generator is not available: ${build.reason}`);
      console.log('bench: falling back to the JS load generators, which may be the bottleneck on a small machine');
    }
  }
  const skipped: string[] = [];
  let targets = flags.targets === 'all' ? allTargets : flags.targets.split(',');
  for (const target of targets) {
    if (!allTargets.includes(target)) throw new Error(`--targets: '${target}' is not available here; available: ${allTargets.join(', ')}`);
  }
  if (cLoadgen === undefined && targets.includes(REFERENCE)) {
    if (flags.targets !== 'all') throw new Error(`--targets: ${REFERENCE} is the C load generator's server mode, and it did not build`);
    targets = targets.filter((t) => t !== REFERENCE);
  }
  // Each workload plays the chosen rows of its own protocol.
  const rowsOf = (protocol: Protocol): string[] => targets.filter((t) => protocolOf(t) === protocol);
  // The HTTP workloads' load: wrk or the C load generator's http mode (--http-loadgen; auto: each workload's own choice).
  const wrk = chosen.some((w) => w.http !== undefined) ? wrkVersion() : undefined;
  const httpLoadgen = new Map<string, 'wrk' | 'c'>();
  const httpNotes: string[] = [];
  chosen = chosen.filter((w) => {
    if (rowsOf(w.protocol).length === 0) {
      skipped.push(`${w.name} (no ${w.protocol} row among --targets)`);
      return false;
    }
    if (w.http !== undefined) {
      const wanted = flags['http-loadgen'] === 'auto' ? w.http.loadgen : (flags['http-loadgen'] as 'wrk' | 'c');
      const have = { wrk: wrk !== undefined, c: cLoadgen !== undefined };
      const use = have[wanted] ? wanted : wanted === 'wrk' ? 'c' : 'wrk';
      if (!have[use]) {
        skipped.push(`${w.name} (neither wrk nor the C load generator is available)`);
        return false;
      }
      if (use !== wanted) httpNotes.push(`${w.name}: ${wanted === 'wrk' ? 'wrk is not installed (apt-get install wrk)' : 'the C load generator is not available (not built, or --loadgen js)'}; ${use} plays it`);
      httpLoadgen.set(w.name, use);
      return true;
    }
    if (cLoadgen === undefined && w.script === undefined) {
      skipped.push(`${w.name} (needs the C load generator)`);
      return false;
    }
    if (w.kind === 'memory') {
      const problem = ensureFdLimit(CONNS_FDS);
      if (problem !== undefined) {
        skipped.push(`${w.name} (${problem})`);
        return false;
      }
    }
    return true;
  });
  let mallocStats: string | undefined;
  if (chosen.some((w) => w.kind === 'memory')) {
    const build = buildMallocStats();
    if (build.ok) mallocStats = build.addon;
    else console.log(`bench: no malloc statistics (${build.reason}): RSS growth may miss native memory malloc reuses`);
  }
  const options: Options = {
    warmupMs,
    durationMs,
    waitQuietMs,
    settleMs,
    cLoadgen,
    mallocStats,
    profile: flags.profile as Options['profile'],
    httpLoadgen,
    wrkThreads,
    pin,
  };
  const loadgenOf = (workload: Workload): string => {
    if (workload.http === undefined) return cLoadgen !== undefined ? 'C' : 'JS';
    return httpLoadgen.get(workload.name) === 'wrk'
      ? `${wrk}, ${wrkThreads} thread${wrkThreads === 1 ? '' : 's'} (bench/load/http.lua)`
      : `the C load generator's http mode, 1 thread`;
  };

  const started = Date.now();
  console.log(`bench: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log(
    `bench: targets ${targets.join(', ')}; ${runs} runs of ${durationMs} ms after ${warmupMs} ms warm-up; ` +
      `load generator: ${cLoadgen !== undefined ? `C (${path.relative(process.cwd(), cLoadgen)})` : 'JS'}`,
  );
  if (pin !== undefined) console.log(`bench: the server is held to CPU ${pin.server}, the load generator to CPU ${pin.load} (--pin)`);
  if (skipped.length > 0) console.log(`bench: skipping ${skipped.join(', ')}`);
  for (const note of httpNotes) console.log(`bench: ${note}`);
  const httpChosen = chosen.filter((w) => w.http !== undefined);
  if (httpChosen.length > 0) console.log(`bench: HTTP load: ${httpChosen.map((w) => `${w.name} by ${loadgenOf(w)}`).join('; ')}`);
  console.log('');

  const errors: string[] = [];
  const report: Record<string, unknown> = {};
  const tables: string[] = [];
  const verdictsByGroup = new Map<string, string[]>();
  for (const workload of chosen) {
    const records: RunRecord[] = [];
    const discarded: RunRecord[] = [];
    const rowsHere = rowsOf(workload.protocol);
    for (let run = 1; run <= runs; run++) {
      // Rotating the order spreads any drift (heat, a noisy neighbour) over every target.
      const order = rowsHere.map((_, i) => rowsHere[(i + run - 1) % rowsHere.length]);
      for (const target of order) {
        const { record, disturbed } = await measure(target, workload, run, options);
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
    const rows = summarize(workload, rowsHere, records);
    const redone = discarded.length > 0 ? ` (${discarded.length} disturbed runs repeated)` : '';
    const window = workload.kind === 'memory' ? `${IDLE_CONNECTIONS.toLocaleString('en-US')} connections, ${settleMs} ms settle` : `${durationMs} ms`;
    const by = workload.http !== undefined ? `; load: ${loadgenOf(workload)}` : '';
    // Rows where the load generator ran out of its threads: their figures are floors, and ratios against them say so.
    const bound = new Map<string, string>();
    for (const row of rows) {
      const threads = median(records.filter((r) => r.target === row.target && r.result !== undefined).map((r) => r.result!.metrics.loadThreads ?? 1));
      const perThread = row.loadCpuPercent / (Number.isNaN(threads) ? 1 : threads);
      if (perThread >= LOADGEN_BOUND_PERCENT) {
        bound.set(
          row.target,
          `  note: on ${row.target} the load generator used ${Math.round(perThread)}% of its ${threads === 1 ? 'thread' : `${threads} threads each`}: ` +
            'it may be what limits that row, whose figure is then a floor',
        );
      }
    }
    const notes = bound.size > 0 ? `\n${[...bound.values()].join('\n')}` : '';
    tables.push(`${workload.title}\nmedian of ${runs} runs of ${window}${redone}${by}\n${formatTable(workload, rows)}${notes}`);
    for (const target of workload.targets) {
      const subject = rows.find((row) => row.target === target.subject);
      if (subject === undefined || !rowsHere.includes(target.against)) continue;
      const ratio = subject.ratios[target.against] ?? NaN;
      // A verdict on medians that the spread of the runs could turn around (the subject's
      // best run against the other row's worst, and the other way) is said to be fragile.
      const values = (row: string): number[] =>
        records.filter((r) => r.target === row && r.result !== undefined).map((r) => headlineOf(workload, r));
      const [u, n] = [values(target.subject), values(target.against)];
      const lowest = Math.min(...u) / Math.max(...n);
      const highest = Math.max(...u) / Math.min(...n);
      const fragile =
        runs > 1 && targetVerdict(workload, target, lowest) !== targetVerdict(workload, target, highest)
          ? `  (fragile: single runs give ${target.label} ${lowest.toFixed(2)}x..${highest.toFixed(2)}x)`
          : '';
      const floors = [target.subject, target.against].filter((row) => bound.has(row));
      const floor = floors.length > 0 ? `  (load-generator-bound: ${floors.join(' and ')}, a floor)` : '';
      const group = TARGET_GROUPS[workload.protocol];
      if (!verdictsByGroup.has(group)) verdictsByGroup.set(group, []);
      // A ratio within rounding of its target gets a third decimal, so that 1.004x does not read 1.00x NOT MET.
      verdictsByGroup.get(group)!.push(
        `  ${`${workload.name} ${workload.unit}`.padEnd(26)} ${target.label.padEnd(10)} ${ratio.toFixed(Math.abs(ratio - target.ratio) < 0.005 ? 3 : 2).padStart(6)}x` +
          `   target ${targetText(workload, target).padEnd(7)}  ${targetVerdict(workload, target, ratio)}${fragile}${floor}`,
      );
    }
    report[workload.name] = {
      title: workload.title,
      protocol: workload.protocol,
      loadgen: loadgenOf(workload),
      loadgenBound: [...bound.keys()],
      unit: workload.unit,
      headline: workload.headline,
      better: workload.better,
      compare: workload.compare,
      targets: workload.targets,
      rows,
      runs: records,
      discarded,
    };
  }

  console.log(`\n${tables.join('\n\n')}`);
  for (const [group, verdicts] of verdictsByGroup) console.log(`\n${group}:\n${verdicts.join('\n')}`);
  const minutes = (Date.now() - started) / 60000;
  console.log(`\nbench: took ${Math.floor(minutes)} min ${Math.round((minutes % 1) * 60)} s`);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const out = path.join(RESULTS_DIR, 'latest.json');
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, platform: os.platform(), release: os.release(), node: process.version };
  const settings = {
    runs,
    durationMs,
    warmupMs,
    settleMs,
    fixedRate,
    workload: flags.workload,
    targets,
    loadgen: cLoadgen !== undefined ? 'c' : 'js',
    httpLoadgen: Object.fromEntries(httpLoadgen),
    wrk,
    wrkThreads,
    waitQuietMs,
    skipped,
  };
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, options: settings, baseline: BASELINE, workloads: report, errors }, null, 2)}\n`);
  console.log(`bench: wrote ${path.relative(process.cwd(), out)}`);
  if (options.profile !== 'off') console.log(`bench: profiles in ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'profiles'))}`);
  if (errors.length > 0) {
    console.error(`\n!!! ${errors.length} ERROR(S): the figures above are not valid:\n${errors.map((e) => `  ${e}`).join('\n')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
