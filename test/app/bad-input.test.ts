import * as path from 'node:path';
import {
  createServer,
  ProtobufCodec,
  type CloseReason,
  type FaultContext,
  type Server,
  type ServerOptions,
  type Session,
} from '../../src';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

/** Every server here echoes this packet id, so any peer can prove the server still serves it. */
const ECHO = 1;

interface Closed {
  reason: CloseReason;
  error: { code: string; message: string } | undefined;
}

/** A u32 little-endian length prefix, as the default framing writes it. */
function header(length: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(length, 0);
  return bytes;
}

/** A u32 LE length prefix and a u16 LE packet id, followed by `payload`. */
function rawFrame(packetId: number, payload: Buffer): Buffer {
  const body = Buffer.alloc(2 + payload.length);
  body.writeUInt16LE(packetId, 0);
  payload.copy(body, 2);
  return Buffer.concat([header(body.length), body]);
}

describe.each(matrix)('bad input on %s over %s', (backend, protocol) => {
  let server: Server | undefined;
  let port: number;
  let closes: Map<Session, Closed>;
  const peers: RawPeer[] = [];

  /** Starts a server that echoes packet `ECHO` (raw codec only) and records every `sessionClose`. */
  async function start(options: Omit<ServerOptions, 'backend'> = {}, setup?: (s: Server) => void): Promise<Server> {
    const s = createServer({ backend, ...options });
    server = s;
    closes = new Map();
    s.on('sessionClose', (session, reason, error) => closes.set(session, { reason, error }));
    if (options.codec === undefined) s.handle(ECHO, (_session, bytes: Buffer) => bytes);
    setup?.(s);
    ({ port } = await listen(s, protocol));
    return s;
  }

  /** Dials a raw peer and finds the session the server made for it. */
  async function dial(): Promise<{ peer: RawPeer; session: Session }> {
    const peer = await RawPeer.connect(port, { protocol });
    peers.push(peer);
    const find = () => [...server!.sessions.values()].find((s) => s.remotePort === peer.socket.localPort);
    await waitFor(() => find() !== undefined, 'the server to accept the peer');
    return { peer, session: find()! };
  }

  async function closeOf(session: Session, timeoutMs = 5000): Promise<Closed> {
    await waitFor(() => closes.has(session), `sessionClose for session ${session.id}`, timeoutMs);
    return closes.get(session)!;
  }

  let echoSeq = 0;
  /** Sends one echo packet with a fresh payload and expects exactly it back. */
  async function expectEcho(peer: RawPeer, payload = Buffer.from(`echo-${++echoSeq}`)): Promise<void> {
    const before = peer.packets.length;
    peer.sendPacket(ECHO, payload);
    const packets = await peer.waitForPackets(before + 1);
    expect(packets.length).toBe(before + 1);
    expect(packets[before].id).toBe(ECHO);
    expect(packets[before].payload.equals(payload)).toBe(true);
  }

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await server?.close({ drainMs: 100 });
    server = undefined;
  });

  // A length prefix over maxFrameBytes is framed TCP's own; the WebSocket cases (1009 on the header) are in test/protocol/websocket/conformance.test.ts.
  (protocol === 'framed' ? describe : describe.skip)('a frame over maxFrameBytes', () => {
    const maxFrameBytes = 1024;

    it('closes that session with frame-too-large on the header alone; others carry on', async () => {
      await start({ framing: { maxFrameBytes } });
      const good = await dial();
      const bad = await dial();
      await expectEcho(good.peer);

      // Only the header: a server that waited for the 1025-byte body would never close.
      bad.peer.write(header(maxFrameBytes + 1));
      expect(await closeOf(bad.session)).toEqual({ reason: 'frame-too-large', error: undefined });
      await bad.peer.waitClosed();
      expect(bad.peer.socket.bytesWritten).toBe(4);
      expect(bad.peer.packets).toEqual([]);

      expect(closes.has(good.session)).toBe(false);
      await expectEcho(good.peer);
      // A body of exactly maxFrameBytes (2-byte id + 1022) is still fine, both ways.
      await expectEcho(good.peer, Buffer.alloc(maxFrameBytes - 2, 7));
      expect(good.session.isOpen).toBe(true);
    });

    it('still handles the frames that came before the oversize header in the same chunk', async () => {
      await start({ framing: { maxFrameBytes } });
      const good = await dial();
      const bad = await dial();

      bad.peer.write(Buffer.concat([rawFrame(ECHO, Buffer.from('first')), header(maxFrameBytes + 1)]));
      expect((await closeOf(bad.session)).reason).toBe('frame-too-large');
      await bad.peer.waitClosed();
      expect(bad.peer.packets.map((p) => [p.id, p.payload.toString()])).toEqual([[ECHO, 'first']]);

      await expectEcho(good.peer);
    });
  });

  describe('an unknown packet id', () => {
    const UNKNOWN = 99;

    it('closes that session with unknown-packet by default; others carry on', async () => {
      await start();
      const good = await dial();
      const bad = await dial();

      bad.peer.sendPacket(UNKNOWN, Buffer.from('what is this'));
      expect(await closeOf(bad.session)).toEqual({ reason: 'unknown-packet', error: undefined });
      await bad.peer.waitClosed();
      expect(bad.peer.packets).toEqual([]);

      expect(closes.has(good.session)).toBe(false);
      await expectEcho(good.peer);
    });

    it("with onUnknownPacket 'ignore' keeps the session open and counts the packet", async () => {
      const s = await start({ onUnknownPacket: 'ignore' });
      const good = await dial();
      const odd = await dial();

      odd.peer.sendPacket(UNKNOWN, Buffer.from('ignored'));
      await expectEcho(odd.peer);
      odd.peer.sendPacket(UNKNOWN + 1, Buffer.alloc(0));
      await expectEcho(odd.peer);

      expect(s.stats().ignoredPackets).toBe(2);
      expect(odd.session.isOpen).toBe(true);
      expect(odd.peer.isClosed).toBe(false);
      expect(closes.size).toBe(0);
      await expectEcho(good.peer);
    });
  });

  describe('a payload that does not decode', () => {
    const SAY = 1;
    const SAID = 2;
    const codec = ProtobufCodec.loadSync(path.join(__dirname, '../fixtures/chat.proto'), {
      'chat.Say': SAY,
      'chat.Said': SAID,
    });
    let said = 0;

    async function startChat(): Promise<Server> {
      return start({ codec }, (s) =>
        s.handle('chat.Say', (_session, say: { text: string; room: number }) => ({ ...say, seq: ++said }), {
          reply: 'chat.Said',
        }),
      );
    }

    /** A well-formed Say gets its Said back. */
    async function expectSaid(peer: RawPeer, text: string): Promise<void> {
      const before = peer.packets.length;
      peer.sendPacket(SAY, codec.typeOf('chat.Say').encode({ text, room: 7 }).finish());
      const packets = await peer.waitForPackets(before + 1);
      expect(packets[before].id).toBe(SAID);
      expect(codec.typeOf('chat.Said').decode(packets[before].payload).toJSON()).toMatchObject({ text, room: 7 });
    }

    it.each([
      ['a field with wire type 7', [0x7f]],
      ['a string field whose length runs past the end', [0x0a, 0x50, 0x41]],
      ['a varint that never ends', [0x10, 0xff, 0xff]],
    ])('closes the session with decode-error for %s; others carry on', async (_what, bytes) => {
      await startChat();
      const good = await dial();
      const bad = await dial();
      await expectSaid(good.peer, 'before');

      bad.peer.sendPacket(SAY, Buffer.from(bytes));
      expect(await closeOf(bad.session, 3000)).toEqual({ reason: 'decode-error', error: undefined });
      await bad.peer.waitClosed();
      expect(bad.peer.packets).toEqual([]);

      expect(closes.has(good.session)).toBe(false);
      await expectSaid(good.peer, 'after');
    });

    it.each([
      ['0 bytes', Buffer.alloc(0)],
      ['1 byte', Buffer.from([ECHO])],
    ])('closes the session with decode-error for a body of %s, shorter than a packet id', async (_what, body) => {
      await start();
      const good = await dial();
      const bad = await dial();

      bad.peer.sendBody(body);
      // Over WebSocket the protocol finds it (close code 1007) and says why in the event's error.
      expect(await closeOf(bad.session)).toEqual({
        reason: 'decode-error',
        error: protocol === 'framed' ? undefined : expect.objectContaining({ code: 'WS_1007' }),
      });
      await bad.peer.waitClosed();

      expect(closes.has(good.session)).toBe(false);
      await expectEcho(good.peer);
    });
  });

  it('reports a peer that disconnects mid-frame as peer-closed and keeps serving others', async () => {
    const s = await start();
    const good = await dial();
    const bad = await dial();
    await expectEcho(good.peer);

    const bytesIn = s.stats().backend.bytesIn;
    const partial = Buffer.concat([bad.peer.messageHeader(100), Buffer.alloc(10, 1)]);
    bad.peer.write(partial);
    await waitFor(() => s.stats().backend.bytesIn >= bytesIn + partial.length, 'the partial frame to reach the server');
    // Nothing unread is left in the peer's receive queue, so this is a FIN, not a reset.
    bad.peer.destroy();

    expect(await closeOf(bad.session)).toEqual({ reason: 'peer-closed', error: undefined });
    expect(closes.has(good.session)).toBe(false);
    await expectEcho(good.peer);
  });

  describe('a slow reader', () => {
    const limits = { highWaterMarkBytes: 16 * 1024, lowWaterMarkBytes: 4 * 1024, maxQueueBytes: 256 * 1024 };

    it('is closed with backpressure once its queue would pass maxQueueBytes; others carry on', async () => {
      const FLOOD = 2;
      const chunk = Buffer.alloc(64 * 1024, 0xab);
      // 500 x 64 KiB is far more than loopback's kernel buffers and maxQueueBytes together.
      const maxSends = 500;
      const flood = { sends: 0, firstFalseAt: -1, thrown: undefined as unknown, done: false };

      await start({ limits }, (s) =>
        s.handle(FLOOD, (session) => {
          const sendOne = (): boolean => {
            const ok = session.send(FLOOD, chunk);
            if (!ok && flood.firstFalseAt < 0) flood.firstFalseAt = flood.sends;
            flood.sends++;
            return ok;
          };
          // Send until the high-water mark says stop, then keep pushing (as a careless game
          // loop would) one packet per timer tick until the session closes or the cap is hit.
          while (flood.sends < maxSends && sendOne());
          const tick = () => {
            if (!session.isOpen || flood.sends >= maxSends) {
              flood.done = true;
              return;
            }
            try {
              sendOne();
            } catch (err) {
              flood.thrown = err;
              flood.done = true;
              return;
            }
            setTimeout(tick, 1);
          };
          setTimeout(tick, 1);
        }),
      );
      const good = await dial();
      const slow = await dial();
      slow.peer.socket.pause();

      slow.peer.sendPacket(FLOOD, Buffer.alloc(0));
      expect(await closeOf(slow.session, 8000)).toEqual({ reason: 'backpressure', error: undefined });
      await waitFor(() => flood.done, 'the flood loop to stop');
      expect(flood.thrown).toBeUndefined();
      expect(flood.firstFalseAt).toBeGreaterThanOrEqual(0);
      expect(flood.firstFalseAt).toBeLessThan(flood.sends - 1);
      expect(flood.sends).toBeLessThan(maxSends);

      // The server reset the connection; a paused socket only notices once it reads again.
      slow.peer.socket.resume();
      await slow.peer.waitClosed();

      expect(closes.has(good.session)).toBe(false);
      await expectEcho(good.peer);
    });

    it('gets drain once it reads again, and then every packet, complete and in order', async () => {
      const START = 3;
      const DATA = 4;
      const payloadBytes = 32 * 1024;
      // The pump stops at this cap (64 MiB) if the peer's buffers somehow never fill; once
      // the server is held back, `total` is lowered to a bit more than what is queued then.
      const cap = 2048;
      let total = cap;
      const packet = (seq: number) => {
        const payload = Buffer.alloc(payloadBytes, seq & 0xff);
        payload.writeUInt32LE(seq, 0);
        return payload;
      };
      const pump = { next: 0, drains: 0, waiting: false, waitingSince: 0 };

      await start({ limits: { ...limits, maxQueueBytes: 64 * 1024 * 1024 } }, (s) =>
        s.handle(START, (session) => {
          const run = () => {
            pump.waiting = false;
            while (pump.next < total) {
              if (!session.send(DATA, packet(pump.next++))) {
                pump.waiting = true;
                pump.waitingSince = Date.now();
                return;
              }
            }
          };
          session.on('drain', () => {
            pump.drains++;
            run();
          });
          run();
        }),
      );
      const good = await dial();
      const slow = await dial();
      slow.peer.socket.pause();
      slow.peer.sendPacket(START, Buffer.alloc(0));

      // Wait until the kernel buffers are full and the server has been held at the
      // high-water mark for a while: no drain can come until the peer reads.
      await waitFor(
        () => pump.waiting && Date.now() - pump.waitingSince >= 300,
        'the server to be held at the high-water mark',
        8000,
      );
      const drainsBeforeResume = pump.drains;
      expect(pump.next).toBeLessThan(cap);
      total = pump.next + 100;
      await expectEcho(good.peer);

      slow.peer.socket.resume();
      const packets = await slow.peer.waitForPackets(total, 8000);
      expect(pump.drains).toBeGreaterThan(drainsBeforeResume);
      expect(packets.length).toBe(total);
      for (let seq = 0; seq < total; seq++) {
        const { id, payload } = packets[seq];
        if (id !== DATA || !payload.equals(packet(seq))) {
          throw new Error(`packet ${seq} is wrong: id ${id}, ${payload.length} bytes, seq ${payload.readUInt32LE(0)}`);
        }
      }
      expect(closes.size).toBe(0);
      expect(slow.session.isOpen).toBe(true);
    });
  });

  describe('a handler that fails', () => {
    const BOOM = 5;
    const boom = new Error('boom');
    type HandlerKind = 'sync throw' | 'async rejection' | 'sync throw behind middleware';
    const kinds: HandlerKind[] = ['sync throw', 'async rejection', 'sync throw behind middleware'];

    function startFailing(kind: HandlerKind, options: Omit<ServerOptions, 'backend'>) {
      const hooked: Array<{ error: unknown; ctx: FaultContext }> = [];
      const ready = start({ ...options, onError: (error, ctx) => hooked.push({ error, ctx }) }, (s) => {
        if (kind === 'sync throw behind middleware') s.use((_ctx, next) => next());
        s.handle(
          BOOM,
          kind === 'async rejection'
            ? async () => {
                await new Promise((resolve) => setImmediate(resolve));
                throw boom;
              }
            : () => {
                throw boom;
              },
        );
      });
      return { ready, hooked };
    }

    it.each(kinds)('%s: goes to onError, closes the session with handler-error; others carry on', async (kind) => {
      const { ready, hooked } = startFailing(kind, {});
      await ready;
      const good = await dial();
      const bad = await dial();

      bad.peer.sendPacket(BOOM, Buffer.from('payload'));
      expect(await closeOf(bad.session)).toEqual({ reason: 'handler-error', error: undefined });
      await bad.peer.waitClosed();

      expect(hooked).toHaveLength(1);
      expect(hooked[0].error).toBe(boom);
      expect(hooked[0].ctx.packet).toBe(BOOM);
      expect(hooked[0].ctx.packetId).toBe(BOOM);
      expect(hooked[0].ctx.session).toBe(bad.session);
      expect(Buffer.from(hooked[0].ctx.message as Buffer).toString()).toBe('payload');

      expect(closes.has(good.session)).toBe(false);
      await expectEcho(good.peer);
    });

    it.each(kinds)("%s with onHandlerError 'keep': goes to onError and the session keeps working", async (kind) => {
      const { ready, hooked } = startFailing(kind, { onHandlerError: 'keep' });
      await ready;
      const good = await dial();
      const bad = await dial();

      bad.peer.sendPacket(BOOM, Buffer.from('one'));
      await waitFor(() => hooked.length === 1, 'the error hook');
      await expectEcho(bad.peer);
      bad.peer.sendPacket(BOOM, Buffer.from('two'));
      await waitFor(() => hooked.length === 2, 'the error hook, again');
      await expectEcho(bad.peer);

      expect(hooked.map((h) => h.error)).toEqual([boom, boom]);
      expect(hooked.map((h) => h.ctx.packet)).toEqual([BOOM, BOOM]);
      expect(hooked.every((h) => h.ctx.session === bad.session)).toBe(true);
      expect(bad.session.isOpen).toBe(true);
      expect(bad.peer.isClosed).toBe(false);
      expect(closes.size).toBe(0);
      await expectEcho(good.peer);
    });
  });
});
