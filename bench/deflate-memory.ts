// `node -r ts-node/register/transpile-only bench/deflate-memory.ts`: what permessage-deflate would cost
// Memory per WebSocket connection of a `ws` server with and without permessage-deflate,
// each connection having exchanged one message (zlib contexts are made on first use).
import { fork } from 'node:child_process';
import WebSocket, { WebSocketServer } from 'ws';

const CONNS = Number(process.env.CONNS ?? 1000);

if (process.argv[2] === 'server') {
  const deflate = process.argv[3] === 'on';
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? { threshold: 0 } : false });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
  wss.on('listening', () => process.send!({ port: (wss.address() as { port: number }).port }));
  process.on('message', (m: string) => {
    if (m === 'rss') {
      (global as { gc?: () => void }).gc?.();
      setTimeout(() => process.send!({ rss: process.memoryUsage().rss }), 500);
    }
  });
} else {
  (async () => {
    for (const mode of ['off', 'on']) {
      const child = fork(__filename, ['server', mode], { execArgv: ['--expose-gc', '-r', 'ts-node/register/transpile-only'] });
      const ask = <T>(m?: string) => new Promise<T>((r) => { child.once('message', (x) => r(x as T)); if (m) child.send(m); });
      const { port } = await ask<{ port: number }>();
      const base = (await ask<{ rss: number }>('rss')).rss;
      const sockets: WebSocket[] = [];
      for (let i = 0; i < CONNS; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: mode === 'on' });
        await new Promise((r) => ws.once('open', r));
        ws.send(Buffer.alloc(32, i));
        await new Promise((r) => ws.once('message', r));
        sockets.push(ws);
      }
      const after = (await ask<{ rss: number }>('rss')).rss;
      const negotiated = sockets[0].extensions;
      console.log(`ws perMessageDeflate ${mode} (${negotiated || 'none'}): ${((after - base) / CONNS / 1024).toFixed(1)} KiB per connection over ${CONNS}`);
      for (const ws of sockets) ws.terminate();
      child.kill();
    }
  })();
}
