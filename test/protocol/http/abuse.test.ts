/**
 * The HTTP/1.1 listener (`listen({ protocol: 'http' })`) under abuse, over
 * real loopback sockets on every backend, with a hand-written client
 * (test/support/http-raw.ts) that writes raw bytes, splits them anywhere, and
 * reads the answers with its own parser. Every row below is one test (`it`,
 * or one row of an `it.each`). "Refused N" means: the response is N with
 * `Connection: close`, nothing else is answered, the server ends the
 * connection, a fresh connection is still served, and `server.sessions`
 * stays empty. The main listener has `maxBodyBytes` 64 KiB and a WebSocket
 * on `/play`; a second one has `requestTimeoutMs` 1000.
 *
 * | area | case | expected |
 * | --- | --- | --- |
 * | keep-alive | five requests, one after another, on one connection | five 200s, no `Connection: close`, still open, no session |
 * | pipelining | 16 requests in one write | 16 answers in request order |
 * | pipelining | a pair split at every byte boundary | both answered, in order, each time |
 * | pipelining | an async handler slower than the later ones | answers in request order |
 * | pipelining | GET, POST, chunked POST, HEAD, 404 in one write | answers in order, the HEAD one bodiless |
 * | pipelining | 2 uploads of 60 KiB in one write | both echoed |
 * | pipelining | 1000 requests in one write | 1000 answers in order |
 * | pipelining | 512 KiB piling up behind a pending request (over one head, one body and 64 KiB) | refused 400 while it is pending; no handler runs for them |
 * | bodies | Content-Length, every byte value | echoed exactly |
 * | bodies | Content-Length body split at every byte boundary | echoed each time |
 * | bodies | exactly `maxBodyBytes`, in several writes | echoed |
 * | bodies | chunked with extensions and trailers | de-chunked body |
 * | bodies | chunked split at every byte boundary | echoed each time |
 * | bodies | chunked, upper-case hex, an empty body | echoed; empty |
 * | connection | `Connection: close`, another request behind it | answered with `Connection: close`, then the end; the second unanswered |
 * | connection | HTTP/1.0 | answered with `Connection: close`, then the end |
 * | connection | HTTP/1.0 with `Connection: keep-alive` | answered with `Connection: keep-alive`, stays open for the next |
 * | limits | a head of exactly 16 KiB | 200 |
 * | limits | a head of 16 KiB + 1, complete | refused 431 |
 * | limits | a head over 16 KiB that never ends | refused 431 |
 * | limits | Content-Length over `maxBodyBytes`, only the head sent (two sizes) | refused 413 |
 * | limits | the same with `Expect: 100-continue` | refused 413, no 100 |
 * | limits | a chunk size over `maxBodyBytes`, only its size line sent | refused 413 |
 * | limits | a second chunk that passes `maxBodyBytes`, only its size line sent | refused 413 |
 * | malformed | request line of 2 or 4 parts, double space, bad version, control byte in the target | refused 400 |
 * | malformed | space before the colon, no colon, empty name, obs-fold | refused 400 |
 * | malformed | bare LF, bare CR, LF-only line ends, NUL in a value or the target, a control byte in a value | refused 400 |
 * | malformed | HTTP/1.1 without Host, with two | refused 400 |
 * | malformed | bad chunk size, chunk size line ending in bare LF, chunk data over its size, bare CR in a chunk extension or a trailer | refused 400 |
 * | smuggling | Content-Length with Transfer-Encoding; two differing Content-Lengths (two fields, one field) | refused 400 |
 * | smuggling | non-numeric or negative Content-Length; Transfer-Encoding in HTTP/1.0 | refused 400 |
 * | smuggling | two equal Content-Lengths | accepted |
 * | not implemented | an unknown method, a lower-case method | refused 501 |
 * | not implemented | Transfer-Encoding gzip, or gzip then chunked | refused 501 |
 * | not implemented | HTTP/1.2 | refused 505 |
 * | timeouts | a head not complete within `requestTimeoutMs` | 408, then the end |
 * | timeouts | a head dripped a byte at a time (slowloris) | 408, then the end |
 * | timeouts | a body not complete within `requestTimeoutMs` | 408, then the end |
 * | timeouts | an idle keep-alive connection; a connection that never sends | closed with no bytes |
 * | 100-continue | Content-Length body, chunked body | 100 before any body is sent, then the answer |
 * | routes | HEAD | GET's headers and Content-Length, no body |
 * | routes | an unknown path | 404 |
 * | routes | a known path under another method | 405 with `Allow: GET, HEAD` |
 * | routes | a handler that throws | 500, `onError` source `http`; the connection and others carry on |
 * | routes | `req.json()` on a body that is not JSON; on one that is | 400 with no fault; 200 |
 * | upgrade | a WebSocket upgrade on `/play` | 101, `session` event, packets echo |
 * | upgrade | an upgrade on another path | 404, no session, the connection carries on |
 * | upgrade | a request (a fast handler, a slow one), the upgrade and a frame in one write | the request answered first, then 101, then the echo |
 */
