import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createServer, type Server } from '../../src';
import type { StaticFiles } from '../../src/app/http/static-files';
import { backends } from '../support/backends';
import { RawHttp, request, type RawResponse } from '../support/http-raw';

/** Served under the directory, and a secret beside it that no request may reach. */
let base: string;
let root: string;
let symlinks = true;
const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
const script = `${'function tick(state) { return state.players.map((p) => p.x + p.y); }\n'.repeat(400)}`;
const rangeBytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

function write(relative: string, content: string | Buffer): void {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-static-'));
  root = path.join(base, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(base, 'secret.txt'), SECRET);
  // A sibling whose name starts with the root's: a prefix check on the path text alone would let it through.
  fs.mkdirSync(path.join(base, 'root-evil'));
  fs.writeFileSync(path.join(base, 'root-evil', 'x.txt'), SECRET);
  write('index.html', '<h1>home</h1>');
  write('app.js', script);
  write('counted.js', script);
  write('changing.css', `body { color: red; }\n${'/* padding */\n'.repeat(200)}`);
  write('style.css', 'body{}');
  write('data.json', '{"a":1}');
  write('module.mjs', 'export {};');
  write('logo.png', Buffer.alloc(3000, 7));
  write('photo.jpg', Buffer.alloc(10, 1));
  write('icon.svg', '<svg xmlns="http://www.w3.org/2000/svg"></svg>');
  write('favicon.ico', Buffer.alloc(10, 2));
  write('game.wasm', Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.alloc(4000)]));
  write('notes.txt', 'notes');
  write('app.js.map', '{}');
  write('font.woff2', Buffer.alloc(10, 3));
  write('noextension', 'bytes');
  write('range.bin', rangeBytes);
  write('empty.txt', '');
  write('big.png', Buffer.alloc(100 * 1024, 9));
  write('.env', SECRET);
  write('sub/index.html', '<h1>sub</h1>');
  write('sub/page.txt', 'page');
  fs.mkdirSync(path.join(root, 'emptydir'));
  try {
    fs.symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'link-out'));
    fs.symlinkSync(base, path.join(root, 'linkdir-out'), 'dir');
    fs.symlinkSync(path.join(base, 'root-evil', 'x.txt'), path.join(root, 'link-prefix'));
    fs.symlinkSync(path.join(root, 'notes.txt'), path.join(root, 'link-in'));
    // Wine makes the links but cannot follow them (lstat says ENOENT): then there is nothing to try.
    symlinks = fs.readFileSync(path.join(root, 'link-in'), 'utf8') === 'notes';
  } catch {
    // Windows may refuse symlinks to an unprivileged user: those cases are then not there to try.
    symlinks = false;
  }
});

afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe.each(backends)('server.http.static on %s', (backend) => {
  let server: Server;
  let port: number;
  let files: StaticFiles;

  beforeAll(async () => {
    server = createServer({ backend });
    files = server.http.static('/s', root);
    server.http.static('/', root);
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http' }));
  });

  afterAll(async () => {
    await server.close({ drainMs: 100 });
  });

  /** One request on a connection of its own. */
  async function fetch(target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
    const client = await RawHttp.connect(port);
    try {
      if (method === 'HEAD') client.headAnswers.add(0);
      client.write(request(method, target, { headers }));
      return await client.response(0);
    } finally {
      client.destroy();
    }
  }

  it('serves each file with the content type of its extension', async () => {
    const expected: Record<string, string> = {
      'index.html': 'text/html; charset=utf-8',
      'app.js': 'text/javascript; charset=utf-8',
      'module.mjs': 'text/javascript; charset=utf-8',
      'style.css': 'text/css; charset=utf-8',
      'data.json': 'application/json',
      'logo.png': 'image/png',
      'photo.jpg': 'image/jpeg',
      'icon.svg': 'image/svg+xml',
      'favicon.ico': 'image/x-icon',
      'game.wasm': 'application/wasm',
      'notes.txt': 'text/plain; charset=utf-8',
      'app.js.map': 'application/json',
      'font.woff2': 'font/woff2',
      noextension: 'application/octet-stream',
    };
    for (const [name, type] of Object.entries(expected)) {
      const response = await fetch(`/s/${name}`);
      expect([name, response.status, response.headers['content-type']]).toEqual([name, 200, type]);
      expect(response.body).toEqual(fs.readFileSync(path.join(root, name)));
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('gives a strong ETag and Last-Modified, and 304 to a client whose copy is current', async () => {
    const first = await fetch('/s/notes.txt');
    const etag = first.headers.etag;
    const lastModified = first.headers['last-modified'];
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(new Date(lastModified).getTime()).toBe(Math.floor(fs.statSync(path.join(root, 'notes.txt')).mtimeMs / 1000) * 1000);
    expect(first.headers['cache-control']).toBe('no-cache');

    const current: Array<Record<string, string>> = [{ 'If-None-Match': etag }, { 'If-None-Match': `"nope", W/${etag}` }, { 'If-None-Match': '*' }, { 'If-Modified-Since': lastModified }];
    for (const headers of current) {
      const again = await fetch('/s/notes.txt', headers);
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
      expect(again.headers.etag).toBe(etag);
    }
    // If-None-Match decides when present: a stale tag gets the file even with a current date.
    const stale = await fetch('/s/notes.txt', { 'If-None-Match': '"stale"', 'If-Modified-Since': lastModified });
    expect(stale.status).toBe(200);
    expect(stale.body.toString()).toBe('notes');
    const old = await fetch('/s/notes.txt', { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' });
    expect(old.status).toBe(200);
  });

  it('answers one Range with 206 and Content-Range, and the rest as RFC 9110 says', async () => {
    const cases: Array<[string, number, string | undefined, Buffer]> = [
      ['bytes=0-99', 206, 'bytes 0-99/10000', rangeBytes.subarray(0, 100)],
      ['bytes=9990-', 206, 'bytes 9990-9999/10000', rangeBytes.subarray(9990)],
      ['bytes=-10', 206, 'bytes 9990-9999/10000', rangeBytes.subarray(9990)],
      ['bytes=-20000', 206, 'bytes 0-9999/10000', rangeBytes],
      ['bytes=9000-20000', 206, 'bytes 9000-9999/10000', rangeBytes.subarray(9000)],
      ['bytes=10000-', 416, 'bytes */10000', Buffer.from('range not satisfiable\n')],
      ['bytes=-0', 416, 'bytes */10000', Buffer.from('range not satisfiable\n')],
      ['bytes=0-1,5-6', 200, undefined, rangeBytes],
      ['bytes=5-2', 200, undefined, rangeBytes],
      ['items=0-1', 200, undefined, rangeBytes],
    ];
    for (const [range, status, contentRange, body] of cases) {
      const response = await fetch('/s/range.bin', { Range: range });
      expect([range, response.status, response.headers['content-range']]).toEqual([range, status, contentRange]);
      expect(response.body).toEqual(body);
      if (status !== 416) expect(Number(response.headers['content-length'])).toBe(body.length);
    }
    expect((await fetch('/s/empty.txt', { Range: 'bytes=0-' })).status).toBe(416);

    const { etag } = (await fetch('/s/range.bin')).headers;
    const current = await fetch('/s/range.bin', { Range: 'bytes=1-2', 'If-Range': etag });
    expect([current.status, current.body]).toEqual([206, rangeBytes.subarray(1, 3)]);
    const changed = await fetch('/s/range.bin', { Range: 'bytes=1-2', 'If-Range': '"an-older-version"' });
    expect([changed.status, changed.body.length]).toEqual([200, rangeBytes.length]);
    const head = await fetch('/s/range.bin', { Range: 'bytes=0-99' }, 'HEAD');
    expect([head.status, head.headers['content-range'], head.headers['content-length'], head.body.length]).toEqual([206, 'bytes 0-99/10000', '100', 0]);
  });

  it('gzips compressible types for a client that accepts gzip, with Vary, and its own ETag', async () => {
    const plain = await fetch('/s/app.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');

    const zipped = await fetch('/s/app.js', { 'Accept-Encoding': 'br;q=1.0, gzip;q=0.8' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('Accept-Encoding');
    expect(zipped.body.length).toBeLessThan(script.length / 10);
    expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
    expect(gunzipSync(zipped.body).toString()).toBe(script);
    expect(zipped.headers.etag).not.toBe(plain.headers.etag);
    expect((await fetch('/s/app.js', { 'Accept-Encoding': 'gzip', 'If-None-Match': zipped.headers.etag })).status).toBe(304);

    for (const encoding of ['gzip;q=0', 'br', 'identity']) {
      const response = await fetch('/s/app.js', { 'Accept-Encoding': encoding });
      expect([encoding, response.headers['content-encoding'], response.body.toString() === script]).toEqual([encoding, undefined, true]);
    }
    expect((await fetch('/s/app.js', { 'Accept-Encoding': '*' })).headers['content-encoding']).toBe('gzip');
    expect((await fetch('/s/game.wasm', { 'Accept-Encoding': 'gzip' })).headers['content-encoding']).toBe('gzip');

    // Compressed formats go as they are, and do not vary.
    const png = await fetch('/s/logo.png', { 'Accept-Encoding': 'gzip' });
    expect([png.headers['content-encoding'], png.headers.vary, png.body.length]).toEqual([undefined, undefined, 3000]);
    // A range is of the file's own bytes, whatever the client accepts.
    const part = await fetch('/s/app.js', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-7' });
    expect([part.status, part.headers['content-encoding'], part.body.toString()]).toEqual([206, undefined, script.slice(0, 8)]);
    const head = await fetch('/s/app.js', { 'Accept-Encoding': 'gzip' }, 'HEAD');
    expect([head.headers['content-encoding'], head.headers['content-length'], head.body.length]).toEqual(['gzip', String(zipped.body.length), 0]);
  });

  it('compresses a file once per version, however many requests ask, together or one after another', async () => {
    const before = files.compressions;
    const together = await Promise.all(Array.from({ length: 8 }, () => fetch('/s/counted.js', { 'Accept-Encoding': 'gzip' })));
    for (let i = 0; i < 4; i++) together.push(await fetch('/s/counted.js', { 'Accept-Encoding': 'gzip' }));
    expect(together.every((r) => r.headers['content-encoding'] === 'gzip' && gunzipSync(r.body).toString() === script)).toBe(true);
    expect(files.compressions - before).toBe(1);

    // A new version of the file (new content, a later mtime) is compressed again, once.
    const file = path.join(root, 'changing.css');
    const v1 = await fetch('/s/changing.css', { 'Accept-Encoding': 'gzip' });
    const v2Text = `body { color: blue; }\n${'/* more padding */\n'.repeat(300)}`;
    fs.writeFileSync(file, v2Text);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(file, later, later);
    const afterV1 = files.compressions;
    const v2 = await fetch('/s/changing.css', { 'Accept-Encoding': 'gzip' });
    await fetch('/s/changing.css', { 'Accept-Encoding': 'gzip' });
    expect(gunzipSync(v2.body).toString()).toBe(v2Text);
    expect(v2.headers.etag).not.toBe(v1.headers.etag);
    expect(files.compressions - afterV1).toBe(1);
    // The plain form is the new version too (small files are kept, by version).
    expect((await fetch('/s/changing.css')).body.toString()).toBe(v2Text);
  });

  it('never serves anything outside the directory, nor dotfiles', async () => {
    const attempts = [
      '/s/../secret.txt',
      '/s/sub/../../secret.txt',
      '/s/%2e%2e/secret.txt',
      '/s/%2E%2E/secret.txt',
      '/s/.%2e/secret.txt',
      '/s/%2e%2e%2fsecret.txt',
      '/s/..%2fsecret.txt',
      '/s/..%2Fsecret.txt',
      '/s/..%5csecret.txt',
      '/s/..\\secret.txt',
      '/s/sub\\..\\..\\secret.txt',
      '/s/sub/..%2f..%2fsecret.txt',
      '/s/%252e%252e/secret.txt',
      '/s/notes.txt%00.html',
      '/s/%00',
      '/s//secret.txt',
      `/s/${encodeURIComponent(path.join(base, 'secret.txt'))}`,
      '/s/C:/secret.txt',
      '/s/.env',
      '/s/%2eenv',
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/.env',
      '/s/link-out',
      '/s/linkdir-out/secret.txt',
      '/s/link-prefix',
      '/s/linkdir-out/root-evil/x.txt',
    ];
    for (const target of attempts) {
      const response = await fetch(target);
      // A refusal is 404 (or 400 where the request itself is malformed); never the secret.
      expect([target, response.status === 404 || response.status === 400]).toEqual([target, true]);
      expect(response.body.toString()).not.toContain(SECRET);
    }
    if (symlinks) expect((await fetch('/s/link-in')).body.toString()).toBe('notes');
  });

  it('answers a directory with its index.html, redirects it without the slash, and 404s one without an index', async () => {
    expect((await fetch('/s/sub/')).body.toString()).toBe('<h1>sub</h1>');
    expect((await fetch('/s/')).body.toString()).toBe('<h1>home</h1>');
    expect((await fetch('/')).body.toString()).toBe('<h1>home</h1>');
    const moved = await fetch('/s/sub?room=7');
    expect([moved.status, moved.headers.location]).toEqual([301, '/s/sub/?room=7']);
    expect((await fetch('/s')).headers.location).toBe('/s/');
    expect((await fetch('/s/emptydir/')).status).toBe(404);
    expect((await fetch('/s/notes.txt/')).status).toBe(404);
    expect((await fetch('/s/missing.txt')).status).toBe(404);
    // `//sub` must not become a redirect to `//sub/`, another site to a browser.
    const protocolRelative = await fetch('//sub');
    expect([protocolRelative.status, protocolRelative.headers.location]).toEqual([404, undefined]);
  });

  it('answers HEAD with the fields of GET and no body', async () => {
    const get = await fetch('/s/app.js');
    const head = await fetch('/s/app.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    for (const field of ['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges', 'vary']) {
      expect([field, head.headers[field]]).toEqual([field, get.headers[field]]);
    }
    expect(Number(head.headers['content-length'])).toBe(script.length);
  });
});

describe.each(backends)('a static file over the send queue limit on %s', (backend) => {
  it('is streamed whole, with a range of it pipelined behind, and no fault', async () => {
    const faults: unknown[] = [];
    const server = createServer({
      backend,
      limits: { maxQueueBytes: 64 * 1024, highWaterMarkBytes: 32 * 1024, lowWaterMarkBytes: 8 * 1024 },
      onError: (error) => faults.push(error),
    });
    server.http.static('/', root);
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http' });
    try {
      const client = await RawHttp.connect(port);
      client.write(Buffer.concat([request('GET', '/big.png'), request('GET', '/big.png', { headers: { Range: 'bytes=0-999' } })]));
      const [whole, part] = await client.waitResponses(2);
      client.destroy();
      expect([whole.status, whole.headers['content-length']]).toEqual([200, String(100 * 1024)]);
      expect(whole.body.equals(fs.readFileSync(path.join(root, 'big.png')))).toBe(true);
      expect([part.status, part.body.length]).toEqual([206, 1000]);
      expect(faults).toEqual([]);
    } finally {
      await server.close({ drainMs: 100 });
    }
  });
});
