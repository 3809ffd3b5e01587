import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { intFlag, parseFlags } from '../flags';
import { exitWithParent, report, type LoadResult } from '../ipc';

/**
 * The HTTP workloads' load generator when it is wrk (Debian's `wrk`, 4.1):
 * this script only drives it and checks what it says. For each run:
 *
 * 1. a check over one raw connection: `depth` requests of the workload's
 *    shape in one write, every answer parsed here, each of which must be
 *    `200` with a Content-Length, the expected body and no
 *    `Connection: close`; and every answer the same size, which is noted;
 * 2. a warm-up: wrk for the warm-up time (whole seconds: wrk's `-d` has no
 *    finer unit), its errors counted like the window's;
 * 3. the window: `window-start`, wrk for the duration, `window-end` when it
 *    exits. The server's CPU is measured between the two, so it includes
 *    wrk's start (a few ms) and its connects.
 *
 * wrk runs bench/load/http.lua, which pipelines `depth` requests per write
 * (a static request at depth 1) and prints, when wrk is done, its counts and
 * wrk's own CPU time (getrusage, every thread joined by then) as JSON. No
 * latency: wrk's is corrected in a way that does not fit pipelining (see
 * http.lua), so the wrk rows show none.
 *
 * What fails the run: a failed check; any status over 399 (wrk counts
 * them); any socket error or timeout wrk counts; no request answered; and
 * received bytes that are not `requests x` the checked answer's size, up to
 * the answers cut off when wrk stopped (at most `connections x depth` of
 * them). wrk does not look at statuses under 400, and it reconnects
 * silently when a server closes a connection it should have kept; either
 * would change the size of the answers, and the byte count would show it.
 *
 *   node -r ts-node/register/transpile-only bench/load/wrk.ts --port P [--method GET] [--path /] [--body 0]
 *        [--depth 1] [--expect 'Hello, World!'] [--connections 100] [--threads 1] [--warmup-ms 1000] [--duration-ms 3000]
 */
const SCRIPT = path.join(__dirname, 'http.lua');
const CHECK_TIMEOUT_MS = 10_000;

const flags = parseFlags(process.argv.slice(2), {
  port: '0',
  method: 'GET',
  path: '/',
  body: '0',
  depth: '1',
  expect: '',
  connections: '100',
  threads: '1',
  'warmup-ms': '1000',
  'duration-ms': '3000',
  wrk: 'wrk',
});
const port = intFlag(flags, 'port', 1);
const bodyBytes = intFlag(flags, 'body', 0);
const depth = intFlag(flags, 'depth', 1);
const connections = intFlag(flags, 'connections', 1);
const threads = intFlag(flags, 'threads', 1);
const warmupMs = intFlag(flags, 'warmup-ms', 0);
const durationMs = intFlag(flags, 'duration-ms', 1000);
if (!['GET', 'POST'].includes(flags.method)) throw new Error(`--method is GET or POST, got '${flags.method}'`);

/** The same body as http.lua's and the C load generator's: 0123456789abcdef, cut to length. */
const body = '0123456789abcdef'.repeat(Math.ceil(bodyBytes / 16)).slice(0, bodyBytes);
/** An echo's answer is its body; a GET's is `--expect`. */
const expected = Buffer.from(flags.expect !== '' ? flags.expect : body);

interface WrkDone {
  durationUs: number;
  requests: number;
  bytes: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  statusErrors: number;
  userUs: number;
  sysUs: number;
}

/** The request wrk sends (wrk.format: request line, Host, and Content-Length with a body), as raw bytes for the check. */
function request(): string {
  const head = `${flags.method} ${flags.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
  return bodyBytes > 0 ? `${head}Content-Type: application/octet-stream\r\nContent-Length: ${bodyBytes}\r\n\r\n${body}` : `${head}\r\n`;
}

/**
 * Parses the answers at the start of `buf`; returns the size of each whole
 * one, or throws on one that is not what every answer must be.
 */
function parseAnswers(buf: Buffer, want: number): number[] {
  const sizes: number[] = [];
  let at = 0;
  while (sizes.length < want) {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) break;
    const head = buf.toString('latin1', at, end);
    const [statusLine, ...lines] = head.split('\r\n');
    if (!/^HTTP\/1\.1 200 /.test(`${statusLine} `)) throw new Error(`answer ${sizes.length + 1} is '${statusLine}', not HTTP/1.1 200`);
    const fields = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    const length = fields.get('content-length');
    if (length === undefined || !/^\d+$/.test(length)) throw new Error(`answer ${sizes.length + 1} has no Content-Length (${head})`);
    if (/close/i.test(fields.get('connection') ?? '')) throw new Error(`answer ${sizes.length + 1} says Connection: close`);
    const bodyEnd = end + 4 + Number(length);
    if (bodyEnd > buf.length) break;
    const got = buf.subarray(end + 4, bodyEnd);
    if (!got.equals(expected)) throw new Error(`answer ${sizes.length + 1} has the body '${got.toString('latin1')}', expected '${expected.toString('latin1')}'`);
    sizes.push(bodyEnd - at);
    at = bodyEnd;
  }
  return sizes;
}

/** `depth` requests in one write on one connection; the size every answer has. */
function check(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`the check before the run failed: ${err.message}`));
    };
    const timer = setTimeout(() => fail(new Error(`${depth} requests not answered within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    socket.on('connect', () => socket.write(request().repeat(depth), 'latin1'));
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection')));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let sizes: number[];
      try {
        sizes = parseAnswers(received, depth);
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (sizes.length < depth) return;
      if (new Set(sizes).size !== 1) {
        fail(new Error(`the answers differ in size (${[...new Set(sizes)].join(', ')} bytes)`));
        return;
      }
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.destroy();
      resolve(sizes[0]);
    });
  });
}

