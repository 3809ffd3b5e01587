import { execFileSync } from 'node:child_process';
import { chromiumEnv } from '../support/chromium-env';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { startBots, type Bots } from '../../examples/game/bots';
import { startLobbyServer, type LobbyServer } from '../../examples/game/server';
import { backends } from '../support/backends';

/**
 * The web client end to end: Debian's Chromium, headless, opens the page the
 * lobby server serves, logs in, chats, joins a room of bots, readies up,
 * steers with the arrow keys and plays a round to its end, over WebSocket
 * on every backend that loads. Everything waits for what the page shows;
 * nothing waits for a fixed time.
 */

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = path.join(__dirname, '..', '..', 'test-output', 'browser-lobby');
// 3 s rounds at 20 ticks per second: a round that runs its time has 60 ticks.
const ROUND_MS = 3000;
const TICKS = 60;
const BOTS = 3;
/** Generous: these wait for conditions, and a loaded machine is slow to start a browser. */
const DEADLINE_MS = 60_000;

// Only where Chromium runs: under Wine, where the Windows suites run, there is no browser.
const onLinux = process.platform === 'linux';
const suite = onLinux ? describe : describe.skip;
const SKIPPED = 'skipped: Linux only (Wine, where the Windows suites run, has no browser)';
const suiteName = onLinux ? 'the lobby in a browser' : `the lobby in a browser (${SKIPPED})`;
// Jest lists no names from a file whose tests are all skipped, so the reason is said here.
if (!onLinux) process.stderr.write(`test/game/browser-lobby.test.ts: ${SKIPPED}\n`);

