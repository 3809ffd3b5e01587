/**
 * Streamed HTTP response bodies (`res.stream`, and static files over 256
 * KiB), over real loopback sockets on every backend that loads. The server
 * has small queue limits (512 KiB, high-water 128 KiB), so a 12 MiB file is
 * many times what a connection may queue.
 *
 * | case | expected |
 * | --- | --- |
 * | a 12 MiB static file, read by a client that pauses every MiB until the server's queue is at its high-water mark | byte-identical (SHA-256); the server's queue never over the high-water mark plus one piece; the queue did fill (backpressure was in play) |
 * | a large compressible static file with `Accept-Encoding: gzip`; a small one | the large one identity with Content-Length, streamed; the small one gzipped |
 * | a Range of the large file | 206, only those bytes |
 * | a chunked stream from an async generator, read by node's http client, three times on one keep-alive socket | `Transfer-Encoding: chunked`, the bytes exactly, the socket reused |
 * | a Readable with `length` | Content-Length, the bytes |
 * | HTTP/1.0, no length (with and without `Connection: keep-alive`) | no Content-Length or Transfer-Encoding, `Connection: close`, the body up to the end of the connection |
 * | HTTP/1.0 keep-alive, with a length | Content-Length, `Connection: keep-alive`, the next request answered on the same connection |
 * | HEAD on a chunked stream, on a sized one | the head GET gets, no body; the generator never ran, the Readable destroyed |
 * | a streamed body, a plain route, a sized stream, a HEAD, a streamed Range and a plain route in one write | answered in request order |
 * | empty streams, chunked and sized; a handler that returns `res.stream(...)` | a last chunk alone; Content-Length 0; the body |
 * | a client that disconnects mid-body, from an endless Readable; from the large static file | the Readable destroyed, the file's descriptor closed, the server serves the next client, no fault |
 * | a client that stops reading the large file, on a listener with `requestTimeoutMs` 1000 | closed (its body made no progress), the file's descriptor closed, the queue freed |
 * | a source that fails mid-body | the head and the first bytes, then the connection ends; the fault reaches `onError` (source `http`) |
 * | a source that fails before its first piece (a file that does not exist) | 500, a fault, the connection carries on |
 * | a sized source that yields fewer bytes, more bytes | the connection ends after what was sent; a fault |
 * | a handler that returns a Readable instead of using `res.stream` | 500 and a fault saying so |
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createServer, type FaultContext, type Server } from '../../src';
import { backends } from '../support/backends';
import { DEADLINE_MS, RawHttp, request, type RawResponse } from '../support/http-raw';
import { waitFor } from '../support/wait';

jest.setTimeout(4 * DEADLINE_MS);

const KIB = 1024;
const MAX_QUEUE = 512 * KIB;
const HIGH_WATER = 128 * KIB;
const LOW_WATER = 32 * KIB;
/** The largest piece the server writes at once (a quarter of the queue, at most 64 KiB), and room for a head. */
const MAX_PIECE = 64 * KIB;
const BIG_SIZE = 12 * 1024 * KIB;
/** Read between pauses by the slow reader. */
const READ_STEP = 1024 * KIB;

let dir: string;
let bigPath: string;
let bigHash: string;
let largeScript: string;
const smallScript = `${'function tick(state) { return state.players.map((p) => p.x + p.y); }\n'.repeat(100)}`;

/** Piece `i` of a generated body: `size` bytes, each piece its own byte value. */
function piece(i: number, size: number): Buffer {
  return Buffer.alloc(size, (i * 37 + 11) % 256);
}

function pieces(n: number, size: number): Buffer {
  return Buffer.concat(Array.from({ length: n }, (_, i) => piece(i, size)));
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** How many descriptors this process holds open on `file` (Linux: /proc/self/fd), or undefined where that cannot be seen. */
function descriptorsOn(file: string): number | undefined {
  if (process.platform !== 'linux') return undefined;
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // The descriptor closed while the directory was read.
    }
  }
  return count;
}

beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-stream-')));
  bigPath = path.join(dir, 'big.bin');
  const big = randomBytes(BIG_SIZE);
  fs.writeFileSync(bigPath, big);
  bigHash = sha256(big);
  largeScript = `${'export function step(world) { return world.entities.filter((e) => e.alive).length; }\n'.repeat(8000)}`;
  fs.writeFileSync(path.join(dir, 'large.js'), largeScript);
  fs.writeFileSync(path.join(dir, 'small.js'), smallScript);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(backends)('streamed HTTP bodies on %s', (backend) => {
  let server: Server;
  let port = 0;
  let quickPort = 0;
  let faults: Array<{ error: Error & { code?: string }; ctx: FaultContext }> = [];
  /** Readables the routes made, by route, for the tests to watch. */
  const made: Record<string, Readable[]> = { endless: [], sized: [] };
  let generatorRuns = 0;

  beforeAll(async () => {
    server = createServer({
      backend,
      limits: { maxQueueBytes: MAX_QUEUE, highWaterMarkBytes: HIGH_WATER, lowWaterMarkBytes: LOW_WATER },
      onError: (error, ctx) => faults.push({ error: error as Error, ctx }),
    });
    server.http.static('/files', dir);
    server.http.get('/hello', () => 'hello');
    server.http.get('/chunked', (req, res) => {
      const n = Number(req.query.get('n') ?? 16);
      const size = Number(req.query.get('size') ?? 1000);
      res.header('Content-Type', 'application/x-test');
      res.stream(
        (async function* () {
          generatorRuns++;
          for (let i = 0; i < n; i++) {
            // A source that produces over time, as a game's export would: each piece from a later turn.
            await new Promise((resolve) => setImmediate(resolve));
            yield piece(i, size);
          }
        })(),
      );
    });
    server.http.get('/sized', (req, res) => {
      const n = Number(req.query.get('n') ?? 8);
      const size = Number(req.query.get('size') ?? 1000);
      const source = Readable.from(Array.from({ length: n }, (_, i) => piece(i, size)));
      made.sized.push(source);
      res.stream(source, { length: n * size });
    });
    server.http.get('/endless', (_req, res) => {
      const source = new Readable({
        read() {
          this.push(Buffer.alloc(16 * KIB, 0x61));
        },
      });
      made.endless.push(source);
      res.stream(source);
    });
    server.http.get('/fails-mid', (_req, res) => {
      res.stream(
        (async function* () {
          yield piece(0, 1000);
          yield piece(1, 1000);
          throw new Error('the disk went away');
        })(),
      );
    });
    server.http.get('/missing-file', (_req, res) => {
      res.stream(fs.createReadStream(path.join(dir, 'not-there.bin')));
    });
    server.http.get('/short', (_req, res) => {
      res.stream(Readable.from([piece(0, 1000), piece(1, 1000)]), { length: 5000 });
    });
    server.http.get('/long', (_req, res) => {
      res.stream(Readable.from([piece(0, 600), piece(1, 600)]), { length: 1000 });
    });
    server.http.get('/returns-stream', () => Readable.from([Buffer.from('x')]));
    server.http.get('/empty', (req, res) => res.stream(Readable.from([]), req.query.has('sized') ? { length: 0 } : {}));
    server.http.get('/returns-res', (_req, res) => res.stream(Readable.from(['streamed ', 'text'])));
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http' }));
    ({ port: quickPort } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http', requestTimeoutMs: 1000 }));
  });

  afterAll(async () => {
    await server.close({ drainMs: 100 });
  });

  beforeEach(() => {
    faults = [];
  });

  function queued(): number {
    return server.stats().backend.queuedBytes;
  }

  /** One request on a connection of its own. */
  async function fetch(target: string, options: { headers?: Record<string, string>; method?: string; version?: string } = {}): Promise<RawResponse & { ended: boolean }> {
    const client = await RawHttp.connect(port);
    try {
      if (options.method === 'HEAD') client.headAnswers.add(0);
      client.write(request(options.method ?? 'GET', target, { headers: options.headers, version: options.version }));
      const response = await client.response(0);
      return { ...response, ended: client.ended };
    } finally {
      client.destroy();
    }
  }

  it('downloads a file many times the queue limit to a slow reader, byte-identical, with the queue bounded', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    // Paused before any byte arrives: what the kernel holds for this socket fills, then the server's queue.
    socket.pause();
    const chunks: Buffer[] = [];
    let received = 0;
    let ended = false;
    let peak = 0;
    const sample = () => {
      const q = queued();
      if (q > peak) peak = q;
      return q;
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      sample();
    });
    socket.on('close', () => (ended = true));
    socket.on('error', () => undefined);

    let total: number | undefined;
    const complete = () => {
      if (total === undefined && received > 0) {
        const all = Buffer.concat(chunks);
        const at = all.indexOf('\r\n\r\n');
        if (at >= 0) {
          const length = /\r\ncontent-length: (\d+)\r\n/i.exec(all.toString('latin1', 0, at + 2));
          if (length !== null) total = at + 4 + Number(length[1]);
        }
      }
      return total !== undefined && received >= total;
    };

    const bytesOutBefore = server.stats().backend.bytesOut;
    socket.write(request('GET', '/files/big.bin'));
    let pausesAtHighWater = 0;
    while (!complete() && !ended) {
      // Paused: wait until the server holds bytes it cannot send (its queue at the high-water mark), or has
      // handed all of the file to the backend (near the end, when what is left fits in the kernel's buffers).
      let atHighWater = false;
      await waitFor(
        () => {
          atHighWater = sample() >= HIGH_WATER;
          return atHighWater || server.stats().backend.bytesOut - bytesOutBefore >= BIG_SIZE || ended;
        },
        'the server to fill its queue, or to have sent the whole file',
        DEADLINE_MS,
      );
      if (atHighWater) pausesAtHighWater++;
      const until = received + READ_STEP;
      socket.resume();
      await waitFor(() => received >= until || complete() || ended, 'the next MiB', DEADLINE_MS);
      socket.pause();
    }
    socket.destroy();

    expect(complete()).toBe(true);
    const all = Buffer.concat(chunks);
    const headEnd = all.indexOf('\r\n\r\n') + 4;
    expect(all.toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
    expect(received - headEnd).toBe(BIG_SIZE);
    expect(sha256(all.subarray(headEnd))).toBe(bigHash);
    // The server waited for the reader: its queue filled while the reader paused, and never held more than
    // the high-water mark and one piece (with a head) of the 12 MiB.
    expect(pausesAtHighWater).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(HIGH_WATER + MAX_PIECE + KIB);
    expect(faults).toEqual([]);
  });

  it('streams a large compressible file identity, and still gzips a small one', async () => {
    const large = await fetch('/files/large.js', { headers: { 'Accept-Encoding': 'gzip' } });
    expect([large.status, large.headers['content-encoding'], large.headers['content-length']]).toEqual([200, undefined, String(largeScript.length)]);
    expect(large.body.toString()).toBe(largeScript);
    const small = await fetch('/files/small.js', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(small.headers['content-encoding']).toBe('gzip');
    expect(small.body.length).toBeLessThan(smallScript.length);
  });

  it('streams a Range of a large file, and only that range', async () => {
    const big = fs.readFileSync(bigPath);
    const start = 3 * 1024 * KIB + 5;
    const end = start + 700 * KIB - 1;
    const part = await fetch('/files/big.bin', { headers: { Range: `bytes=${start}-${end}` } });
    expect([part.status, part.headers['content-range'], part.headers['content-length']]).toEqual([206, `bytes ${start}-${end}/${BIG_SIZE}`, String(end - start + 1)]);
    expect(part.body.equals(big.subarray(start, end + 1))).toBe(true);
    const head = await fetch('/files/big.bin', { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(BIG_SIZE), 0]);
  });

  it('sends a stream of unknown length chunked, as node:http reads it, on one keep-alive socket', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const expected = pieces(64, 5000);
      for (let i = 0; i < 3; i++) {
        const { response, body, reused } = await new Promise<{ response: http.IncomingMessage; body: Buffer; reused: boolean }>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port, path: '/chunked?n=64&size=5000', agent }, (response) => {
            const parts: Buffer[] = [];
            response.on('data', (chunk: Buffer) => parts.push(chunk));
            response.on('end', () => resolve({ response, body: Buffer.concat(parts), reused: req.reusedSocket }));
            response.on('error', reject);
          });
          req.on('error', reject);
        });
        expect([response.statusCode, response.headers['transfer-encoding'], response.headers['content-length'], response.headers['content-type']]).toEqual([
          200,
          'chunked',
          undefined,
          'application/x-test',
        ]);
        expect(body.equals(expected)).toBe(true);
        expect(reused).toBe(i > 0);
      }
    } finally {
      agent.destroy();
    }
  });

  it('sends a stream of known length with Content-Length', async () => {
    const response = await fetch('/sized?n=40&size=3000');
    expect([response.status, response.headers['content-length'], response.headers['transfer-encoding'], response.headers['content-type']]).toEqual([
      200,
      '120000',
      undefined,
      'application/octet-stream',
    ]);
    expect(response.body.equals(pieces(40, 3000))).toBe(true);
  });

  it('sends HTTP/1.0 a stream of unknown length up to the end of the connection', async () => {
    const variants: Array<Record<string, string>> = [{}, { Connection: 'keep-alive' }];
    for (const headers of variants) {
      const response = await fetch('/chunked?n=20&size=4000', { version: 'HTTP/1.0', headers });
      expect([response.headers['content-length'], response.headers['transfer-encoding'], response.headers.connection, response.closeDelimited]).toEqual([
        undefined,
        undefined,
        'close',
        true,
      ]);
      expect(response.ended).toBe(true);
      expect(response.body.equals(pieces(20, 4000))).toBe(true);
    }
  });

  it('keeps an HTTP/1.0 keep-alive connection after a stream of known length', async () => {
    const client = await RawHttp.connect(port);
    try {
      client.write(request('GET', '/sized?n=10&size=2000', { version: 'HTTP/1.0', headers: { Connection: 'keep-alive' } }));
      const first = await client.response(0);
      expect([first.headers['content-length'], first.headers.connection]).toEqual(['20000', 'keep-alive']);
      expect(first.body.equals(pieces(10, 2000))).toBe(true);
      client.write(request('GET', '/hello', { version: 'HTTP/1.0', headers: { Connection: 'keep-alive' } }));
      expect((await client.response(1)).body.toString()).toBe('hello');
    } finally {
      client.destroy();
    }
  });

  it('answers HEAD with the head GET gets, and never reads the source', async () => {
    const runsBefore = generatorRuns;
    const sizedBefore = made.sized.length;
    const client = await RawHttp.connect(port);
    try {
      client.headAnswers.add(0);
      client.headAnswers.add(1);
      client.write(Buffer.concat([request('HEAD', '/chunked?n=10&size=100'), request('HEAD', '/sized?n=4&size=250'), request('GET', '/hello')]));
      const [chunkedHead, sizedHead, hello] = await client.waitResponses(3);
      expect([chunkedHead.status, chunkedHead.headers['transfer-encoding'], chunkedHead.headers['content-length'], chunkedHead.body.length]).toEqual([200, 'chunked', undefined, 0]);
      expect([sizedHead.status, sizedHead.headers['content-length'], sizedHead.body.length]).toEqual([200, '1000', 0]);
      expect(hello.body.toString()).toBe('hello');
      expect(generatorRuns).toBe(runsBefore);
      expect(made.sized.length).toBe(sizedBefore + 1);
      await waitFor(() => made.sized[sizedBefore].destroyed, 'the HEAD answer to destroy its Readable');
    } finally {
      client.destroy();
    }
  });

  it('answers requests pipelined behind streamed bodies in request order', async () => {
    const big = fs.readFileSync(bigPath);
    const client = await RawHttp.connect(port);
    try {
      client.headAnswers.add(3);
      client.write(
        Buffer.concat([
          request('GET', '/chunked?n=40&size=8192'),
          request('GET', '/hello'),
          request('GET', '/sized?n=30&size=10000'),
          request('HEAD', '/chunked'),
          request('GET', '/files/big.bin', { headers: { Range: 'bytes=100-400099' } }),
          request('GET', '/hello'),
        ]),
      );
      const answers = await client.waitResponses(6);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 206, 200]);
      expect(answers[0].body.equals(pieces(40, 8192))).toBe(true);
      expect(answers[1].body.toString()).toBe('hello');
      expect(answers[2].body.equals(pieces(30, 10000))).toBe(true);
      expect([answers[3].headers['transfer-encoding'], answers[3].body.length]).toEqual(['chunked', 0]);
      expect(answers[4].body.equals(big.subarray(100, 400100))).toBe(true);
      expect(answers[5].body.toString()).toBe('hello');
      expect(client.ended).toBe(false);
    } finally {
      client.destroy();
    }
  });

  it('sends empty streams, and a stream a handler returns res.stream(...) for', async () => {
    const chunkedEmpty = await fetch('/empty');
    expect([chunkedEmpty.status, chunkedEmpty.headers['transfer-encoding'], chunkedEmpty.body.length]).toEqual([200, 'chunked', 0]);
    const sizedEmpty = await fetch('/empty?sized');
    expect([sizedEmpty.status, sizedEmpty.headers['content-length'], sizedEmpty.body.length]).toEqual([200, '0', 0]);
    const returned = await fetch('/returns-res');
    expect([returned.status, returned.body.toString()]).toEqual([200, 'streamed text']);
  });

  it('destroys the source of a client that disconnects mid-body, and serves the next client', async () => {
    const before = made.endless.length;
    // Counted, not kept: the endless body arrives as fast as loopback goes.
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.write(request('GET', '/endless'));
    await waitFor(() => received > 256 * KIB, 'a quarter MiB of the endless body', DEADLINE_MS);
    const source = made.endless[before];
    let closed = false;
    source.once('close', () => (closed = true));
    socket.destroy();
    await waitFor(() => closed && source.destroyed, 'the endless source to be destroyed', DEADLINE_MS);
    expect((await fetch('/hello')).body.toString()).toBe('hello');
    expect(faults).toEqual([]);
  });

  it('closes the file of a static download the client abandons', async () => {
    const client = await RawHttp.connect(port);
    client.write(request('GET', '/files/big.bin'));
    await waitFor(() => client.received.length > 1024 * KIB, 'a MiB of the file', DEADLINE_MS);
    // Stop reading: the server's queue fills and the file stays open, part-read.
    client.socket.pause();
    await waitFor(() => queued() >= HIGH_WATER, 'the server to fill its queue', DEADLINE_MS);
    if (descriptorsOn(bigPath) !== undefined) expect(descriptorsOn(bigPath)).toBe(1);
    client.destroy();
    if (descriptorsOn(bigPath) !== undefined) await waitFor(() => descriptorsOn(bigPath) === 0, 'the file to be closed', DEADLINE_MS);
    await waitFor(() => queued() === 0, 'the abandoned queue to go', DEADLINE_MS);
    expect((await fetch('/hello')).body.toString()).toBe('hello');
    expect(faults).toEqual([]);
  });

  it('closes a client that stops reading once its body makes no progress for requestTimeoutMs', async () => {
    const client = await RawHttp.connect(quickPort);
    try {
      client.socket.pause();
      client.write(request('GET', '/files/big.bin'));
      await waitFor(() => queued() >= HIGH_WATER, 'the server to fill its queue', DEADLINE_MS);
      if (descriptorsOn(bigPath) !== undefined) {
        expect(descriptorsOn(bigPath)).toBe(1);
        await waitFor(() => descriptorsOn(bigPath) === 0, 'the stalled download to be closed', DEADLINE_MS);
      }
      // A peer that reads nothing cannot take a graceful close either: it is reset, and its queue goes.
      await waitFor(() => queued() === 0, 'the stalled queue to go', DEADLINE_MS);
      expect(faults).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  it('ends the connection when the source fails mid-body, and reports the fault', async () => {
    const client = await RawHttp.connect(port);
    try {
      client.write(Buffer.concat([request('GET', '/fails-mid'), request('GET', '/hello')]));
      await client.waitEnded();
      expect(client.responses).toEqual([]);
      expect(client.reader.partial).toBe(true);
      const text = client.received.toString('latin1');
      expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
      expect(text).toContain('Transfer-Encoding: chunked\r\n');
      expect(client.received.includes(piece(1, 1000))).toBe(true);
      await waitFor(() => faults.length === 1, 'the fault');
      expect([faults[0].error.message, faults[0].ctx.source, faults[0].ctx.event]).toEqual(['the disk went away', 'http', 'GET /fails-mid']);
    } finally {
      client.destroy();
    }
  });

  it('answers 500 when the source fails before its first piece, and carries on', async () => {
    const client = await RawHttp.connect(port);
    try {
      client.write(Buffer.concat([request('GET', '/missing-file'), request('GET', '/hello')]));
      const [failed, hello] = await client.waitResponses(2);
      expect(failed.status).toBe(500);
      expect(hello.body.toString()).toBe('hello');
      expect(client.ended).toBe(false);
      await waitFor(() => faults.length === 1, 'the fault');
      expect([faults[0].error.code, faults[0].ctx.source, faults[0].ctx.event]).toEqual(['ENOENT', 'http', 'GET /missing-file']);
    } finally {
      client.destroy();
    }
  });

  it.each([
    ['/short', 2000, /ended after 2000 of its 5000 bytes/],
    ['/long', 600, /more than its 1000 bytes/],
  ])('ends the connection when a sized source breaks its length (%s)', async (target, sent, message) => {
    const client = await RawHttp.connect(port);
    try {
      client.write(Buffer.concat([request('GET', target), request('GET', '/hello')]));
      await client.waitEnded();
      expect(client.responses).toEqual([]);
      const headEnd = client.received.indexOf('\r\n\r\n') + 4;
      expect(client.received.length - headEnd).toBe(sent);
      await waitFor(() => faults.length === 1, 'the fault');
      expect(faults[0].error.message).toMatch(message);
    } finally {
      client.destroy();
    }
  });

  it('refuses a Readable returned instead of streamed, with 500 and a fault that says so', async () => {
    const response = await fetch('/returns-stream');
    expect(response.status).toBe(500);
    await waitFor(() => faults.length === 1, 'the fault');
    expect(faults[0].error.message).toMatch(/res\.stream/);
  });
});
