import { connect, createClient, createServer, ErrorCodes, type Client, type Server } from '../../src';
import type { ProtocolName } from '../../src/protocol';
import { backends, listen, matrix, target } from '../support/backends';
import { nextEvent, waitFor } from '../support/wait';

/** A raw-bytes server that records what packet 1 carried, per session. */
async function recordingServer(backend: (typeof backends)[number], protocol: ProtocolName, port = 0) {
  const server = createServer({ backend });
  const received: string[] = [];
  server.handle(1, (_s, bytes: Buffer) => {
    received.push(bytes.toString());
  });
  const address = await listen(server, protocol, { port });
  return { server, received, port: address.port };
}

/** Resolves once the client starts dialling again; rejects at once if it closes for good instead. */
function lostConnection(client: Client): Promise<void> {
  const lost = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting for 'reconnecting'")), 30_000);
    client.session.once('reconnecting', () => {
      clearTimeout(timer);
      resolve();
    });
    client.session.once('close', (reason: string) => {
      clearTimeout(timer);
      reject(new Error(`the client closed with ${reason} instead of reconnecting`));
    });
  });
  // Awaited later, after the server has closed: handled here so that an early rejection is not reported as unhandled.
  lost.catch(() => undefined);
  return lost;
}

describe.each(matrix)('outbound sessions on %s over %s', (backend, protocol) => {
  // A WebSocket server that shuts down sends a close frame (1001) before its FIN, and today that
  // closes a WebSocket client for good instead of reconnecting (OutboundSession.fail; reported).
  // These cases run, and are expected to fail, over WebSocket until that is fixed.
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close({ drainMs: 100 })));
  });

  it('rejects connect() with RP_ERR_CONNECT_FAILED when nothing listens', async () => {
    const { server, port } = await recordingServer(backend, protocol);
    await server.close();
    await expect(connect({ ...target(protocol, port), backend })).rejects.toMatchObject({ code: ErrorCodes.CONNECT_FAILED });
  });

  it('reconnects with backoff after the server restarts, keeping its id and sending what was queued', async () => {
    const first = await recordingServer(backend, protocol);
    servers.push(first.server);
    const client = await connect({ ...target(protocol, first.port), backend, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    const id = client.session.id;
    const delays: number[] = [];
    client.on('reconnecting', (_attempt, delayMs) => delays.push(delayMs));
    client.send(1, Buffer.from('before'));
    await waitFor(() => first.received.length === 1, 'first packet');

    const lost = lostConnection(client);
    await first.server.close({ drainMs: 100 });
    await lost;
    expect(client.session.state).toBe('reconnecting');
    // Sent while disconnected: queued within the bound, delivered after reconnect.
    expect(client.send(1, Buffer.from('queued-1'))).toBe(false);
    client.send(1, Buffer.from('queued-2'));
    expect(client.session.bufferedAmount).toBeGreaterThan(0);

    const second = await recordingServer(backend, protocol, first.port);
    servers.push(second.server);
    await nextEvent(client.session, 'reconnected', 10_000);
    expect(client.session.id).toBe(id);
    expect(client.session.state).toBe('open');
    await waitFor(() => second.received.length === 2, 'queued packets');
    expect(second.received).toEqual(['queued-1', 'queued-2']);
    expect(delays.length).toBeGreaterThan(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(200);
    await client.close();
  });

  it('rejects sends past the reconnect queue bound with RP_ERR_NOT_CONNECTED', async () => {
    const { server, port } = await recordingServer(backend, protocol);
    const client = await connect({ ...target(protocol, port), backend, reconnect: { initialDelayMs: 1000, maxQueuedBytes: 100 } });
    const lost = lostConnection(client);
    await server.close({ drainMs: 100 });
    await lost;
    client.send(1, Buffer.alloc(50));
    expect(() => client.send(1, Buffer.alloc(50))).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_CONNECTED }));
    await client.close();
    expect(client.session.state).toBe('closed');
  });

  it('gives up after maxRetries with reason connect-failed', async () => {
    const { server, port } = await recordingServer(backend, protocol);
    const client = await connect({ ...target(protocol, port), backend, reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxRetries: 3 } });
    let attempts = 0;
    client.on('reconnecting', () => attempts++);
    const closed = nextEvent<[string]>(client.session, 'close');
    await server.close({ drainMs: 100 });
    const [reason] = await closed;
    expect(reason).toBe('connect-failed');
    expect(attempts).toBe(3);
    expect(() => client.send(1, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: ErrorCodes.SESSION_CLOSED }));
  });

  it('without a reconnect policy, a lost connection closes the session with peer-closed', async () => {
    const { server, port } = await recordingServer(backend, protocol);
    const client = await connect({ ...target(protocol, port), backend });
    const closed = nextEvent<[string]>(client.session, 'close');
    await server.close({ drainMs: 100 });
    expect((await closed)[0]).toBe('peer-closed');
  });

  it('retries the first dial too when a policy is given, so a client may start before its server', async () => {
    const probe = await recordingServer(backend, protocol);
    const port = probe.port;
    await probe.server.close();
    const pending = connect({ ...target(protocol, port), backend, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    await new Promise((r) => setTimeout(r, 100));
    const late = await recordingServer(backend, protocol, port);
    servers.push(late.server);
    const client = await pending;
    client.send(1, Buffer.from('hello'));
    await waitFor(() => late.received.length === 1, 'packet after late start');
    await client.close();
  });

  it('sends what reconnected listeners send (a new login) ahead of the packets queued while down', async () => {
    const first = await recordingServer(backend, protocol);
    servers.push(first.server);
    const client = await connect({ ...target(protocol, first.port), backend, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    client.on('reconnected', () => client.send(1, Buffer.from('login')));
    const lost = lostConnection(client);
    await first.server.close({ drainMs: 100 });
    await lost;
    client.send(1, Buffer.from('queued'));
    const second = await recordingServer(backend, protocol, first.port);
    servers.push(second.server);
    await waitFor(() => second.received.length === 2, 'login and queued packet');
    expect(second.received).toEqual(['login', 'queued']);
    await client.close();
  });

  it('createClient returns at once, and close() stops a dial that is still retrying', async () => {
    const { server, port } = await recordingServer(backend, protocol);
    await server.close();
    const client = createClient({ ...target(protocol, port), backend, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    let attempts = 0;
    client.on('reconnecting', () => attempts++);
    await waitFor(() => attempts >= 2, 'two retries');
    await client.close();
    await expect(client.session.whenOpen()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    const settled = attempts;
    await new Promise((r) => setTimeout(r, 150));
    expect(attempts).toBe(settled);
    expect(client.session.state).toBe('closed');
  });
});
