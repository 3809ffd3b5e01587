/**
 * RFC 6455 conformance of ringport's WebSocket server, over real loopback
 * sockets on every backend, on a WebSocket listener and on an HTTP listener
 * that upgrades /play (whose handshake is handed over to the same
 * protocol), with a hand-written client (test/support/ws-peer.ts) that can
 * also send what no real client would. Every case below is one test
 * (`it`, or one row of an `it.each`); "fails 1002" means: a close frame with
 * that code arrives, the server ends the TCP connection, and `sessionClose`
 * gives the close reason the code maps to (1002 protocol-error, 1003
 * unknown-packet, 1007 decode-error, 1009 frame-too-large).
 *
 * | section | case | expected |
 * | --- | --- | --- |
 * | 4.1/4.2.2 | valid upgrade | 101, Sec-WebSocket-Accept = base64(SHA-1(key + GUID)), Upgrade/Connection |
 * | 4.2.2/9.1 | permessage-deflate offered | 101 without Sec-WebSocket-Extensions; frames flow uncompressed |
 * | 4.2.1 | Sec-WebSocket-Key missing | 400 |
 * | 4.2.1 | Sec-WebSocket-Key not 16 bytes of base64 | 400 |
 * | 4.2.1/4.4 | Sec-WebSocket-Version 8 | 426 with Sec-WebSocket-Version: 13 |
 * | 4.2.1 | path with no WebSocket | 404 (on an HTTP listener the connection stays open for the next request) |
 * | 4.2.1 | POST | 400 |
 * | 4.2.1 | HTTP/1.0 | 400 |
 * | 4.2.1 | no Upgrade: websocket | 400 (404 on an HTTP listener: a plain GET with no route) |
 * | 4.2.1 | no Connection: Upgrade | 400 |
 * | 4.2.1 | no Host | 400 |
 * | 4.2.1 | a head over 16 KiB | 431 |
 * | 4.2.1 | the request split byte by byte | 101 |
 * | 4.2.2 | subprotocols offered, two spoken | the server's first preference among them |
 * | 4.2.2 | subprotocols offered, none spoken | 400 |
 * | 4.2.2 | no subprotocol offered | 101 without Sec-WebSocket-Protocol |
 * | 4.2.2/10.2 | origin on the allow-list | 101 |
 * | 4.2.2/10.2 | origin not on it, or none | 403 |
 * | 4.2.2 | onUpgrade refuses 401, 403, 429 with a body | that status and body |
 * | 4.2.2 | onUpgrade accepts with data | the data is session.data; the hook saw path, query, headers, address, subprotocol |
 * | 4.2.2 | onUpgrade throws | 500, onError with source 'hook' |
 * | 4.2.2 | any refusal | no 'session' event, server.sessions unchanged |
 * | 4.2.2 | frames right behind the request, no hook | delivered in order |
 * | 4.2.2 | frames right behind the request, while an async hook decides | delivered in order once it accepts |
 * | 5.2 | 7-bit length (2, 125) | delivered; the echo uses the 7-bit form |
 * | 5.2 | 16-bit length (126, 65535) | delivered; the echo uses the 16-bit form |
 * | 5.2 | 64-bit length (65536, maxFrameBytes) | delivered; the echo uses the 64-bit form |
 * | 5.2 | a 7-bit frame split at every point across writes | every one delivered |
 * | 5.2 | a 16-bit frame split at every header point and through its payload | every one delivered |
 * | 5.2 | a 64-bit frame split at every header point and through its payload | every one delivered |
 * | 5.2 | many frames in one write | every one delivered, in order |
 * | 5.3 | server frames | never masked |
 * | 5.3 | an unmasked client frame | fails 1002 |
 * | 5.3 | an all-zero mask key | delivered (the key is the client's choice) |
 * | 5.4 | a binary message in 3 fragments, the packet id split across two | one packet |
 * | 5.4 | empty fragments | one packet |
 * | 5.4 | ping and pong between fragments | pong answered, message delivered |
 * | 5.4 | continuation with no message begun | fails 1002 |
 * | 5.4 | a new data frame inside a fragmented message | fails 1002 |
 * | 5.5.2/5.5.3 | ping with a payload (0, 5, 125 bytes) | a pong with the same payload |
 * | 5.5.2 | a ping (5 bytes) split at every point across writes | each answered with its payload |
 * | 5.5.3 | unsolicited pongs, no packets | count as activity: the peer outlives a silent one |
 * | 5.5 | a fragmented control frame | fails 1002 |
 * | 5.5 | a control payload of 126 bytes | fails 1002 |
 * | 5.5.1 | close 1000 with a reason | echoed with 1000; peer-closed |
 * | 5.5.1 | close without a payload | echoed without a code; peer-closed |
 * | 5.5.1 | close 1001, 1011, 3000, 4001 with text | echoed with that code; peer-closed, peer-closed, peer-closed, the text |
 * | 5.5.1 | frames after a close | not delivered |
 * | 5.2 | RSV1, RSV2, RSV3 each | fails 1002 |
 * | 5.2 | opcodes 3-7, 0xB-0xF | fails 1002 |
 * | 8.1 | valid text (multi-byte), whole and in fragments split inside a character | delivered as textPacket, bytes exact |
 * | 8.1 | an invalid byte (0xFF), the rest not sent | fails 1007 before the rest |
 * | 8.1 | an invalid byte in a later fragment, the rest not sent | fails 1007 before the rest |
 * | 8.1 | a bad continuation in the middle of a sequence, the rest not sent | fails 1007 before the rest |
 * | 8.1 | a sequence begun in one fragment and broken in the next | fails 1007 before the rest |
 * | 8.1 | overlong C0 80, E0 80 80, F0 80 80 80, the rest not sent | fails 1007 before the rest |
 * | 8.1 | surrogate ED A0 80, the rest not sent | fails 1007 before the rest |
 * | 8.1 | above U+10FFFF (F4 90 80 80, F5), the rest not sent | fails 1007 before the rest |
 * | 8.1 | a message that ends inside a sequence | fails 1007 |
 * | 8.1 | invalid UTF-8 in a close reason | fails 1007 |
 * | 7.4.1 | session.close(reason) for each reason the server maps (11) | the mapped code, the reason as its text |
 * | 7.4.1 | an unknown packet id; a throwing handler; server.close() | 1003 unknown-packet; 1011 handler-error; 1001 shutdown |
 * | 7.1.1 | a peer that never answers a close (nor FINs) | cut off: TCP ends, sessionClose comes (WebSocket listener only) |
 * | 7.4.2 | close codes 0, 999, 1004, 1005, 1006, 1015, 2999, 5000 | fails 1002 |
 * | 5.5.1 | a one-byte close payload | fails 1002 |
 * | 10.4 | a message of exactly maxFrameBytes, whole and fragmented | delivered |
 * | 10.4 | one byte over: only the header sent | fails 1009 before the body |
 * | 10.4 | fragments passing maxFrameBytes: only the last header sent | fails 1009 before its body |
 * | 5.2/10.4 | a declared length of 2^63 | fails 1002 |
 * | 10.4 | a declared length of 2^32 | fails 1009 |
 * | - | text without textPacket | fails 1003 |
 * | - | a binary message of 0 or 1 bytes (no packet id) | fails 1007 |
 * | 5.5.2 | keep-alive: a silent peer | gets a ping |
 * | 5.5.2 | keep-alive: a peer that answers pings | stays open across several intervals |
 * | 5.5.2 | keep-alive: a peer that does not | closed with idle-timeout, code 1008 |
 * | - | pings off (pingIntervalMs 0): a quiet peer that would answer pings | no ping; closed at idleTimeoutMs with idle-timeout, 1008 |
 * | 4.1 | keep-alive: a peer that never finishes its handshake | closed, never a session (408 first on an HTTP listener) |
 * | 10.4 | a peer that stops reading | closed with backpressure; the others get every broadcast |
 */
