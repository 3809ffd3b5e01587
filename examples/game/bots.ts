import { parseArgs } from 'node:util';
// An application would import these from 'ringport'.
import type { BackendChoice } from '../../src';
import { Bot, ROOM_RACES, type BotOptions } from './bot';
import { loadCodec } from './protocol';

export interface BotsOptions {
  count: number;
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** `ws://host:port/play`: the bots play over WebSocket (host and port are then unused). */
  url?: string;
  backend?: BackendChoice;
  /** Retire after this long (finishing the current round); 0 runs until `stop`. Default 0. */
  durationMs?: number;
  /** Nicknames are `${name}${index}`. Default `bot`. */
  name?: string;
  /** Seeds each bot's random choices, so a run can be repeated. Default 1. */
  seed?: number;
  /** Overrides of each bot's timing and habits. */
  bot?: Partial<Omit<BotOptions, 'host' | 'port' | 'backend' | 'codec' | 'nickname' | 'random'>>;
}

/** How the swarm is doing, for a live view or a summary. */
export interface BotsReport {
  readonly bots: number;
  readonly online: number;
  readonly reconnecting: number;
  readonly logins: number;
  readonly reconnects: number;
  readonly gamesPlayed: number;
  readonly chatLines: number;
  /** Refusals from racing others to a room (full, started, gone): part of the game. */
  readonly roomRaces: number;
  /** Any other refusal: a bug in the bot or the server. */
  readonly errors: number;
  readonly violations: number;
}

export interface Bots {
  readonly bots: readonly Bot[];
  /** Resolves once every bot has left. */
  readonly done: Promise<void>;
  report(): BotsReport;
  /** Every bot leaves once its current round is over. */
  retire(): void;
  /** Every bot leaves now; resolves once they have. */
  stop(): Promise<void>;
}

/** A small seeded generator (mulberry32): good enough for bots, and repeatable. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts `count` bots against a lobby server; each waits for the server if it is not up yet. */
export function startBots(options: BotsOptions): Bots {
  const codec = loadCodec();
  const seed = options.seed ?? 1;
  const bots = Array.from({ length: options.count }, (_, i) => new Bot({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    url: options.url,
    backend: options.backend,
    codec,
    nickname: `${options.name ?? 'bot'}${i}`,
    roomSize: 4,
    thinkMs: [300, 1500],
    readyAfterMs: 2000,
    giveUpMs: 5000,
    chatChance: 0.5,
    inputEveryMs: 50,
    keepChat: false,
    ...options.bot,
    random: seeded(seed * 1000 + i),
  }));
  for (const bot of bots) {
    bot.start().catch((err: unknown) => console.error(`${bot.record.nickname}: ${(err as Error).message}`));
  }
  const done = Promise.all(bots.map((bot) => bot.closed)).then(() => undefined);
  const retire = (): void => bots.forEach((bot) => bot.retire());
  let timer: NodeJS.Timeout | undefined;
  if ((options.durationMs ?? 0) > 0) timer = setTimeout(retire, options.durationMs);
  void done.then(() => clearTimeout(timer));
  return {
    bots,
    done,
    retire,
    async stop() {
      clearTimeout(timer);
      bots.forEach((bot) => bot.stop());
      await done;
    },
    report() {
      const records = bots.map((bot) => bot.record);
      const sum = (f: (r: (typeof records)[number]) => number) => records.reduce((n, r) => n + f(r), 0);
      return {
        bots: bots.length,
        online: bots.filter((bot) => bot.online).length,
        reconnecting: bots.filter((bot) => bot.reconnecting).length,
        logins: sum((r) => r.logins),
        reconnects: sum((r) => r.reconnects),
        gamesPlayed: sum((r) => r.games.filter((g) => g.over !== undefined && g.over.reason !== 'offline').length),
        chatLines: sum((r) => r.chatSent),
        roomRaces: sum((r) => r.errors.filter((code) => ROOM_RACES.has(code)).length),
        errors: sum((r) => r.errors.filter((code) => !ROOM_RACES.has(code)).length),
        violations: sum((r) => r.violations.length),
      };
    },
  };
}

function reportLine(r: BotsReport): string {
  return `bots: ${r.online}/${r.bots} online, ${r.reconnecting} reconnecting, ${r.logins} logins, ` +
    `${r.gamesPlayed} games played, ${r.chatLines} chat lines, ${r.roomRaces} room races, ${r.errors} errors, ` +
    `${r.violations} order violations`;
}

/**
 * `bots.ts --count 50 --port 7000 [--host h] [--url ws://h:8080/play] [--duration 30] [--name bot]`.
 * Under the demo (an IPC channel to the parent) it reports there instead of
 * printing, and stops when told to.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '50' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7000' },
      url: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      duration: { type: 'string', default: '0' },
      name: { type: 'string', default: 'bot' },
      seed: { type: 'string', default: '1' },
    },
  });
  const bots = startBots({
    count: Number(values.count),
    host: values.host,
    port: Number(values.port),
    url: values.url,
    backend: values.backend as BackendChoice,
    durationMs: Number(values.duration) * 1000,
    name: values.name,
    seed: Number(values.seed),
  });
  const parent = process.send?.bind(process);
  const tell = (): void => {
    if (parent) parent({ type: 'report', report: bots.report() });
    else console.log(reportLine(bots.report()));
  };
  const timer = setInterval(tell, 1000);
  const stop = (): void => {
    void bots.stop();
    // A bot still waiting for a server that never came has no connection to close.
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.on('message', (m: { type?: string }) => m.type === 'stop' && stop());

  await bots.done;
  clearInterval(timer);
  tell();
  const { violations } = bots.report();
  for (const bot of bots.bots) for (const v of bot.record.violations) console.error(`${bot.record.nickname}: ${v}`);
  process.exitCode = violations > 0 ? 1 : 0;
  process.disconnect?.();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
