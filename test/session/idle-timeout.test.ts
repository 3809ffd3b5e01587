import { createServer, type Server } from '../../src';
import { resolveLimits, SERVER_IDLE_TIMEOUT_MS } from '../../src/app/options';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const DEADLINE_MS = 30_000;

describe('idle timeout defaults', () => {
  it('is on for servers (60 s) and off for clients unless given', () => {
    expect(SERVER_IDLE_TIMEOUT_MS).toBe(60_000);
    expect(resolveLimits(undefined, SERVER_IDLE_TIMEOUT_MS).idleTimeoutMs).toBe(60_000);
    expect(resolveLimits({ idleTimeoutMs: 0 }, SERVER_IDLE_TIMEOUT_MS).idleTimeoutMs).toBe(0);
    expect(resolveLimits(undefined, 0).idleTimeoutMs).toBe(0);
  });
});

describe.each(matrix)('idle timeout on %s over %s', (backend, protocol) => {
  let server: Server;
  afterEach(() => server.close({ drainMs: 100 }));

  async function start(idleTimeoutMs: number): Promise<{ port: number; reasons: Map<number, string> }> {
    server = createServer({ backend, limits: { idleTimeoutMs } });
    server.handle(1, () => undefined);
    const reasons = new Map<number, string>();
    server.on('sessionClose', (s, reason) => reasons.set(s.remotePort, reason));
    // Pings off: a WebSocket listener's keep-alive would stand in for the idle timeout (its own cases are in the conformance suite).
    const { port } = await listen(server, protocol, { webSocket: { pingIntervalMs: 0 } });
    return { port, reasons };
  }

  it('closes a silent session with idle-timeout and keeps a chatty one open', async () => {
    const { port, reasons } = await start(1000);
    const silent = await RawPeer.connect(port, { protocol });
    const silentPort = silent.socket.localPort!;
    const chatty = await RawPeer.connect(port, { protocol });
    const started = Date.now();
    const timer = setInterval(() => chatty.sendPacket(1, Buffer.from('hi')), 100);
    try {
      await silent.waitClosed(DEADLINE_MS);
      // Never before its time; how much later depends on the machine, so it is not asserted.
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      await waitFor(() => reasons.has(silentPort), 'sessionClose of the silent session', DEADLINE_MS);
      expect(reasons.get(silentPort)).toBe('idle-timeout');
      expect(chatty.isClosed).toBe(false);
      expect(server.sessions.size).toBe(1);
    } finally {
      clearInterval(timer);
      chatty.destroy();
    }
  });

  it('counts only whole packets: a peer that drips a frame a byte at a time is idle', async () => {
    const { port, reasons } = await start(1000);
    const dripper = await RawPeer.connect(port, { protocol });
    const dripperPort = dripper.socket.localPort!;
    const chatty = await RawPeer.connect(port, { protocol });
    // A header that declares a 64-byte body, then one byte of it at a time: the frame never completes.
    dripper.write(dripper.messageHeader(64));
    const timer = setInterval(() => {
      if (!dripper.isClosed) dripper.write(Buffer.from([7]));
      chatty.sendPacket(1, Buffer.from('hi'));
    }, 50);
    try {
      await dripper.waitClosed(DEADLINE_MS);
      await waitFor(() => reasons.has(dripperPort), 'sessionClose of the dripping session', DEADLINE_MS);
      expect(reasons.get(dripperPort)).toBe('idle-timeout');
      expect(chatty.isClosed).toBe(false);
    } finally {
      clearInterval(timer);
      chatty.destroy();
    }
  });
});