import { createServer, type FaultContext, type Server, type Session, type UpgradeRequest } from '../../../src';
import { backends } from '../../support/backends';
import { waitFor } from '../../support/wait';
import { buildFrame, closeBody, expectedAccept, frameHeader, masked, OP, packetBody, WsPeer, type HandshakeOptions } from '../../support/ws-peer';

const DEADLINE_MS = 30_000;
const ECHO = 1;
const TEXT = 2;
const CLOSE_WITH = 3;
const THROW = 4;
const BLAST = 5;
/** Room for a 64-bit length (over 65535) and small enough to probe. */
const MAX = 70_000;
const PING_MS = 500;
const REASON_FOR_CODE: Record<number, string> = { 1002: 'protocol-error', 1003: 'unknown-packet', 1007: 'decode-error', 1009: 'frame-too-large' };

/** A WebSocket listener of its own, or an HTTP listener that upgrades /play (the handshake is handed over to the same protocol). */
type Listener = 'websocket' | 'http';
const listeners: Listener[] = ['websocket', 'http'];
const cases: Array<[string, Listener]> = backends.flatMap((b) => listeners.map((l): [string, Listener] => [b, l]));

describe.each(cases)('RFC 6455 conformance on %s, on a %s listener', (backendName, listener) => {
  const backend = backendName as (typeof backends)[number];
  let server: Server;
  const port = { main: 0, text: 0, origin: 0, hook: 0, keepAlive: 0 };
  const closes = new Map<number, { reason: string; error: { code: string; message: string } | undefined }>();
  let announced: Session[] = [];
  let faults: Array<{ error: unknown; ctx: FaultContext }> = [];
  let hookCalls: UpgradeRequest[] = [];
  let releaseHook: () => void = () => undefined;
  const peers: WsPeer[] = [];

  beforeAll(async () => {
    server = createServer({ backend, framing: { maxFrameBytes: MAX }, onError: (error, ctx) => faults.push({ error, ctx }) });
    server.handle(ECHO, (_s, bytes: Buffer) => bytes);
    server.handle(TEXT, (_s, bytes: Buffer) => bytes);
    server.handle(CLOSE_WITH, (s, bytes: Buffer) => s.close(bytes.toString()));
    server.handle(THROW, () => {
      throw new Error('handler bug');
    });
    server.handle(BLAST, () => undefined);
    server.on('session', (s) => announced.push(s));
    server.on('sessionClose', (s, reason, error) => closes.set(s.remotePort, { reason, error }));
    const listen = async (options: object) => {
      const address =
        listener === 'websocket'
          ? await server.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: '/play', ...options })
          : await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http', requestTimeoutMs: 2000, websocket: { path: '/play', ...options } });
      return address.port;
    };
    port.main = await listen({ subprotocols: ['v2.game', 'v1.game'] });
    port.text = await listen({ textPacket: TEXT });
    port.origin = await listen({ origins: ['https://game.example'] });
    port.hook = await listen({
      onUpgrade: async (request: UpgradeRequest) => {
        hookCalls.push(request);
        const verdict = request.query.get('verdict');
        if (verdict === 'throw') throw new Error('hook bug');
        if (verdict === 'wait') await new Promise<void>((resolve) => (releaseHook = resolve));
        if (verdict !== null && /^\d+$/.test(verdict)) return { status: Number(verdict), body: `refused with ${verdict}` };
        if (verdict === 'data') return { data: { name: request.query.get('name'), token: request.headers['x-token'] } };
        return undefined;
      },
    });
    port.keepAlive = await listen({ pingIntervalMs: PING_MS });
  });

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    // Each case starts with no session left from the one before.
    await waitFor(() => server.sessions.size === 0, 'the last case\'s sessions to close', DEADLINE_MS);
  });

  afterAll(() => server.close({ drainMs: 100 }));

  async function open(which: keyof typeof port = 'main', allowHalfOpen = false): Promise<WsPeer> {
    const peer = await WsPeer.open(port[which], '127.0.0.1', allowHalfOpen);
    // The kernel reuses local ports over the hundreds of connections of this suite: an older
    // close recorded under this one belongs to a session that is gone.
    closes.delete(peer.localPort);
    peers.push(peer);
    return peer;
  }

  async function connect(which: keyof typeof port = 'main', options: HandshakeOptions = {}): Promise<WsPeer> {
    const peer = await open(which);
    const response = await peer.handshake(options);
    expect(response.status).toBe(101);
    return peer;
  }

  function sessionOf(peer: WsPeer): Session | undefined {
    return [...server.sessions.values()].find((s) => s.remotePort === peer.localPort);
  }

  async function closeOf(peer: WsPeer) {
    const localPort = peer.localPort;
    await waitFor(() => closes.has(localPort), `sessionClose for the peer on ${localPort}`, DEADLINE_MS);
    return closes.get(localPort)!;
  }

  /** The server failed the connection with `code`: close frame, end of stream, the mapped close reason. */
  async function expectFailed(peer: WsPeer, code: number): Promise<void> {
    expect((await peer.waitCloseFrame()).code).toBe(code);
    await peer.waitEnded();
    expect((await closeOf(peer)).reason).toBe(REASON_FOR_CODE[code]);
  }

  let seq = 0;
  async function expectEcho(peer: WsPeer, payload: Buffer = Buffer.from(`echo-${++seq}`)): Promise<void> {
    const before = peer.count(OP.BINARY);
    peer.sendPacket(ECHO, payload);
    const packets = await peer.waitPackets(before + 1);
    expect(packets[before].id).toBe(ECHO);
    expect(packets[before].payload.equals(payload)).toBe(true);
  }

  /** Refused handshakes: the status, and that no session came of it. */
  async function expectRefused(which: keyof typeof port, options: HandshakeOptions, status: number) {
    const announcedBefore = announced.length;
    const peer = await open(which);
    const response = await peer.handshake(options);
    expect(response.status).toBe(status);
    // An HTTP listener's 404 is an ordinary answer on a connection that stays open for the next request.
    if (!(listener === 'http' && status === 404)) await peer.waitEnded();
    expect(peer.frames).toEqual([]);
    expect(server.sessions.size).toBe(0);
    expect(announced.length).toBe(announcedBefore);
    expect(closes.has(peer.localPort)).toBe(false);
    return response;
  }

  describe('opening handshake (4.1, 4.2)', () => {
    it('answers a valid upgrade with 101 and the accept key derived from the client key', async () => {
      const peer = await open();
      const response = await peer.handshake();
      expect(response.status).toBe(101);
      expect(response.headers['sec-websocket-accept']).toBe(expectedAccept(peer.key));
      expect(response.headers.upgrade.toLowerCase()).toBe('websocket');
      expect(response.headers.connection.toLowerCase()).toBe('upgrade');
      await expectEcho(peer);
    });

    it('declines permessage-deflate: no extension in the answer, frames uncompressed', async () => {
      const peer = await connect('main', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } });
      expect(peer.response!.headers['sec-websocket-extensions']).toBeUndefined();
      await expectEcho(peer, Buffer.alloc(1000, 0x61));
      expect(peer.frames.every((f) => f.rsv === 0)).toBe(true);
    });

    it.each([
      ['Sec-WebSocket-Key is missing', { headers: { 'Sec-WebSocket-Key': undefined } }, 400],
      ['Sec-WebSocket-Key is not 16 bytes of base64', { headers: { 'Sec-WebSocket-Key': Buffer.alloc(8).toString('base64') } }, 400],
      ['the method is POST', { method: 'POST' }, 400],
      ['the version is HTTP/1.0', { httpVersion: 'HTTP/1.0' }, 400],
      // On an HTTP listener that is a plain GET of a path with no route.
      ['there is no Upgrade: websocket', { headers: { Upgrade: undefined } }, listener === 'http' ? 404 : 400],
      ['there is no Connection: Upgrade', { headers: { Connection: 'keep-alive' } }, 400],
      ['there is no Host', { headers: { Host: undefined } }, 400],
      ['the path has no WebSocket', { path: '/elsewhere' }, 404],
      ['a head is over 16 KiB', { headers: { 'X-Filler': 'x'.repeat(17 * 1024) } }, 431],
    ] as Array<[string, HandshakeOptions, number]>)('refuses when %s', async (_what, options, status) => {
      await expectRefused('main', options, status);
    });

    it('answers another Sec-WebSocket-Version with 426 naming version 13', async () => {
      const response = await expectRefused('main', { headers: { 'Sec-WebSocket-Version': '8' } }, 426);
      expect(response.headers['sec-websocket-version']).toBe('13');
    });

    it('takes a request that arrives a byte at a time', async () => {
      const peer = await open();
      const request = peer.request();
      for (let i = 0; i < request.length; i++) {
        await peer.flush(request.subarray(i, i + 1));
      }
      expect((await peer.waitResponse()).status).toBe(101);
      await expectEcho(peer);
    });

    it('chooses its own first preference among the subprotocols offered', async () => {
      const peer = await connect('main', { headers: { 'Sec-WebSocket-Protocol': 'v1.game, chat, v2.game' } });
      expect(peer.response!.headers['sec-websocket-protocol']).toBe('v2.game');
      const other = await connect('main', { headers: { 'Sec-WebSocket-Protocol': 'v1.game' } });
      expect(other.response!.headers['sec-websocket-protocol']).toBe('v1.game');
    });

    it('refuses with 400 when none of the subprotocols offered is spoken', async () => {
      await expectRefused('main', { headers: { 'Sec-WebSocket-Protocol': 'chat, v3.game' } }, 400);
    });

    it('names no subprotocol when none is offered', async () => {
      const peer = await connect('main');
      expect(peer.response!.headers['sec-websocket-protocol']).toBeUndefined();
    });

    it('lets an allowed origin in', async () => {
      const peer = await connect('origin', { headers: { Origin: 'https://game.example' } });
      await expectEcho(peer);
    });

    it.each([['https://evil.example'], [undefined]])('refuses origin %s with 403', async (origin) => {
      await expectRefused('origin', { headers: { Origin: origin } }, 403);
    });

    it.each([[401], [403], [429]])('refuses with %i and the body when onUpgrade says so', async (status) => {
      const response = await expectRefused('hook', { path: `/play?verdict=${status}` }, status);
      expect(response.body).toBe(`refused with ${status}\n`);
    });

    it('makes what onUpgrade accepts with the session.data, having shown it the request', async () => {
      hookCalls = [];
      const peer = await connect('hook', { path: '/play?verdict=data&name=ada', headers: { 'X-Token': 'secret' } });
      await waitFor(() => sessionOf(peer) !== undefined, 'the session', DEADLINE_MS);
      expect(sessionOf(peer)!.data).toEqual({ name: 'ada', token: 'secret' });
      expect(hookCalls).toHaveLength(1);
      const request = hookCalls[0];
      expect(request.method).toBe('GET');
      expect(request.path).toBe('/play');
      expect(request.query.get('name')).toBe('ada');
      expect(request.headers['x-token']).toBe('secret');
      expect(request.remoteAddress).toMatch(/127\.0\.0\.1$/);
      expect(request.remotePort).toBe(peer.localPort);
      await expectEcho(peer);
    });

    it('refuses with 500 when onUpgrade throws, and reports it to onError with source hook', async () => {
      faults = [];
      await expectRefused('hook', { path: '/play?verdict=throw' }, 500);
      expect(faults).toHaveLength(1);
      expect((faults[0].error as Error).message).toBe('hook bug');
      expect(faults[0].ctx.source).toBe('hook');
      expect(faults[0].ctx.session).toBeUndefined();
    });

    it('delivers frames sent right behind the request, in the same write', async () => {
      const trailing = Buffer.concat([1, 2, 3].map((n) => buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from(`early-${n}`)) })));
      const peer = await connect('main', { trailing });
      const packets = await peer.waitPackets(3);
      expect(packets.map((p) => p.payload.toString())).toEqual(['early-1', 'early-2', 'early-3']);
    });

    it('keeps frames that arrive while an async onUpgrade decides, and delivers them once it accepts', async () => {
      hookCalls = [];
      const peer = await open('hook');
      const trailing = buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('early-1')) });
      peer.write(peer.request({ path: '/play?verdict=wait', trailing }));
      await waitFor(() => hookCalls.length === 1, 'the hook to be called', DEADLINE_MS);
      // More frames while the hook is still out, then the hook accepts.
      await peer.flush(buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('early-2')) }));
      const bytesIn = server.stats().backend.bytesIn;
      await peer.flush(buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('early-3')) }));
      await waitFor(() => server.stats().backend.bytesIn > bytesIn, 'the last early frame to reach the server', DEADLINE_MS);
      expect(peer.response).toBeUndefined();
      releaseHook();
      expect((await peer.waitResponse()).status).toBe(101);
      const packets = await peer.waitPackets(3);
      expect(packets.map((p) => p.payload.toString())).toEqual(['early-1', 'early-2', 'early-3']);
    });
  });

  describe('framing (5.2) and masking (5.3)', () => {
    it.each([
      [2, 7],
      [125, 7],
      [126, 16],
      [65535, 16],
      [65536, 64],
      [MAX, 64],
    ])('delivers a body of %i bytes and echoes it with a %i-bit length, unmasked', async (bodyBytes, bits) => {
      const peer = await connect();
      const payload = Buffer.alloc(bodyBytes - 2);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      await expectEcho(peer, payload);
      const echo = peer.frames[peer.frames.length - 1];
      expect(echo).toMatchObject({ fin: true, rsv: 0, opcode: OP.BINARY, masked: false, lengthBits: bits });
      expect(echo.payload.length).toBe(bodyBytes);
    });

    /** Sends `frame` in two writes split at `at`, the first of which the server has read before the second is sent. */
    async function sendSplit(peer: WsPeer, frame: Buffer, at: number): Promise<void> {
      const bytesIn = server.stats().backend.bytesIn;
      await peer.flush(frame.subarray(0, at));
      await waitFor(() => server.stats().backend.bytesIn >= bytesIn + at, 'the first part to reach the server', DEADLINE_MS);
      await peer.flush(frame.subarray(at));
    }

    it.each([
      ['7-bit', 10, (n: number) => Array.from({ length: n - 1 }, (_, i) => i + 1)],
      // The header (4 + 4 bytes) at every point, then through the payload, across the mask key's phases.
      ['16-bit', 300, (n: number) => [...Array.from({ length: 16 }, (_, i) => i + 1), 101, 102, 103, n - 2, n - 1]],
      ['64-bit', 65600, (n: number) => [...Array.from({ length: 22 }, (_, i) => i + 1), 30001, 30002, 30003, n - 2, n - 1]],
    ])('delivers a %s-length frame split at every point that matters', async (_form, payloadBytes, points) => {
      const peer = await connect();
      const frames: Buffer[] = [];
      const splits = points(payloadBytes + 2 + (payloadBytes < 126 ? 6 : payloadBytes <= 0xffff ? 8 : 14));
      for (const [i, at] of splits.entries()) {
        const payload = Buffer.alloc(payloadBytes, i & 0xff);
        payload.writeUInt32LE(i, 0);
        const frame = buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, payload) });
        frames.push(payload);
        await sendSplit(peer, frame, at);
        await peer.waitPackets(i + 1);
      }
      const got = peer.packets;
      expect(got).toHaveLength(splits.length);
      got.forEach((p, i) => {
        if (!p.payload.equals(frames[i])) throw new Error(`the frame split at ${splits[i]} came back wrong`);
      });
    });

    it('delivers many frames written at once, in order', async () => {
      const peer = await connect();
      const count = 200;
      peer.write(Buffer.concat(Array.from({ length: count }, (_, i) => buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from(`m${i}`)) }))));
      const packets = await peer.waitPackets(count);
      expect(packets.map((p) => p.payload.toString())).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
      expect(peer.frames.every((f) => !f.masked)).toBe(true);
    });

    it('fails an unmasked client frame with 1002 and delivers nothing of it', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('in the clear')), mask: false });
      await expectFailed(peer, 1002);
      expect(peer.packets).toEqual([]);
    });

    it('takes an all-zero mask key', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('zero key')), mask: Buffer.alloc(4) });
      expect((await peer.waitPackets(1))[0].payload.toString()).toBe('zero key');
    });
  });

  describe('fragmentation (5.4)', () => {
    it('reassembles a binary message of three fragments, the packet id split across the first two', async () => {
      const peer = await connect();
      const body = packetBody(ECHO, Buffer.from('three fragments'));
      peer.send({ opcode: OP.BINARY, fin: false, payload: body.subarray(0, 1) });
      peer.send({ opcode: OP.CONT, fin: false, payload: body.subarray(1, 8) });
      peer.send({ opcode: OP.CONT, payload: body.subarray(8) });
      const packets = await peer.waitPackets(1);
      expect(packets.map((p) => [p.id, p.payload.toString()])).toEqual([[ECHO, 'three fragments']]);
    });

    it('reassembles a message with empty fragments', async () => {
      const peer = await connect();
      const body = packetBody(ECHO, Buffer.from('gaps'));
      peer.send({ opcode: OP.BINARY, fin: false, payload: Buffer.alloc(0) });
      peer.send({ opcode: OP.CONT, fin: false, payload: body });
      peer.send({ opcode: OP.CONT, fin: false, payload: Buffer.alloc(0) });
      peer.send({ opcode: OP.CONT, payload: Buffer.alloc(0) });
      expect((await peer.waitPackets(1))[0].payload.toString()).toBe('gaps');
    });

    it('answers a ping between fragments and still delivers the message', async () => {
      const peer = await connect();
      const body = packetBody(ECHO, Buffer.from('interleaved'));
      peer.send({ opcode: OP.BINARY, fin: false, payload: body.subarray(0, 5) });
      peer.send({ opcode: OP.PING, payload: Buffer.from('mid') });
      peer.send({ opcode: OP.PONG, payload: Buffer.from('unasked') });
      peer.send({ opcode: OP.CONT, payload: body.subarray(5) });
      const packets = await peer.waitPackets(1);
      expect(packets[0].payload.toString()).toBe('interleaved');
      const pongs = peer.frames.filter((f) => f.opcode === OP.PONG);
      expect(pongs.map((f) => f.payload.toString())).toEqual(['mid']);
      // The pong came before the message it was sent in the middle of.
      expect(peer.frames.findIndex((f) => f.opcode === OP.PONG)).toBeLessThan(peer.frames.findIndex((f) => f.opcode === OP.BINARY));
    });

    it('fails a continuation with no message begun with 1002', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.CONT, payload: packetBody(ECHO, Buffer.from('orphan')) });
      await expectFailed(peer, 1002);
      expect(peer.packets).toEqual([]);
    });

    it('fails a new data frame inside a fragmented message with 1002', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, fin: false, payload: packetBody(ECHO, Buffer.from('first')) });
      peer.send({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('second')) });
      await expectFailed(peer, 1002);
      expect(peer.packets).toEqual([]);
    });
  });

  describe('control frames (5.5)', () => {
    it.each([[0], [5], [125]])('answers a ping of %i bytes with a pong carrying the same payload', async (bytes) => {
      const peer = await connect();
      const payload = Buffer.alloc(bytes);
      for (let i = 0; i < bytes; i++) payload[i] = (i * 13 + 1) & 0xff;
      peer.send({ opcode: OP.PING, payload });
      const [pong] = await peer.waitFrames(1, OP.PONG);
      expect(pong).toMatchObject({ fin: true, rsv: 0, masked: false });
      expect(pong.payload.equals(payload)).toBe(true);
      await expectEcho(peer);
    });

    it('answers a ping split at every point across writes', async () => {
      const peer = await connect();
      for (let at = 1; at < 11; at++) {
        const payload = Buffer.from(`p${at}`.padEnd(5, '.'));
        const frame = buildFrame({ opcode: OP.PING, payload });
        const bytesIn = server.stats().backend.bytesIn;
        await peer.flush(frame.subarray(0, at));
        await waitFor(() => server.stats().backend.bytesIn >= bytesIn + at, 'the first part to reach the server', DEADLINE_MS);
        await peer.flush(frame.subarray(at));
        const pongs = await peer.waitFrames(at, OP.PONG);
        expect(pongs[at - 1].payload.equals(payload)).toBe(true);
      }
    });

    it('counts unsolicited pongs as activity: a peer sending only pongs outlives a silent one', async () => {
      const silent = await connect('keepAlive');
      const ponger = await connect('keepAlive');
      const timer = setInterval(() => ponger.send({ opcode: OP.PONG, payload: Buffer.alloc(0) }), PING_MS / 10);
      try {
        // The silent peer is closed after two quiet periods; the ponger, quiet of packets as long, is not.
        expect((await silent.waitCloseFrame()).code).toBe(1008);
        expect((await closeOf(silent)).reason).toBe('idle-timeout');
        expect(ponger.ended).toBe(false);
        expect(ponger.closeFrame).toBeUndefined();
        expect(sessionOf(ponger)?.isOpen).toBe(true);
      } finally {
        clearInterval(timer);
      }
    });

    it('fails a fragmented ping with 1002', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.PING, fin: false, payload: Buffer.from('part') });
      await expectFailed(peer, 1002);
      expect(peer.count(OP.PONG)).toBe(0);
    });

    it('fails a control frame of 126 bytes with 1002 on its header', async () => {
      const peer = await connect();
      // The header alone: the length is refused before any payload is read.
      peer.write(frameHeader({ opcode: OP.PING, length: 126, mask: Buffer.from([1, 2, 3, 4]) }));
      await expectFailed(peer, 1002);
    });

    it('echoes a close 1000 with its code and closes with peer-closed', async () => {
      const peer = await connect();
      await expectEcho(peer);
      peer.sendClose(1000, 'bye');
      expect(await peer.waitCloseFrame()).toEqual({ code: 1000, reason: '' });
      await peer.waitEnded();
      expect(await closeOf(peer)).toEqual({ reason: 'peer-closed', error: undefined });
    });

    it('echoes a close without a payload with one without a code', async () => {
      const peer = await connect();
      peer.sendClose();
      expect(await peer.waitCloseFrame()).toEqual({ code: 1005, reason: '' });
      expect(peer.frames.find((f) => f.opcode === OP.CLOSE)!.payload.length).toBe(0);
      await peer.waitEnded();
      expect(await closeOf(peer)).toEqual({ reason: 'peer-closed', error: undefined });
    });

    it.each([
      [1001, 'going away', 'peer-closed'],
      [1011, 'client crashed', 'peer-closed'],
      [3000, 'registered', 'peer-closed'],
      [4001, 'kicked-myself', 'kicked-myself'],
    ])('echoes close %i and gives the session the matching close reason', async (code, text, reason) => {
      const peer = await connect();
      peer.sendClose(code, text);
      expect((await peer.waitCloseFrame()).code).toBe(code);
      await peer.waitEnded();
      const closed = await closeOf(peer);
      expect(closed.reason).toBe(reason);
      expect(closed.error).toEqual({ code: `WS_${code}`, message: text });
    });

    it('reads nothing after a close frame', async () => {
      const peer = await connect();
      peer.write(Buffer.concat([buildFrame({ opcode: OP.CLOSE, payload: closeBody(1000) }), buildFrame({ opcode: OP.BINARY, payload: packetBody(ECHO, Buffer.from('late')) })]));
      await peer.waitEnded();
      expect(peer.packets).toEqual([]);
      expect((await closeOf(peer)).reason).toBe('peer-closed');
    });
  });

  describe('reserved bits and opcodes (5.2)', () => {
    it.each([
      ['RSV1', 4],
      ['RSV2', 2],
      ['RSV3', 1],
    ])('fails a frame with %s set with 1002', async (_bit, rsv) => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, rsv, payload: packetBody(ECHO, Buffer.from('x')) });
      await expectFailed(peer, 1002);
      expect(peer.packets).toEqual([]);
    });

    it.each([[3], [4], [5], [6], [7], [0xb], [0xc], [0xd], [0xe], [0xf]])('fails opcode %i with 1002', async (opcode) => {
      const peer = await connect();
      peer.send({ opcode, payload: Buffer.from('?') });
      await expectFailed(peer, 1002);
    });
  });

  describe('UTF-8 in text messages (8.1), with textPacket set', () => {
    const text = 'héllo, 🎮 中文 — ok';

    it('delivers valid text as the textPacket, its UTF-8 bytes exact', async () => {
      const peer = await connect('text');
      peer.send({ opcode: OP.TEXT, payload: Buffer.from(text) });
      const [packet] = await peer.waitPackets(1);
      expect(packet.id).toBe(TEXT);
      expect(packet.payload.toString('utf8')).toBe(text);
    });

    it('delivers text in fragments split inside characters, and across writes', async () => {
      const peer = await connect('text');
      const bytes = Buffer.from(text);
      const game = bytes.indexOf(Buffer.from('🎮'));
      const cuts = [0, 2, game + 1, game + 3, bytes.indexOf(Buffer.from('中')) + 2, bytes.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        await peer.flush(buildFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: i + 2 === cuts.length, payload: bytes.subarray(cuts[i], cuts[i + 1]) }));
      }
      const [packet] = await peer.waitPackets(1);
      expect(packet.payload.toString('utf8')).toBe(text);
    });

    /**
     * Fail-fast: a text frame declares 64 bytes, and only `sent` of them go
     * out; the close must come without the rest. `before` are whole
     * fragments of the same message sent first.
     */
    it.each([
      ['an invalid byte 0xFF', [], [0x61, 0x62, 0xff]],
      ['an invalid byte in a later fragment', [Buffer.from('valid start ')], [0x61, 0xff]],
      ['a bad continuation in the middle of a sequence', [], [0x61, 0xe2, 0x41]],
      ['a sequence begun in one fragment and broken in the next', [Buffer.from([0x61, 0xe2, 0x82])], [0x41]],
      ['an overlong C0 80', [], [0xc0, 0x80]],
      ['an overlong E0 80 80', [], [0xe0, 0x80, 0x80]],
      ['an overlong F0 80 80 80', [], [0xf0, 0x80, 0x80, 0x80]],
      ['a surrogate ED A0 80', [], [0xed, 0xa0, 0x80]],
      ['a code point above U+10FFFF (F4 90 80 80)', [], [0xf4, 0x90, 0x80, 0x80]],
      ['a lead byte F5', [], [0xf5]],
    ] as Array<[string, Buffer[], number[]]>)('fails %s with 1007 before the rest of the message is sent', async (_what, before, sent) => {
      const peer = await connect('text');
      before.forEach((fragment, i) => peer.send({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: false, payload: fragment }));
      const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
      peer.write(frameHeader({ opcode: before.length === 0 ? OP.TEXT : OP.CONT, length: 64, mask: key }));
      peer.write(masked(Buffer.from(sent), key));
      await expectFailed(peer, 1007);
      expect(peer.packets).toEqual([]);
    });

    it('fails a message that ends inside a sequence with 1007', async () => {
      const peer = await connect('text');
      peer.send({ opcode: OP.TEXT, payload: Buffer.from([0x61, 0xe2, 0x82]) });
      await expectFailed(peer, 1007);
    });

    it('fails a close frame whose reason is not UTF-8 with 1007', async () => {
      const peer = await connect('text');
      peer.sendClose(1000, Buffer.from([0x62, 0x79, 0xff]));
      await expectFailed(peer, 1007);
    });
  });

  describe('close codes (7.4)', () => {
    it.each([
      ['closed', 1000],
      ['shutdown', 1001],
      ['protocol-error', 1002],
      ['unknown-packet', 1003],
      ['decode-error', 1007],
      ['idle-timeout', 1008],
      ['backpressure', 1008],
      ['frame-too-large', 1009],
      ['handler-error', 1011],
      ['error', 1011],
      ['rate-limited', 4000],
    ])('session.close(%s) sends close code %i with the reason as its text', async (reason, code) => {
      const peer = await connect();
      peer.sendPacket(CLOSE_WITH, Buffer.from(reason));
      expect(await peer.waitCloseFrame()).toEqual({ code, reason });
      await peer.waitEnded();
      expect((await closeOf(peer)).reason).toBe(reason);
    });

    it('closes an unknown packet id with 1003 unknown-packet', async () => {
      const peer = await connect();
      peer.sendPacket(99, Buffer.from('?'));
      expect(await peer.waitCloseFrame()).toEqual({ code: 1003, reason: 'unknown-packet' });
      await peer.waitEnded();
      expect((await closeOf(peer)).reason).toBe('unknown-packet');
    });

    it('closes a session whose handler throws with 1011 handler-error', async () => {
      faults = [];
      const peer = await connect();
      peer.sendPacket(THROW, Buffer.alloc(0));
      expect(await peer.waitCloseFrame()).toEqual({ code: 1011, reason: 'handler-error' });
      await peer.waitEnded();
      expect((await closeOf(peer)).reason).toBe('handler-error');
      expect(faults.map((f) => f.ctx.source)).toEqual(['handler']);
    });

    it('closes every WebSocket session with 1001 shutdown on server.close()', async () => {
      const own = createServer({ backend });
      try {
        const { port: ownPort } = await own.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: '/play' });
        const peer = await WsPeer.connect(ownPort);
        peers.push(peer);
        await waitFor(() => own.sessions.size === 1, 'the session', DEADLINE_MS);
        await own.close({ drainMs: 1000 });
        expect(await peer.waitCloseFrame()).toEqual({ code: 1001, reason: 'shutdown' });
        await peer.waitEnded();
      } finally {
        await own.close();
      }
    });

    // How the connection ends does not depend on how its handshake arrived: one listener kind is enough.
    (listener === 'websocket' ? it : it.skip)('cuts off a peer that never answers a close frame, nor ends its side', async () => {
      const peer = await open('main', true);
      expect((await peer.handshake()).status).toBe(101);
      peer.sendPacket(CLOSE_WITH, Buffer.from('kicked'));
      expect(await peer.waitCloseFrame()).toEqual({ code: 4000, reason: 'kicked' });
      // The peer says nothing more and keeps its side open: the server must let go by itself.
      expect((await closeOf(peer)).reason).toBe('kicked');
      await peer.waitEnded(60_000);
      await waitFor(() => sessionOf(peer) === undefined, 'the server to forget the session', DEADLINE_MS);
    }, 90_000);

    it.each([[0], [999], [1004], [1005], [1006], [1015], [2999], [5000]])('fails close code %i with 1002', async (code) => {
      const peer = await connect();
      peer.sendClose(code, 'x');
      await expectFailed(peer, 1002);
    });

    it('fails a one-byte close payload with 1002', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) });
      await expectFailed(peer, 1002);
    });
  });

  describe('limits (10.4)', () => {
    const exact = Buffer.alloc(MAX - 2, 0x5c);

    it('delivers a message of exactly maxFrameBytes, whole and in fragments', async () => {
      const peer = await connect();
      await expectEcho(peer, exact);
      const body = packetBody(ECHO, exact);
      peer.send({ opcode: OP.BINARY, fin: false, payload: body.subarray(0, 30_000) });
      peer.send({ opcode: OP.CONT, fin: false, payload: body.subarray(30_000, 60_000) });
      peer.send({ opcode: OP.CONT, payload: body.subarray(60_000) });
      const packets = await peer.waitPackets(2);
      expect(packets[1].payload.equals(exact)).toBe(true);
    });

    it('fails a message one byte over maxFrameBytes with 1009 on its header alone', async () => {
      const peer = await connect();
      peer.write(frameHeader({ opcode: OP.BINARY, length: MAX + 1, mask: Buffer.from([9, 9, 9, 9]) }));
      await expectFailed(peer, 1009);
      expect(peer.socket.bytesWritten).toBe(peer.request().length + 14);
    });

    it('fails fragments that together pass maxFrameBytes with 1009 on the header of the one that passes', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, fin: false, payload: Buffer.alloc(MAX - 10) });
      peer.write(frameHeader({ opcode: OP.CONT, length: 11, mask: Buffer.from([1, 1, 1, 1]) }));
      await expectFailed(peer, 1009);
    });

    it('fails a declared length of 2^63 with 1002', async () => {
      const peer = await connect();
      peer.write(frameHeader({ opcode: OP.BINARY, length: 1n << 63n, mask: Buffer.from([1, 2, 3, 4]) }));
      await expectFailed(peer, 1002);
    });

    it('fails a declared length of 2^32 with 1009', async () => {
      const peer = await connect();
      peer.write(frameHeader({ opcode: OP.BINARY, length: 1n << 32n, mask: Buffer.from([1, 2, 3, 4]) }));
      await expectFailed(peer, 1009);
    });

    it('refuses text with 1003 when no textPacket is set', async () => {
      const peer = await connect();
      peer.send({ opcode: OP.TEXT, payload: Buffer.from('{"hello":1}') });
      await expectFailed(peer, 1003);
    });

    it.each([[0], [1]])('fails a binary message of %i bytes, shorter than a packet id, with 1007', async (bytes) => {
      const peer = await connect();
      peer.send({ opcode: OP.BINARY, payload: Buffer.alloc(bytes, ECHO) });
      await expectFailed(peer, 1007);
    });
  });

  describe(`keep-alive, pinging every ${PING_MS} ms`, () => {
    it('pings a silent peer, unmasked and empty', async () => {
      const peer = await connect('keepAlive');
      const [ping] = await peer.waitFrames(1, OP.PING);
      expect(ping).toMatchObject({ fin: true, rsv: 0, masked: false });
      expect(ping.payload.length).toBe(0);
    });

    it('keeps a peer that answers every ping open across several intervals', async () => {
      const peer = await connect('keepAlive');
      peer.answerPings = true;
      await peer.waitFrames(4, OP.PING, 60_000);
      expect(peer.closeFrame).toBeUndefined();
      expect(peer.ended).toBe(false);
      expect(sessionOf(peer)?.isOpen).toBe(true);
      await expectEcho(peer);
    }, 90_000);

    it('closes a peer that does not answer with idle-timeout and close code 1008', async () => {
      const peer = await connect('keepAlive');
      expect(await peer.waitCloseFrame()).toEqual({ code: 1008, reason: 'idle-timeout' });
      expect(peer.count(OP.PING)).toBe(1);
      await peer.waitEnded();
      expect((await closeOf(peer)).reason).toBe('idle-timeout');
    });

    it('with pings off, closes a quiet peer at the idle timeout even though it would answer pings', async () => {
      const own = createServer({ backend, limits: { idleTimeoutMs: PING_MS } });
      const ownCloses = new Map<number, string>();
      own.on('sessionClose', (s, reason) => ownCloses.set(s.remotePort, reason));
      try {
        const { port: ownPort } = await own.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: '/play', pingIntervalMs: 0 });
        const peer = await WsPeer.connect(ownPort);
        peers.push(peer);
        peer.answerPings = true;
        expect(await peer.waitCloseFrame()).toEqual({ code: 1008, reason: 'idle-timeout' });
        expect(peer.count(OP.PING)).toBe(0);
        await waitFor(() => ownCloses.has(peer.localPort), 'sessionClose', DEADLINE_MS);
        expect(ownCloses.get(peer.localPort)).toBe('idle-timeout');
      } finally {
        await own.close({ drainMs: 100 });
      }
    });

    it('closes a peer that never finishes its handshake, which never becomes a session', async () => {
      const announcedBefore = announced.length;
      const peer = await open('keepAlive');
      peer.write(peer.request().subarray(0, 20));
      await peer.waitEnded();
      // An HTTP listener's own request timeout answers a head that never ends with 408.
      expect(peer.response?.status).toBe(listener === 'http' ? 408 : undefined);
      expect(announced.length).toBe(announcedBefore);
    });
  });

  describe('backpressure', () => {
    it('closes a peer that stops reading with backpressure, while the others get every broadcast', async () => {
      const own = createServer({ backend, limits: { highWaterMarkBytes: 64 * 1024, lowWaterMarkBytes: 16 * 1024, maxQueueBytes: 512 * 1024 } });
      const ownCloses = new Map<number, string>();
      own.on('sessionClose', (s, reason) => ownCloses.set(s.remotePort, reason));
      try {
        const { port: ownPort } = await own.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: '/play' });
        const readers = [await WsPeer.connect(ownPort), await WsPeer.connect(ownPort)];
        const slow = await WsPeer.connect(ownPort);
        peers.push(...readers, slow);
        await waitFor(() => own.sessions.size === 3, 'three sessions', DEADLINE_MS);
        slow.socket.pause();
        const payload = Buffer.alloc(128 * 1024, 0x42);
        let sent = 0;
        // One broadcast at a time, each waited for at the readers: only the slow peer's queue grows.
        while (!ownCloses.has(slow.localPort)) {
          if (sent >= 2000) throw new Error('the slow peer was never closed');
          payload.writeUInt32LE(sent, 0);
          own.broadcast(BLAST, payload);
          sent++;
          await Promise.all(readers.map((r) => r.waitPackets(sent)));
        }
        expect(ownCloses.get(slow.localPort)).toBe('backpressure');
        for (const reader of readers) {
          expect(reader.packets.map((p) => p.payload.readUInt32LE(0))).toEqual(Array.from({ length: sent }, (_, i) => i));
          expect(reader.ended).toBe(false);
        }
        slow.socket.resume();
        await slow.waitEnded();
        expect(own.sessions.size).toBe(2);
      } finally {
        await own.close({ drainMs: 100 });
      }
    }, 120_000);
  });
});
