import { createServer, type Server } from '../../src';
import { backends } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

describe.each(backends)('idle timeout on %s', (backend) => {
  let server: Server;
  afterEach(() => server.close({ drainMs: 100 }));

  it('closes a silent session with idle-timeout and keeps a chatty one open', async () => {
    server = createServer({ backend, limits: { idleTimeoutMs: 300 } });
    server.handle(1, () => undefined);
    const reasons = new Map<number, string>();
    server.on('sessionClose', (s, reason) => reasons.set(s.remotePort, reason));
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const silent = await RawPeer.connect(port);
    const silentPort = silent.socket.localPort!;
    const chatty = await RawPeer.connect(port);
    const started = Date.now();
    const timer = setInterval(() => chatty.sendPacket(1, Buffer.from('hi')), 50);
    await silent.waitClosed(3000);
    const elapsed = Date.now() - started;
    clearInterval(timer);
    await waitFor(() => reasons.has(silentPort), 'sessionClose of the silent session');
    expect(reasons.get(silentPort)).toBe('idle-timeout');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(chatty.isClosed).toBe(false);
    expect(server.sessions.size).toBe(1);
    chatty.destroy();
  });
});