import { createServer, type FaultContext, type Server, type Session } from '../../../src';
import { backends } from '../../support/backends';
import { chunked, DEADLINE_MS, packetFrame, RawHttp, readPacketFrames, request, upgradeRequest, type RawResponse } from '../../support/http-raw';
import { waitFor } from '../../support/wait';

// Longer than one wait's deadline, so that a wait that fails says what it waited for.
jest.setTimeout(3 * DEADLINE_MS);
const MAX_BODY = 64 * 1024;
const MAX_HEAD = 16 * 1024;
const QUICK_TIMEOUT_MS = 1000;
const ECHO = 1;
/** A GET body long enough that a HEAD answer carrying it could not go unnoticed. */
const SIZED = 'x'.repeat(1000);

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** A request head of exactly `bytes` bytes, padded with one field. */
function headOfSize(bytes: number): Buffer {
  const bare = request('GET', '/hello', { headers: { 'X-Pad': '' } });
  return request('GET', '/hello', { headers: { 'X-Pad': 'p'.repeat(bytes - bare.length) } });
}

/** `head` (a request line and fields, without the empty line) with `Host` added after the request line. */
function withHost(lines: string, rest = ''): string {
  const eol = lines.indexOf('\r\n');
  return `${lines.slice(0, eol)}\r\nHost: ringport.test${lines.slice(eol)}\r\n\r\n${rest}`;
}

