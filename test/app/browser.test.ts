import * as fs from 'node:fs';
import { chromiumEnv } from '../support/chromium-env';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { createServer, ProtobufCodec, type Server, type Session } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

/**
 * A real browser as a WebSocket client: Debian's chromium, driven headless by
 * puppeteer-core (which never downloads a browser of its own), loads a page
 * that uses protobufjs's browser build and the game .proto, opens a
 * WebSocket to a ringport server with a ProtobufCodec, and trades protobuf
 * packets with it (binary message = u16 LE packet id + protobuf payload).
 */
const CHROMIUM = '/usr/bin/chromium';
const DEADLINE_MS = 60_000;
const PROTO = path.join(__dirname, '../fixtures/game.proto');
const PROTOBUF_JS = path.join(__dirname, '../../node_modules/protobufjs/dist/protobuf.min.js');
const PACKETS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };

// Wine has no chromium (test:win runs test/app under node.exe), and no other platform is set up for it.
const onLinux = process.platform === 'linux';
const suite = onLinux ? describe : describe.skip;
if (!onLinux) {
  // eslint-disable-next-line no-console
  console.log(`browser.test.ts skipped: it drives ${CHROMIUM}, which exists on Linux only (not under Wine)`);
}

/** The page: every packet it receives is decoded and kept in `window.received`; `window.closedWith` once the socket closes. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>ringport in a browser</title>
<script src="/protobuf.min.js"></script></head>
<body><script>
window.received = [];
window.closedWith = null;
window.errors = [];
const NAMES = { 1: 'game.Join', 2: 'game.Joined', 3: 'game.Chat', 4: 'game.Tick' };
const IDS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };
window.start = async (url) => {
  const root = await protobuf.load('/game.proto');
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  window.send = (name, message) => {
    const type = root.lookupType(name);
    const payload = type.encode(type.fromObject(message)).finish();
    const body = new Uint8Array(2 + payload.length);
    new DataView(body.buffer).setUint16(0, IDS[name], true);
    body.set(payload, 2);
    socket.send(body);
  };
  socket.onmessage = (event) => {
    if (typeof event.data === 'string') { window.errors.push('text message'); return; }
    const bytes = new Uint8Array(event.data);
    const id = new DataView(event.data).getUint16(0, true);
    const type = root.lookupType(NAMES[id]);
    const message = type.toObject(type.decode(bytes.subarray(2)), { defaults: true, arrays: true });
    window.received.push({ name: NAMES[id], message });
  };
  socket.onclose = (event) => { window.closedWith = { code: event.code, reason: event.reason, wasClean: event.wasClean }; };
  socket.onerror = () => window.errors.push('socket error');
  await new Promise((resolve, reject) => { socket.onopen = resolve; setTimeout(() => reject(new Error('no open')), 30000); });
  return socket.protocol;
};
</script></body></html>`;

/** What the page's script puts on its global object (the functions handed to evaluate run there). */
interface PageGlobals {
  start(url: string): Promise<string>;
  send(name: string, message: object): void;
  received: Array<{ name: string; message: Record<string, unknown> }>;
  closedWith: { code: number; reason: string; wasClean: boolean } | null;
  errors: string[];
}

/** Serves the page, protobufjs's browser build and the .proto from 127.0.0.1. */
async function servePage(): Promise<{ http: http.Server; origin: string }> {
  const files: Record<string, [string, string | Buffer]> = {
    '/': ['text/html; charset=utf-8', PAGE],
    '/protobuf.min.js': ['text/javascript', fs.readFileSync(PROTOBUF_JS)],
    '/game.proto': ['text/plain', fs.readFileSync(PROTO)],
  };
  const server = http.createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file[0] }).end(file[1]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { http: server, origin: `http://127.0.0.1:${port}` };
}

