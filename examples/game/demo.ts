import { fork } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
// An application would import this from 'ringport'.
import type { BackendChoice } from '../../src';
import { ensureWebClient } from './build-web';
import type { BotsReport } from './bots';
import { startLobbyServer, type LobbyServer } from './server';
import { Rates } from './stats';
import { LiveView } from './view';

/**
 * `npm start`: a lobby server here and a swarm of bots in a child process
 * (so the server's numbers are its own), a live view, a summary at the end,
 * and the web client at http://127.0.0.1:8080/ to play beside the bots.
 * `--bots 50 --duration 30 --round-ms 10000 --port 0 --web-port 8080 --backend auto`;
 * a duration of 0 runs until Ctrl-C.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bots: { type: 'string', default: '50' },
      duration: { type: 'string', default: '30' },
      'round-ms': { type: 'string', default: '10000' },
      port: { type: 'string', default: '0' },
      'web-port': { type: 'string', default: '8080' },
      backend: { type: 'string', default: 'auto' },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  // Built here if missing or older than its sources: esbuild takes a fraction of a second.
  await ensureWebClient();
  const start = (webPort: number): Promise<LobbyServer> =>
    startLobbyServer({
      host: '127.0.0.1',
      port: Number(values.port),
      webPort,
      backend: values.backend as BackendChoice,
      roundMs: Number(values['round-ms']),
    });
  // Port 8080 may be taken on this machine; then any free port will do.
  const lobby = await start(Number(values['web-port'])).catch(() => start(0));
  const { host, port } = lobby.address;

  // The child runs TypeScript the way this process does.
  const execArgv = __filename.endsWith('.ts') ? ['-r', require.resolve('ts-node/register/transpile-only')] : [];
  const child = fork(path.join(__dirname, 'bots'), ['--count', values.bots, '--host', host, '--port', String(port)], {
    execArgv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let childErrors = '';
  child.stderr!.on('data', (chunk: Buffer) => (childErrors += chunk.toString()));
  let bots: BotsReport | undefined;
  child.on('message', (m: { type?: string; report?: BotsReport }) => {
    if (m.type === 'report') bots = m.report;
  });
  const childExited = once(child, 'exit');

  const view = new LiveView(process.stdout, [
    `ringport lobby demo: ${values.bots} bots (in a child process) playing on ${host}:${port}`,
    `backend ${lobby.backend.kind}: ${lobby.backend.reason}`,
    `open http://${host}:${lobby.webAddress!.port}/ to play in a browser`,
  ]);
  const rates = new Rates();
  const startedMs = performance.now();
  const show = (): void => {
    const stats = lobby.stats();
    view.show({ elapsedMs: performance.now() - startedMs, durationMs: durationMs || undefined, stats, rates: rates.sample(stats), bots });
  };
  const ticker = setInterval(show, 1000);

  let endTimer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    if (durationMs > 0) endTimer = setTimeout(resolve, durationMs);
    // A second Ctrl-C, with these handlers gone, ends the process the hard way.
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    void childExited.then(() => resolve());
  });
  clearTimeout(endTimer);
  const elapsedMs = performance.now() - startedMs;
  clearInterval(ticker);

  // The bots leave; then the server should hold nothing before it is closed.
  if (child.connected) child.send({ type: 'stop' });
  const killTimer = setTimeout(() => child.kill(), 5000);
  await childExited;
  clearTimeout(killTimer);
  const drained = performance.now() + 2000;
  while (lobby.server.sessions.size > 0 && performance.now() < drained) await new Promise((r) => setTimeout(r, 20));
  const leftOpen = { sessions: lobby.server.sessions.size, rooms: lobby.stats().rooms };
  view.finish();
  await lobby.close({ drainMs: 1000 });
  view.summary(elapsedMs, lobby.stats(), bots, leftOpen);
  if (childErrors !== '') process.stderr.write(`bots said:\n${childErrors}`);
  // Everything is closed, so the process ends by itself; this only guards against a stray handle.
  setTimeout(() => process.exit(0), 2000).unref();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