/** Waits until `expression`, evaluated in the page, is truthy. */
async function until(page: Page, expression: string, what: string): Promise<void> {
  try {
    await page.waitForFunction(expression, { timeout: DEADLINE_MS, polling: 50 });
  } catch (err) {
    const screen = await page.evaluate('document.body.dataset.screen').catch(() => '?');
    throw new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what} (the page shows '${screen}'): ${(err as Error).message}`);
  }
}

function text(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (node) => node.textContent ?? '');
}

function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (nodes) => nodes.map((node) => node.textContent ?? ''));
}

suite(suiteName, () => {
  let browser: Browser;
  let userDataDir: string;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
    const { ensureWebClient } = await import('../../examples/game/build-web');
    await ensureWebClient();
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-chromium-'));
    const { launch } = await import('puppeteer-core');
    browser = await launch({
      executablePath: CHROMIUM,
      env: chromiumEnv(),
      headless: true,
      // The background-networking flags keep Chromium off the network, which this machine does not have.
      args: [
        '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--user-data-dir=${userDataDir}`,
      ],
      defaultViewport: { width: 1100, height: 620 },
    });
  }, DEADLINE_MS);

  afterAll(async () => {
    await browser?.close();
    if (userDataDir !== undefined) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  // esbuild only strips the types, and the repository's own check leaves the DOM code out: it is checked here.
  it('type-checks the web client with the DOM types (tsc -p examples/game/web)', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const web = path.join(__dirname, '..', '..', 'examples', 'game', 'web');
    expect(() => execFileSync(process.execPath, [tsc, '-p', web], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  }, DEADLINE_MS);

  describe.each(backends)('on %s', (backend) => {
    let lobby: LobbyServer | undefined;
    let swarm: Bots | undefined;
    let page: Page | undefined;

    afterEach(async () => {
      await page?.close();
      await swarm?.stop();
      await lobby?.close({ drainMs: 500 });
    });

    it('logs in, sees the rooms and who is in them, chats, joins a room of bots, readies up and plays a round to its end', async () => {
      lobby = await startLobbyServer({ backend, host: '127.0.0.1', port: 0, webPort: 0, roundMs: ROUND_MS, lobbyPushMs: 50 });
      const site = `http://127.0.0.1:${lobby.webAddress!.port}/`;
      // The bots gather in one room and get ready only once it is full: they wait for the browser's player.
      swarm = startBots({
        count: BOTS,
        backend,
        port: lobby.address.port,
        bot: { roomSize: BOTS + 1, thinkMs: [50, 300], readyAfterMs: 10 * DEADLINE_MS, giveUpMs: 1500, chatChance: 1 },
      });

      // The page and its files, as the lobby's HTTP listener serves them.
      const js = await fetch(`${site}app.js`);
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
      expect(js.headers.get('content-encoding')).toBe('gzip'); // fetch asks for it, and unzips
      expect((await js.text()).length).toBeGreaterThan(10_000);
      expect((await fetch(`${site}no-such-file.js`)).status).toBe(404);
      expect((await fetch(`${site}.built`)).status).toBe(404); // the build's stamp is not for the web

      page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(String(err)));
      page.on('console', (message) => message.type() === 'error' && pageErrors.push(message.text()));
      const response = await page.goto(site);
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-type']).toMatch(/^text\/html/);

      // Log in.
      await page.type('#nickname', 'alice');
      await page.keyboard.press('Enter');
      await until(page, `document.body.dataset.screen === 'lobby'`, 'the lobby after logging in');
      expect(await text(page, '#whoami')).toBe('playing as alice');

      // The rooms and who is in them: the bots' room fills up with all three.
      await until(
        page,
        `[...document.querySelectorAll('#rooms .room.waiting')].some((room) => room.querySelectorAll('.chip').length === ${BOTS})`,
        `a waiting room with ${BOTS} bots in it`,
      );
      const roomId = await page.$$eval('#rooms .room.waiting', (rooms, n) => {
        const room = rooms.find((r) => r.querySelectorAll('.chip').length === n)!;
        return Number(room.getAttribute('data-room-id'));
      }, BOTS);
      const roomSelector = `#rooms .room[data-room-id="${roomId}"]`;
      expect((await texts(page, `${roomSelector} .chip`)).sort()).toEqual(['bot0', 'bot1', 'bot2']);
      expect(await text(page, `${roomSelector} .count`)).toBe(`${BOTS}/${BOTS + 1} waiting`);
      expect(await texts(page, '#lobby-players .chip')).toEqual(['alice']);
      expect(await text(page, '#online')).toMatch(/^4 online/);
      await page.screenshot({ path: path.join(OUTPUT_DIR, `${backend}-lobby.png`) });

      // Chat in the lobby: the line comes back from the server, as everyone in the lobby sees it.
      await page.type('#chat-input', 'hello from a browser');
      await page.keyboard.press('Enter');
      await until(
        page,
        `[...document.querySelectorAll('#chat-log li.mine')].some((li) => li.textContent === 'alice hello from a browser')`,
        'the chat line to come back',
      );

      // Join the bots' room: it is full, and the bots get ready.
      await page.click(`${roomSelector} button`);
      await until(page, `document.body.dataset.screen === 'room'`, 'the room');
      await until(page, `document.querySelectorAll('#members li.ready').length === ${BOTS}`, 'the bots to get ready');
      expect(await text(page, '#room-title')).toMatch(new RegExp(`^bot\\d's room \\(${BOTS + 1}/${BOTS + 1}\\)$`));
      expect(await texts(page, '#members li')).toHaveLength(BOTS + 1);
      expect(await text(page, '#room-hint')).toBe('Waiting for 1 to get ready.');

      // Ready: the round starts and the canvas draws it.
      await page.click('#ready');
      await until(page, `document.body.dataset.screen === 'game' && Number(document.querySelector('#arena').dataset.tick) >= 1`, 'the first tick');
      const start = Number(await page.$eval('#arena', (canvas) => canvas.getAttribute('data-x')));
      // Head for the far side, so the arena's edge cannot stop us.
      const key = start < 50 ? 'ArrowRight' : 'ArrowLeft';
      const sign = start < 50 ? 1 : -1;
      await page.keyboard.down(key);
      await until(page, `(Number(document.querySelector('#arena').dataset.x) - ${start}) * ${sign} >= 5`, `the arrow key to move us (from x ${start})`);
      await page.keyboard.up(key);
      await until(page, `Number(document.querySelector('#arena').dataset.tick) >= ${TICKS / 2}`, 'the middle of the round');
      await page.screenshot({ path: path.join(OUTPUT_DIR, `${backend}-round.png`) });

      // The round runs its time; the page shows the results.
      await until(page, `document.body.dataset.screen === 'over'`, 'the round to end');
      expect(await page.$eval('#arena', (canvas) => canvas.getAttribute('data-over'))).toBe(String(TICKS));
      expect(await page.$eval('#arena', (canvas) => canvas.getAttribute('data-tick'))).toBe(String(TICKS));
      expect(await text(page, '#results-title')).toBe(`Round over: time is up after ${TICKS} ticks`);
      const results = await texts(page, '#result-rows tr td:nth-child(2)');
      expect(results.sort()).toEqual(['alice', 'bot0', 'bot1', 'bot2']);
      expect(await texts(page, '#scores li')).toHaveLength(BOTS + 1);
      await page.screenshot({ path: path.join(OUTPUT_DIR, `${backend}.png`) });

      // Back to the lobby, where the room is gone.
      await page.click('#back');
      await until(page, `document.body.dataset.screen === 'lobby'`, 'the lobby after the round');
      await until(page, `document.querySelector('${roomSelector}') === null`, 'the finished room to leave the list');
      expect(await texts(page, '#chat-log li.note')).toContain('back in the lobby');

      expect(lobby.stats().gamesEnded['time-up']).toBeGreaterThanOrEqual(1);
      expect(swarm.report().errors).toBe(0);
      expect(pageErrors).toEqual([]);
    }, 4 * DEADLINE_MS);
  });
});