suite('a real browser (chromium) as a WebSocket client', () => {
  let browser: Browser;
  let page: { http: http.Server; origin: string };
  let profile: string;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    const puppeteer = await import('puppeteer-core');
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      env: chromiumEnv(),
      headless: true,
      userDataDir: profile,
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await servePage();
  }, DEADLINE_MS);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.http.close(resolve));
    if (profile !== undefined) fs.rmSync(profile, { recursive: true, force: true });
  });

  describe.each(backends)('against a server on %s', (backend) => {
    const codec = ProtobufCodec.loadSync(PROTO, PACKETS);
    let server: Server;
    let tab: Page;
    let sessions: Session[];
    let chats: Array<{ from: string; text: string; seq: number }>;

    beforeEach(async () => {
      server = createServer({ backend, codec });
      sessions = [];
      chats = [];
      server.on('session', (s) => {
        sessions.push(s);
        s.send('game.Tick', { seq: 1, players: [{ id: 7, x: 1.5, y: -2.25 }] });
      });
      server.handle<{ room: string; name: string }>('game.Join', (s, join) => {
        s.data.name = join.name;
        server.room(join.room).join(s);
        return { room: join.room, members: server.room(join.room).size };
      }, { reply: 'game.Joined' });
      server.handle<{ from: string; text: string; seq: number }>('game.Chat', (s, chat) => {
        chats.push({ from: chat.from, text: chat.text, seq: chat.seq });
        if (chat.text === 'kick me') {
          s.close('rate-limited');
          return undefined;
        }
        return { from: s.data.name as string, text: chat.text.toUpperCase(), seq: chat.seq + 1 };
      });
      tab = await browser.newPage();
      await tab.goto(`${page.origin}/`);
    }, DEADLINE_MS);

    afterEach(async () => {
      await tab?.close();
      await server.close({ drainMs: 500 });
    });

    async function open(): Promise<void> {
      const { port } = await server.listen({
        host: '127.0.0.1',
        port: 0,
        protocol: 'websocket',
        path: '/play',
        // The browser sends the page's origin; only it may connect.
        origins: [page.origin],
        subprotocols: ['game.v1'],
      });
      const chosen = await tab.evaluate(
        (url) => (globalThis as unknown as PageGlobals).start(url),
        `ws://127.0.0.1:${port}/play`,
      );
      expect(chosen).toBe('');
      await waitFor(() => sessions.length === 1, 'the browser session', DEADLINE_MS);
    }

    function received(): Promise<Array<{ name: string; message: Record<string, unknown> }>> {
      return tab.evaluate(() => (globalThis as unknown as PageGlobals).received);
    }

    async function waitReceived(count: number) {
      await tab.waitForFunction((n) => (globalThis as unknown as PageGlobals).received.length >= n, { timeout: DEADLINE_MS }, count);
      return received();
    }

    it('trades protobuf packets both ways, and the server sees what the page sent', async () => {
      await open();
      expect(sessions[0].protocol.name).toBe('websocket');
      await tab.evaluate(() => {
        const w = globalThis as unknown as PageGlobals;
        w.send('game.Join', { room: 'arena', name: 'ada' });
        w.send('game.Chat', { from: 'ada', text: 'héllo 🎮', seq: 41 });
      });
      const got = await waitReceived(3);
      expect(got).toEqual([
        { name: 'game.Tick', message: { seq: 1, players: [{ id: 7, x: 1.5, y: -2.25 }] } },
        { name: 'game.Joined', message: { room: 'arena', members: 1 } },
        { name: 'game.Chat', message: { from: 'ada', text: 'HÉLLO 🎮', seq: 42 } },
      ]);
      expect(chats).toEqual([{ from: 'ada', text: 'héllo 🎮', seq: 41 }]);
      expect(server.room('arena').size).toBe(1);

      // A room broadcast reaches the browser too.
      expect(server.room('arena').broadcast('game.Tick', { seq: 2, players: [] })).toBe(1);
      expect((await waitReceived(4))[3]).toEqual({ name: 'game.Tick', message: { seq: 2, players: [] } });
      expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).errors)).toEqual([]);
    });

    it("shows the browser the server's close code and reason", async () => {
      await open();
      const closed = new Promise<string>((resolve) => server.on('sessionClose', (_s, reason) => resolve(reason)));
      await tab.evaluate(() => (globalThis as unknown as PageGlobals).send('game.Chat', { from: 'ada', text: 'kick me', seq: 1 }));
      expect(await closed).toBe('rate-limited');
      await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).closedWith !== null, { timeout: DEADLINE_MS });
      expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).closedWith)).toEqual({ code: 4000, reason: 'rate-limited', wasClean: true });
    });
  });
});