/** One wrk run of `seconds`; its summary and what it printed. */
function runWrk(seconds: number): Promise<{ done: WrkDone; output: string }> {
  // wrk counts a request unanswered after --timeout (2 s by default) as an error, and an error fails the row:
  // node:http answers some of 100 connections' 16 pipelined requests that late under load, slow but all correct.
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', SCRIPT, `http://127.0.0.1:${port}`, '--'];
  args.push(flags.method, flags.path, String(bodyBytes), String(depth));
  return new Promise((resolve, reject) => {
    const wrk = spawn(flags.wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    process.once('exit', () => wrk.kill('SIGKILL'));
    let output = '';
    wrk.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    wrk.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    wrk.on('error', (err) => reject(new Error(`${flags.wrk} did not start: ${err.message}`)));
    wrk.on('close', (code, signal) => {
      const line = output.split('\n').find((l) => l.startsWith('{"type":"wrk-done"'));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk ${args.join(' ')} ended (${signal ?? `code ${code}`}) without a summary: ${output.trim()}`));
        return;
      }
      resolve({ done: JSON.parse(line) as WrkDone, output });
    });
  });
}

/** What wrk counted that makes a run invalid. */
function problems(done: WrkDone, answerBytes: number, phase: string): string[] {
  const out: string[] = [];
  if (done.statusErrors > 0) out.push(`${phase}${done.statusErrors} responses with a status over 399`);
  const socket = done.connectErrors + done.readErrors + done.writeErrors + done.timeouts;
  if (socket > 0) {
    out.push(`${phase}wrk socket errors: connect ${done.connectErrors}, read ${done.readErrors}, write ${done.writeErrors}, timeout ${done.timeouts}`);
  }
  if (done.requests === 0) out.push(`${phase}no requests were answered`);
  const low = done.requests * answerBytes;
  const high = (done.requests + connections * depth) * answerBytes;
  if (done.bytes < low || done.bytes > high) {
    out.push(
      `${phase}wrk received ${done.bytes} bytes for ${done.requests} answers of ${answerBytes} bytes (expected ${low}..${high}): ` +
        'some answers were not the checked 200',
    );
  }
  return out;
}

async function main(): Promise<void> {
  exitWithParent();
  const answerBytes = await check();
  const errors: string[] = [];
  if (warmupMs > 0) {
    const warm = await runWrk(Math.max(1, Math.round(warmupMs / 1000)));
    errors.push(...problems(warm.done, answerBytes, 'warm-up: '));
  }
  await report({ type: 'window-start' });
  const { done } = await runWrk(Math.max(1, Math.round(durationMs / 1000)));
  await report({ type: 'window-end' });
  errors.push(...problems(done, answerBytes, ''));
  const seconds = done.durationUs / 1e6;
  const result: LoadResult = {
    rate: done.requests / seconds,
    windowMs: done.durationUs / 1000,
    loadCpuPercent: ((done.userUs + done.sysUs) / done.durationUs) * 100,
    metrics: {
      requests: done.requests,
      // No latency from wrk (see http.lua): its corrected histogram does not fit pipelined batches. NaN prints as '-'.
      p50Us: NaN,
      p99Us: NaN,
      badResponses: done.statusErrors + done.connectErrors + done.readErrors + done.writeErrors + done.timeouts,
      answerBytes,
      loadThreads: threads,
      loadUserPercent: (done.userUs / done.durationUs) * 100,
      loadSysPercent: (done.sysUs / done.durationUs) * 100,
    },
    errors,
  };
  await report({ type: 'result', result });
  process.exit(0);
}

main().catch(async (err: unknown) => {
  // A failed check or a wrk that would not run: a result with no window and the reason, which the runner reports as the run's error.
  const message = (err as Error).message;
  await report({ type: 'result', result: { rate: NaN, windowMs: NaN, loadCpuPercent: NaN, metrics: {}, errors: [message] } });
  process.exit(1);
});