describe.each(backends)('HTTP/1.1 under abuse on %s', (backend) => {
  let server: Server;
  let port = 0;
  let quickPort = 0;
  let faults: Array<{ error: unknown; ctx: FaultContext }> = [];
  let announced: Session[] = [];
  let gates: Array<() => void> = [];
  let handled = 0;
  const clients: RawHttp[] = [];

  beforeAll(async () => {
    server = createServer({ backend, onError: (error, ctx) => faults.push({ error, ctx }) });
    server.handle(ECHO, (_session, bytes: Buffer) => bytes);
    server.on('session', (session) => announced.push(session));
    server.http.use(async (_req, _res, next) => {
      handled++;
      await next();
    });
    server.http.get('/hello', () => 'hello');
    server.http.get('/id/:id', (req) => `id ${req.params.id}`);
    server.http.get('/slow/:id', async (req) => {
      // Slow the way a database call is: the answer comes from a later turn of the event loop.
      await new Promise((resolve) => setTimeout(resolve, Number(req.query.get('ms') ?? 20)));
      return `id ${req.params.id}`;
    });
    server.http.get('/gate', () => new Promise<string>((resolve) => gates.push(() => resolve('released'))));
    server.http.get('/sized', () => SIZED);
    server.http.get('/throw', () => {
      throw new Error('route bug');
    });
    server.http.post('/echo', (req) => req.body);
    server.http.post('/json', (req) => ({ got: req.json() }));
    const listen = async (options: object) => (await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http', ...options })).port;
    // A minute: no test here should meet the main listener's timeout, however slow the machine.
    port = await listen({ maxBodyBytes: MAX_BODY, requestTimeoutMs: 60_000, websocket: { path: '/play' } });
    quickPort = await listen({ requestTimeoutMs: QUICK_TIMEOUT_MS });
  });

  beforeEach(() => {
    faults = [];
    announced = [];
  });

  afterEach(async () => {
    for (const release of gates.splice(0)) release();
    for (const client of clients.splice(0)) client.destroy();
    await waitFor(() => server.sessions.size === 0, 'the upgraded sessions to close', DEADLINE_MS);
  });

  afterAll(() => server.close({ drainMs: 100 }));

  async function open(onPort = port): Promise<RawHttp> {
    const client = await RawHttp.connect(onPort);
    clients.push(client);
    return client;
  }

  /** A fresh connection is served, and plain HTTP made no session. */
  async function expectServed(): Promise<void> {
    const other = await open();
    other.write(request('GET', '/hello'));
    const response = await other.response();
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('hello');
    expect(server.sessions.size).toBe(0);
    expect(announced).toEqual([]);
    other.destroy();
  }

  /** `bytes` get `status` with Connection: close, nothing more is answered, and the server ends the connection. */
  async function expectRefused(bytes: string | Buffer, status: number, onPort = port): Promise<RawResponse> {
    const client = await open(onPort);
    client.write(bytes);
    const response = await client.response();
    expect(response.status).toBe(status);
    expect(response.headers.connection).toBe('close');
    await client.waitEnded();
    expect(client.responses).toHaveLength(1);
    expect(client.reader.partial).toBe(false);
    await expectServed();
    return response;
  }

  function texts(responses: RawResponse[]): string[] {
    return responses.map((r) => `${r.status} ${r.body.toString('latin1')}`);
  }

  describe('keep-alive and pipelining', () => {
    it('keep-alive: five requests one after another on one connection', async () => {
      const client = await open();
      for (const i of range(5)) {
        client.write(request('GET', `/id/${i}`));
        const response = await client.response(i);
        expect(response.status).toBe(200);
        expect(response.body.toString()).toBe(`id ${i}`);
        expect(response.headers.connection).toBeUndefined();
      }
      expect(client.ended).toBe(false);
      expect(server.sessions.size).toBe(0);
      expect(announced).toEqual([]);
    });

    it('16 requests in one write are answered in request order', async () => {
      const client = await open();
      client.write(Buffer.concat(range(16).map((i) => request('GET', `/id/${i}`))));
      expect(texts(await client.waitResponses(16))).toEqual(range(16).map((i) => `200 id ${i}`));
      expect(client.ended).toBe(false);
    });

    it('a pipelined pair split at every byte boundary is answered in order each time', async () => {
      const pair = Buffer.concat([request('GET', '/id/a'), request('POST', '/echo', { body: 'bb' })]);
      const client = await open();
      for (let cut = 1; cut < pair.length; cut++) {
        await client.writeSplit(pair, [cut]);
        const responses = await client.waitResponses(2 * cut);
        expect(texts(responses.slice(-2))).toEqual(['200 id a', '200 bb']);
      }
    });

    it('an async handler slower than the later ones: answers still in request order', async () => {
      const client = await open();
      client.write(
        Buffer.concat([
          request('GET', '/slow/0?ms=60'),
          request('GET', '/id/1'),
          request('GET', '/slow/2?ms=5'),
          request('POST', '/echo', { body: 'three' }),
          request('GET', '/slow/4?ms=30'),
          request('GET', '/id/5'),
        ]),
      );
      expect(texts(await client.waitResponses(6))).toEqual(['200 id 0', '200 id 1', '200 id 2', '200 three', '200 id 4', '200 id 5']);
    });

    it('GET, POST, chunked POST, HEAD and a 404 in one write: answered in order, HEAD without a body', async () => {
      const client = await open();
      client.headAnswers.add(3);
      client.write(
        Buffer.concat([
          request('GET', '/hello'),
          request('POST', '/echo', { body: 'posted' }),
          request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body: chunked(['chun', 'ked']) }),
          request('HEAD', '/sized'),
          request('GET', '/nowhere'),
          request('GET', '/id/last'),
        ]),
      );
      const responses = await client.waitResponses(6);
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 200]);
      expect(responses[1].body.toString()).toBe('posted');
      expect(responses[2].body.toString()).toBe('chunked');
      expect(responses[3].headers['content-length']).toBe(String(SIZED.length));
      expect(responses[5].body.toString()).toBe('id last');
    });

    // What waits behind a request being answered is bounded by one head and one body (and 64 KiB): here
    // 144 KiB. Every handler here is async (the middleware awaits), so the batches below wait; they stay under it.
    it('two 60 KiB uploads in one write: both echoed', async () => {
      const bodies = range(2).map((i) => Buffer.alloc(60 * 1024, 0x61 + i));
      const client = await open();
      client.write(Buffer.concat(bodies.map((body) => request('POST', '/echo', { body }))));
      const responses = await client.waitResponses(2);
      expect(responses.map((r) => r.status)).toEqual([200, 200]);
      for (const i of range(2)) expect(responses[i].body.equals(bodies[i])).toBe(true);
    });

    // 1000, not more: under Wine, node:net gathers the answers queued behind a busy socket into one
    // writev, and past 1024 buffers Wine's sendmsg fails it with EMSGSIZE (Linux's UIO_MAXIOV).
    it('1000 requests in one write: 1000 answers in order', async () => {
      const client = await open();
      client.write(Buffer.concat(range(1000).map((i) => request('GET', `/id/${i}`))));
      const responses = await client.waitResponses(1000);
      expect(responses.every((r, i) => r.status === 200 && r.body.toString() === `id ${i}`)).toBe(true);
      expect(client.ended).toBe(false);
    });

    it('bytes piling up behind a pending request: refused 400 before that request is answered', async () => {
      const client = await open();
      client.write(request('GET', '/gate'));
      await waitFor(() => gates.length === 1, 'the gated handler to start', DEADLINE_MS);
      const handledBefore = handled;
      // 512 KiB of pipelined requests: far past the 144 KiB that may wait.
      const one = request('GET', '/id/flood');
      client.write(Buffer.concat(range(Math.ceil((512 * 1024) / one.length)).map(() => one)));
      const response = await client.response();
      expect(response.status).toBe(400);
      await client.waitEnded();
      expect(gates).toHaveLength(1);
      expect(handled).toBe(handledBefore);
      await expectServed();
    });
  });

  describe('bodies', () => {
    it('a Content-Length body with every byte value is echoed exactly', async () => {
      const body = Buffer.from(range(256));
      const client = await open();
      client.write(request('POST', '/echo', { body }));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/octet-stream');
      expect(response.body.equals(body)).toBe(true);
    });

    it('a Content-Length request split at every byte boundary is echoed each time', async () => {
      const bytes = request('POST', '/echo', { body: 'split body' });
      const client = await open();
      for (let cut = 1; cut < bytes.length; cut++) {
        await client.writeSplit(bytes, [cut]);
        expect((await client.response(cut - 1)).body.toString()).toBe('split body');
      }
    });

    it('a body of exactly maxBodyBytes, in several writes, is echoed', async () => {
      const body = Buffer.alloc(MAX_BODY);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
      const bytes = request('POST', '/echo', { body });
      const client = await open();
      await client.writeSplit(bytes, range(7).map((i) => 40 + i * 9000));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.body.equals(body)).toBe(true);
    });

    it('a chunked body with chunk extensions and trailers is de-chunked', async () => {
      const body = chunked([['hello', ';name=value'], [' wor', ';flag'], ['ld', ';a=b;c="d e"']], ['X-Trailer: t', 'X-Other: u']);
      const client = await open();
      client.write(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body }));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('hello world');
    });

    it('a chunked request split at every byte boundary is echoed each time', async () => {
      const bytes = request('POST', '/echo', {
        headers: { 'Transfer-Encoding': 'chunked' },
        body: chunked([['abc', ';x=1'], 'defgh'], ['X-T: 1']),
      });
      const client = await open();
      for (let cut = 1; cut < bytes.length; cut++) {
        await client.writeSplit(bytes, [cut]);
        expect((await client.response(cut - 1)).body.toString()).toBe('abcdefgh');
      }
    });

    it('chunk sizes in upper-case hex, and an empty chunked body', async () => {
      const client = await open();
      const data = 'z'.repeat(0xab);
      client.write(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body: `AB\r\n${data}\r\n0\r\n\r\n` }));
      client.write(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body: '0\r\n\r\n' }));
      const [upper, empty] = await client.waitResponses(2);
      expect(upper.body.toString()).toBe(data);
      expect(empty.status).toBe(200);
      expect(empty.body.length).toBe(0);
    });
  });

  describe('connection handling', () => {
    it('Connection: close: the answer says close, the connection ends, a request behind it is not answered', async () => {
      const client = await open();
      client.write(Buffer.concat([request('GET', '/hello', { headers: { Connection: 'close' } }), request('GET', '/id/2')]));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.headers.connection).toBe('close');
      await client.waitEnded();
      expect(client.responses).toHaveLength(1);
      expect(client.reader.partial).toBe(false);
      await expectServed();
    });

    it('HTTP/1.0 closes by default', async () => {
      const client = await open();
      client.write(request('GET', '/hello', { version: 'HTTP/1.0' }));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('hello');
      expect(response.headers.connection).toBe('close');
      await client.waitEnded();
    });

    it('HTTP/1.0 with Connection: keep-alive stays open, and the answer says keep-alive', async () => {
      const client = await open();
      client.write(request('GET', '/id/1', { version: 'HTTP/1.0', headers: { Connection: 'keep-alive' } }));
      const first = await client.response(0);
      expect(first.headers.connection).toBe('keep-alive');
      expect(client.ended).toBe(false);
      client.write(request('GET', '/id/2', { version: 'HTTP/1.0', headers: { Connection: 'keep-alive' } }));
      expect((await client.response(1)).body.toString()).toBe('id 2');
      client.write(request('GET', '/id/3', { version: 'HTTP/1.0' }));
      const last = await client.response(2);
      expect(last.body.toString()).toBe('id 3');
      expect(last.headers.connection).toBe('close');
      await client.waitEnded();
    });
  });

  describe('limits', () => {
    it('a head of exactly 16 KiB is served', async () => {
      const head = headOfSize(MAX_HEAD);
      expect(head.length).toBe(MAX_HEAD);
      const client = await open();
      client.write(head);
      expect((await client.response()).status).toBe(200);
    });

    it('a head of 16 KiB and one byte: 431', async () => {
      await expectRefused(headOfSize(MAX_HEAD + 1), 431);
    });

    it('a head over 16 KiB that never ends: 431', async () => {
      await expectRefused(`GET /hello HTTP/1.1\r\nHost: ringport.test\r\nX-Pad: ${'p'.repeat(MAX_HEAD + 10)}`, 431);
    });

    it.each([MAX_BODY + 1, 999_999_999_999])('Content-Length %d, only the head sent: 413', async (length) => {
      await expectRefused(request('POST', '/echo', { headers: { 'Content-Length': String(length) } }), 413);
    });

    it('Content-Length over maxBodyBytes with Expect: 100-continue: 413 and no 100', async () => {
      const client = await open();
      client.write(request('POST', '/echo', { headers: { 'Content-Length': String(MAX_BODY + 1), Expect: '100-continue' } }));
      expect((await client.response()).status).toBe(413);
      await client.waitEnded();
      expect(client.reader.interim).toEqual([]);
    });

    it('a chunk size over maxBodyBytes, only its size line sent: 413', async () => {
      await expectRefused(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body: `${(MAX_BODY + 1).toString(16)}\r\n` }), 413);
    });

    it('a second chunk that takes the body past maxBodyBytes, only its size line sent: 413', async () => {
      const first = 'f'.repeat(40_000);
      const body = `${first.length.toString(16)}\r\n${first}\r\n${(MAX_BODY - first.length + 1).toString(16)}\r\n`;
      await expectRefused(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked' }, body }), 413);
    });
  });

  describe('refusals', () => {
    const chunkedHead = 'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked';
    it.each([
      ['a request line of two parts', 'GET /hello\r\nHost: ringport.test\r\n\r\n'],
      ['a request line of four parts', 'GET /hello HTTP/1.1 x\r\nHost: ringport.test\r\n\r\n'],
      ['a double space in the request line', 'GET  /hello HTTP/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['a malformed version', 'GET /hello HTTX/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['a control byte in the target', 'GET /he\x01llo HTTP/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['a space before the colon', withHost('GET /hello HTTP/1.1\r\nX-Test : 1')],
      ['a header line without a colon', withHost('GET /hello HTTP/1.1\r\nX-Test')],
      ['an empty header name', withHost('GET /hello HTTP/1.1\r\n: 1')],
      ['obs-fold', withHost('GET /hello HTTP/1.1\r\nX-Test: 1\r\n  folded')],
      ['a bare LF inside the head', withHost('GET /hello HTTP/1.1\r\nX-Test: 1\nX-Other: 2')],
      ['a bare CR inside the head', withHost('GET /hello HTTP/1.1\r\nX-Test: 1\rX-Other: 2')],
      ['lines ending in bare LF only', 'GET /hello HTTP/1.1\nHost: ringport.test\n\n'],
      ['NUL in a header value', withHost('GET /hello HTTP/1.1\r\nX-Test: a\0b')],
      ['NUL in the target', 'GET /hel\0lo HTTP/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['a control byte in a header value', withHost('GET /hello HTTP/1.1\r\nX-Test: a\x01b')],
      ['HTTP/1.1 without Host', 'GET /hello HTTP/1.1\r\n\r\n'],
      ['HTTP/1.1 with two Hosts', withHost('GET /hello HTTP/1.1\r\nHost: other.test')],
      ['Content-Length with Transfer-Encoding', withHost('POST /echo HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n')],
      ['two differing Content-Lengths', withHost('POST /echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6', 'hello!')],
      ['two differing Content-Lengths in one field', withHost('POST /echo HTTP/1.1\r\nContent-Length: 5, 6', 'hello!')],
      ['a Content-Length that is not a number', withHost('POST /echo HTTP/1.1\r\nContent-Length: five', 'hello')],
      ['a negative Content-Length', withHost('POST /echo HTTP/1.1\r\nContent-Length: -1')],
      ['Transfer-Encoding in an HTTP/1.0 request', 'POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['a chunk size that is not hex', withHost(chunkedHead, 'zz\r\nhello\r\n0\r\n\r\n')],
      ['a chunk size line ending in bare LF', withHost(chunkedHead, '5\nhello\r\n0\r\n\r\n')],
      ['chunk data longer than its size', withHost(chunkedHead, '3\r\nhello\r\n0\r\n\r\n')],
      ['a bare CR in a chunk extension', withHost(chunkedHead, '5;a=b\rc\r\nhello\r\n0\r\n\r\n')],
      ['a bare CR in a trailer field', withHost(chunkedHead, '5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n')],
    ])('%s: 400', async (_name, bytes) => {
      await expectRefused(bytes, 400);
    });

    it.each([
      ['an unknown method', 501, 'BREW /pot HTTP/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['a lower-case method', 501, 'get /hello HTTP/1.1\r\nHost: ringport.test\r\n\r\n'],
      ['Transfer-Encoding gzip', 501, withHost('POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip')],
      ['Transfer-Encoding gzip, chunked', 501, withHost('POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked', '0\r\n\r\n')],
      ['HTTP/1.2', 505, 'GET /hello HTTP/1.2\r\nHost: ringport.test\r\n\r\n'],
    ])('%s: %d', async (_name, status, bytes) => {
      await expectRefused(bytes, status);
    });

    it('two equal Content-Lengths are accepted', async () => {
      const client = await open();
      client.write(withHost('POST /echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5', 'hello'));
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('hello');
    });
  });

  describe('timeouts', () => {
    it('a head not complete within requestTimeoutMs: 408, then the end', async () => {
      await expectRefused('GET /hello HTTP/1.1\r\nHost: ringport.test\r\n', 408, quickPort);
    });

    it('a head dripped a byte at a time (slowloris): 408, then the end', async () => {
      const client = await open(quickPort);
      const head = `GET /hello HTTP/1.1\r\nHost: ringport.test\r\nX-Slow: ${'s'.repeat(10_000)}`;
      let at = 0;
      const drip = setInterval(() => {
        if (client.ended || at >= head.length) clearInterval(drip);
        else client.write(head[at++]);
      }, 10);
      try {
        const response = await client.response();
        expect(response.status).toBe(408);
        await client.waitEnded();
      } finally {
        clearInterval(drip);
      }
      await expectServed();
    });

    it('a body not complete within requestTimeoutMs: 408, then the end', async () => {
      await expectRefused(request('POST', '/echo', { headers: { 'Content-Length': '10' }, body: 'half' }), 408, quickPort);
    });

    it('an idle keep-alive connection is closed without another byte', async () => {
      const client = await open(quickPort);
      client.write(request('GET', '/hello'));
      const response = await client.response();
      expect(response.status).toBe(200);
      const bytesAfterAnswer = client.received.length;
      await client.waitEnded();
      expect(client.received.length).toBe(bytesAfterAnswer);
      expect(client.responses).toHaveLength(1);
    });

    it('a connection that never sends is closed without a byte', async () => {
      const client = await open(quickPort);
      await client.waitEnded();
      expect(client.received.length).toBe(0);
      await expectServed();
    });
  });

  describe('100-continue', () => {
    it('a Content-Length body: 100 before the body is sent, then the answer', async () => {
      const client = await open();
      client.write(request('POST', '/echo', { headers: { 'Content-Length': '5', Expect: '100-continue' } }));
      const [interim] = await client.waitInterim(1);
      expect(interim.status).toBe(100);
      expect(client.responses).toHaveLength(0);
      client.write('hello');
      const response = await client.response();
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('hello');
    });

    it('a chunked body: 100 before the body is sent, then the answer', async () => {
      const client = await open();
      client.write(request('POST', '/echo', { headers: { 'Transfer-Encoding': 'chunked', Expect: '100-continue' } }));
      expect((await client.waitInterim(1))[0].status).toBe(100);
      expect(client.responses).toHaveLength(0);
      client.write(chunked(['con', 'tinued']));
      expect((await client.response()).body.toString()).toBe('continued');
    });
  });

  describe('routes', () => {
    it('HEAD: the GET answer\'s headers and Content-Length, no body', async () => {
      const client = await open();
      client.headAnswers.add(1);
      client.write(request('GET', '/sized'));
      const get = await client.response(0);
      client.write(request('HEAD', '/sized', { headers: { Connection: 'close' } }));
      const head = await client.response(1);
      await client.waitEnded();
      expect(get.headers['content-length']).toBe(String(SIZED.length));
      expect(get.body.toString()).toBe(SIZED);
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(SIZED.length));
      expect(head.headers['content-type']).toBe(get.headers['content-type']);
      // Nothing after the head's empty line: the body was left out, not just unread.
      expect(client.received.subarray(-4).toString()).toBe('\r\n\r\n');
    });

    it('an unknown path: 404', async () => {
      const client = await open();
      client.write(request('GET', '/nowhere'));
      expect((await client.response()).status).toBe(404);
    });

    it('a known path under another method: 405 with Allow', async () => {
      const client = await open();
      client.write(request('DELETE', '/hello'));
      const response = await client.response();
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD');
    });

    it('a handler that throws: 500 and onError, and the server carries on', async () => {
      const client = await open();
      client.write(request('GET', '/throw'));
      expect((await client.response(0)).status).toBe(500);
      expect(faults).toHaveLength(1);
      expect(faults[0].ctx.source).toBe('http');
      expect(faults[0].ctx.event).toBe('GET /throw');
      client.write(request('GET', '/hello'));
      expect((await client.response(1)).body.toString()).toBe('hello');
      await expectServed();
    });

    it('req.json() on a body that is not JSON: 400 and no fault; on JSON: 200', async () => {
      const client = await open();
      client.write(request('POST', '/json', { body: '{"name":' }));
      expect((await client.response(0)).status).toBe(400);
      client.write(request('POST', '/json', { body: '{"name":"ada"}' }));
      const ok = await client.response(1);
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body.toString())).toEqual({ got: { name: 'ada' } });
      expect(faults).toEqual([]);
    });
  });

  describe('upgrade to WebSocket', () => {
    /** Sends a packet over an upgraded connection and waits for its echo. */
    async function expectEcho(client: RawHttp, payload: string, already = 0): Promise<void> {
      client.write(packetFrame(ECHO, Buffer.from(payload)));
      const bytes = await client.waitUpgraded((b) => readPacketFrames(b).length > already);
      expect(readPacketFrames(bytes)[already]).toEqual({ id: ECHO, payload: Buffer.from(payload) });
    }

    it('an upgrade on the WebSocket path becomes a session, and packets echo', async () => {
      const client = await open();
      client.write(upgradeRequest('/play'));
      const [switching] = await client.waitInterim(1);
      expect(switching.status).toBe(101);
      await waitFor(() => announced.length === 1, 'the session event', DEADLINE_MS);
      expect(server.sessions.size).toBe(1);
      expect(announced[0].remotePort).toBe(client.socket.localPort);
      await expectEcho(client, 'over the upgrade');
    });

    it('an upgrade on another path is an ordinary request: 404, no session, the connection carries on', async () => {
      const client = await open();
      client.write(upgradeRequest('/elsewhere'));
      expect((await client.response(0)).status).toBe(404);
      expect(client.reader.interim).toEqual([]);
      client.write(request('GET', '/hello'));
      expect((await client.response(1)).body.toString()).toBe('hello');
      expect(server.sessions.size).toBe(0);
      expect(announced).toEqual([]);
    });

    it.each(['/hello', '/slow/0?ms=30'])('a request (%s), the upgrade and a frame in one write: answered first, then 101, then the echo', async (target) => {
      const client = await open();
      client.write(Buffer.concat([request('GET', target), upgradeRequest('/play'), packetFrame(ECHO, Buffer.from('early'))]));
      const [answer] = await client.waitResponses(1);
      expect(answer.status).toBe(200);
      expect((await client.waitInterim(1))[0].status).toBe(101);
      const bytes = await client.waitUpgraded((b) => readPacketFrames(b).length > 0);
      expect(readPacketFrames(bytes)[0]).toEqual({ id: ECHO, payload: Buffer.from('early') });
      await waitFor(() => announced.length === 1, 'the session event', DEADLINE_MS);
      await expectEcho(client, 'later', 1);
    });
  });
});
