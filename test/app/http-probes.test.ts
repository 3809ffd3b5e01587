import * as net from 'node:net';
import { createServer, type Server, type ServerOptions } from '../../src';
import { backends } from '../support/backends';
import { RawHttp, request, type RawResponse } from '../support/http-raw';
import { waitFor } from '../support/wait';

describe.each(backends)('health and readiness probes on %s', (backend) => {
  let server: Server | undefined;
  let closing: Promise<void> | undefined;
  const sockets: Array<{ destroy(): void }> = [];

  async function start(options: Omit<ServerOptions, 'backend'> = {}, routes?: (s: Server) => void): Promise<number> {
    server = createServer({ backend, ...options });
    routes?.(server);
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http' });
    return port;
  }

  async function dial(port: number): Promise<RawHttp> {
    const client = await RawHttp.connect(port);
    sockets.push(client);
    return client;
  }

  /** Sends requests on one keep-alive connection and resolves with their answers, in order. */
  async function ask(client: RawHttp, ...requests: Array<[method: string, target: string]>): Promise<RawResponse[]> {
    const from = client.responses.length;
    requests.forEach(([method], i) => method === 'HEAD' && client.headAnswers.add(from + i));
    client.write(Buffer.concat(requests.map(([method, target]) => request(method, target))));
    return (await client.waitResponses(from + requests.length)).slice(from);
  }

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    // A close already begun is the same promise (and its readiness grace, if any, ends now).
    await server?.close({ drainMs: 100 });
    server = undefined;
    closing = undefined;
  });

  it('answers /healthz and /readyz with 200 on every HTTP listener, HEAD too, and 405 for other methods', async () => {
    const port = await start();
    const second = await server!.listen({ host: '127.0.0.1', port: 0, protocol: 'http' });
    for (const p of [port, second.port]) {
      const [health, ready, head, post] = await ask(await dial(p), ['GET', '/healthz'], ['GET', '/readyz'], ['HEAD', '/healthz'], ['POST', '/readyz']);
      expect([health.status, health.body.toString()]).toEqual([200, 'ok\n']);
      expect([ready.status, ready.body.toString()]).toEqual([200, 'ready\n']);
      expect(health.headers['cache-control']).toBe('no-store');
      expect([head.status, head.body.length]).toEqual([200, 0]);
      expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    }
  });

  it('turns /readyz to 503 as soon as close() begins, while /healthz stays 200 and the drain goes on', async () => {
    const port = await start();
    await server!.listen({ host: '127.0.0.1', port: 0 }).then(async ({ port: framedPort }) => {
      // A framed peer that never answers the server's FIN keeps the close draining while the probes are asked.
      const lingering = net.connect({ host: '127.0.0.1', port: framedPort, allowHalfOpen: true });
      lingering.on('error', () => undefined);
      sockets.push(lingering);
      await waitFor(() => server!.sessions.size === 1, 'the framed session');
    });
    const prober = await dial(port);
    const [before] = await ask(prober, ['GET', '/readyz']);
    expect(before.status).toBe(200);

    closing = server!.close({ drainMs: 30_000 });
    const [ready, health] = await ask(prober, ['GET', '/readyz'], ['GET', '/healthz']);
    expect([ready.status, ready.body.toString()]).toEqual([503, 'closing\n']);
    expect(health.status).toBe(200);
    // The drain was still under way when the prober was answered.
    expect(server!.sessions.size).toBe(1);
    for (const socket of sockets) socket.destroy();
    await closing;
  });

  it('with readyGraceMs, answers /readyz 503 and goes on accepting and serving until a second close() ends the grace', async () => {
    const port = await start();
    const framed = await server!.listen({ host: '127.0.0.1', port: 0 });
    const opened: string[] = [];
    server!.on('session', (session) => opened.push(session.protocol.name));

    closing = server!.close({ readyGraceMs: 600_000, drainMs: 5_000 });
    // Connections made after close() began are accepted and served: a balancer still sending players loses none.
    const late = await dial(port);
    const [ready, health] = await ask(late, ['GET', '/readyz'], ['GET', '/healthz']);
    expect([ready.status, ready.body.toString()]).toEqual([503, 'closing\n']);
    expect(health.status).toBe(200);
    const player = net.connect({ host: '127.0.0.1', port: framed.port });
    player.on('error', () => undefined);
    sockets.push(player);
    await waitFor(() => opened.length === 1, 'the player who arrived during the grace, announced');
    expect(opened).toEqual(['framed']);
    expect(server!.sessions.size).toBe(1);
    await expect(server!.listen({ host: '127.0.0.1', port: 0 })).rejects.toThrow('server is closed');

    // The second call is the same close, with its grace cut short.
    expect(server!.close()).toBe(closing);
    await closing;
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve('connected'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      sockets.push(socket);
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('leaves a probe path to the application when it routes that path itself, and runs probes through middleware', async () => {
    const port = await start({}, (s) => {
      s.http.get('/healthz', () => 'custom health\n');
      s.http.post('/readyz', () => 'the application owns this path\n');
      // A static mount at / routes every path by wildcard; the probes still answer theirs.
      s.http.get('/*', () => 'wildcard\n');
      s.http.use(async (req, res, next) => {
        if (req.path === '/metrics' && req.headers['x-token'] !== 'secret') {
          res.status(403).send('forbidden\n');
          return;
        }
        await next();
        res.header('X-Seen', 'yes');
      });
    });
    const [health, ready, metrics, other] = await ask(await dial(port), ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'], ['GET', '/anything']);
    expect(health.body.toString()).toBe('custom health\n');
    // The application routed /readyz (for POST): the probe is gone, and GET falls to the application's wildcard.
    expect(ready.body.toString()).toBe('wildcard\n');
    expect(metrics.status).toBe(403);
    expect(other.body.toString()).toBe('wildcard\n');

    const client = await dial(port);
    client.write(request('GET', '/metrics', { headers: { 'X-Token': 'secret' } }));
    const allowed = await client.response(0);
    expect([allowed.status, allowed.headers['x-seen']]).toEqual([200, 'yes']);
  });

  it('serves no /metrics with metrics: false, and the probes still', async () => {
    const port = await start({ metrics: false });
    expect(server!.metrics).toBeUndefined();
    const [metrics, health] = await ask(await dial(port), ['GET', '/metrics'], ['GET', '/healthz']);
    expect(metrics.status).toBe(404);
    expect(health.status).toBe(200);
  });
});
