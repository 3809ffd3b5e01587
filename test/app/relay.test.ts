import { createServer, encodePacket, resolveFraming, type CloseReason, type Server, type Session } from '../../src';
import type { ProtocolName } from '../../src/protocol';
import { backends, listen, matrix, WS_PATH } from '../support/backends';
import { RawPeer, type RawPacket } from '../support/raw-peer';
import { waitFor } from '../support/wait';

// The server's `relay` option: a relayed packet from a session in a room
// goes to every other member, as it came, and to no handler. The native
// backends relay framed senders' packets in the reactor (native/relay.h);
// everything else (net, WebSocket senders) is relayed in JS. The cases
// below hold either way, on every backend, from either protocol.

const MOVE = 7; // relayed
const CHAT = 8; // handled
const framing = resolveFraming();

/** The payload a sender puts in its n-th packet: who and which, so order and origin can be checked. */
function payloadOf(sender: number, seq: number, size = 8): Buffer {
  const payload = Buffer.alloc(Math.max(size, 8), sender & 0xff);
  payload.writeUInt32LE(sender, 0);
  payload.writeUInt32LE(seq, 4);
  return payload;
}

/** The packets `peer` got from `sender`, as their sequence numbers, in arrival order. */
function seqsFrom(packets: RawPacket[], sender: number, id = MOVE): number[] {
  return packets.filter((p) => p.id === id && p.payload.length >= 8 && p.payload.readUInt32LE(0) === sender).map((p) => p.payload.readUInt32LE(4));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

interface Harness {
  server: Server;
  port: number;
  sessions: Session[];
  handled: Array<{ session: Session; id: number; payload: Buffer }>;
  closes: Map<Session, CloseReason>;
  peers: RawPeer[];
}

async function start(backend: (typeof backends)[number], protocol: ProtocolName, limits = {}, handled = [MOVE, CHAT]): Promise<Harness> {
  const server = createServer({ backend, relay: [MOVE], limits });
  const h: Harness = { server, port: 0, sessions: [], handled: [], closes: new Map(), peers: [] };
  server.on('session', (s) => h.sessions.push(s));
  server.on('sessionClose', (s, reason) => h.closes.set(s, reason));
  for (const id of handled) server.handle(id, (session, message: Buffer) => void h.handled.push({ session, id, payload: Buffer.from(message) }));
  ({ port: h.port } = await listen(server, protocol));
  return h;
}

/** Connects a peer speaking `protocol` and returns it with its server-side session. */
async function join(h: Harness, protocol: ProtocolName, port = h.port): Promise<[RawPeer, Session]> {
  const index = h.sessions.length;
  const peer = await RawPeer.connect(port, { protocol, path: WS_PATH });
  h.peers.push(peer);
  await waitFor(() => h.sessions.length > index, 'the server to accept the peer');
  return [peer, h.sessions[index]];
}

/** Connects peers one at a time, so the n-th session is the n-th peer's. */
async function joinAll(h: Harness, protocol: ProtocolName, count: number): Promise<Array<[RawPeer, Session]>> {
  const joined: Array<[RawPeer, Session]> = [];
  for (let i = 0; i < count; i++) joined.push(await join(h, protocol));
  return joined;
}

async function stop(h: Harness): Promise<void> {
  for (const peer of h.peers) peer.destroy();
  await h.server.close({ drainMs: 200 });
}

describe.each(matrix)('relay on %s over %s', (backend, protocol) => {
  let h: Harness;
  afterEach(() => stop(h));

  it('sends a relayed packet to every other member, in order, and to no handler', async () => {
    h = await start(backend, protocol);
    const members = await joinAll(h, protocol, 4);
    const room = h.server.room('match');
    for (const [, session] of members) room.join(session);
    const count = 300;
    for (let seq = 0; seq < count; seq++) {
      members.forEach(([peer], sender) => peer.sendPacket(MOVE, payloadOf(sender, seq)));
    }
    for (const [peer] of members) await peer.waitForPackets(3 * count, 15_000);
    members.forEach(([peer], me) => {
      expect(seqsFrom(peer.packets, me)).toEqual([]);
      for (let sender = 0; sender < members.length; sender++) {
        if (sender !== me) expect(seqsFrom(peer.packets, sender)).toEqual(range(count));
      }
      expect(peer.packets).toHaveLength(3 * count);
    });
    expect(h.handled).toHaveLength(0);
    const stats = h.server.stats();
    expect(stats.packetsIn).toBe(4 * count);
    expect(stats.packetsOut).toBe(4 * 3 * count);
    // The native backends relay framed senders' packets in the reactor; the rest is relayed in JS.
    expect(stats.backend.relayedPackets).toBe(backend !== 'net' && protocol === 'framed' ? 4 * count : 0);
  });

  it('hands a relayed packet from a session in no room to its handler, and relays again once it joins', async () => {
    h = await start(backend, protocol);
    const [a, sa] = await join(h, protocol);
    const [b, sb] = await join(h, protocol);
    a.sendPacket(MOVE, payloadOf(0, 0));
    await waitFor(() => h.handled.length === 1, 'the handler');
    expect(h.handled[0].session).toBe(sa);
    expect(h.handled[0].id).toBe(MOVE);

    const room = h.server.room('duel');
    room.join(sa);
    room.join(sb);
    a.sendPacket(MOVE, payloadOf(0, 1));
    a.sendPacket(CHAT, payloadOf(0, 2));
    await waitFor(() => h.handled.length === 2, 'the chat packet');
    await b.waitForPackets(1);
    expect(seqsFrom(b.packets, 0)).toEqual([1]);
    expect(h.handled.map((x) => x.id)).toEqual([MOVE, CHAT]);

    // Out of the room again: its packets are the handlers' once more, and b hears nothing.
    room.leave(sa);
    a.sendPacket(MOVE, payloadOf(0, 3));
    await waitFor(() => h.handled.length === 3, 'the handler after leaving');
    expect(h.handled[2].payload.readUInt32LE(4)).toBe(3);
    b.sendPacket(CHAT, payloadOf(1, 0));
    await waitFor(() => h.handled.length === 4, 'a packet behind it');
    expect(b.packets).toHaveLength(1);
    expect(a.packets).toHaveLength(0);
  });

  it('drops a relayed packet without a handler from a session in no room, and keeps the session', async () => {
    h = await start(backend, protocol, {}, [CHAT]);
    const [peer, session] = await join(h, protocol);
    peer.sendPacket(MOVE, payloadOf(0, 0));
    peer.sendPacket(CHAT, payloadOf(0, 1));
    await waitFor(() => h.handled.length === 1, 'the chat packet behind it');
    expect(h.server.stats().ignoredPackets).toBe(1);
    expect(session.isOpen).toBe(true);
  });

  it('keeps a relayed packet to its own room, and follows a member that moves', async () => {
    h = await start(backend, protocol);
    const peers = await joinAll(h, protocol, 4);
    const [red, blue] = [h.server.room('red'), h.server.room('blue')];
    red.join(peers[0][1]);
    red.join(peers[1][1]);
    blue.join(peers[2][1]);
    blue.join(peers[3][1]);
    peers[0][0].sendPacket(MOVE, payloadOf(0, 0));
    peers[2][0].sendPacket(MOVE, payloadOf(2, 0));
    await peers[1][0].waitForPackets(1);
    await peers[3][0].waitForPackets(1);
    expect(seqsFrom(peers[1][0].packets, 0)).toEqual([0]);
    expect(seqsFrom(peers[3][0].packets, 2)).toEqual([0]);

    blue.join(peers[1][1]);
    peers[0][0].sendPacket(MOVE, payloadOf(0, 1)); // alone in red now: nobody hears it
    peers[2][0].sendPacket(MOVE, payloadOf(2, 1));
    await peers[1][0].waitForPackets(2);
    await peers[3][0].waitForPackets(2);
    expect(seqsFrom(peers[1][0].packets, 2)).toEqual([1]);
    expect(seqsFrom(peers[1][0].packets, 0)).toEqual([0]);
    expect(h.handled).toHaveLength(0);
  });

  it('closes a member that stops reading with backpressure, and the rest of the room carries on', async () => {
    h = await start(backend, protocol, { maxQueueBytes: 1024 * 1024, highWaterMarkBytes: 256 * 1024, lowWaterMarkBytes: 64 * 1024 });
    const [sender, ss] = await join(h, protocol);
    const [reader, rs] = await join(h, protocol);
    const [stalled, stalledSession] = await join(h, protocol);
    const room = h.server.room('flood');
    for (const s of [ss, rs, stalledSession]) room.join(s);
    stalled.socket.pause();
    // 64 KiB at a time, each once the reader has the last: the reader's
    // queue stays small while the stalled member's socket buffers, then its
    // queue, fill. 64 MiB is many times what they hold.
    const step = 64;
    let sent = 0;
    while (!h.closes.has(stalledSession) && sent < 64 * 1024) {
      for (let k = 0; k < step; k++) sender.sendPacket(MOVE, payloadOf(0, sent++, 1024));
      await reader.waitForPackets(sent, 15_000);
    }
    expect(h.closes.get(stalledSession)).toBe('backpressure');
    expect(seqsFrom(reader.packets, 0)).toEqual(range(sent));
    expect(h.closes.has(ss)).toBe(false);
    expect(h.closes.has(rs)).toBe(false);
  });

  it('counts relayed packets as signs of life: a player who only relays is not idle', async () => {
    // Sixty times the send interval: a stalled loop (Wine, a loaded machine) does not make the sender look idle.
    const idleTimeoutMs = 3000;
    h = await start(backend, protocol, { idleTimeoutMs });
    const [sender, ss] = await join(h, protocol);
    const [reader, rs] = await join(h, protocol);
    const room = h.server.room('idle');
    room.join(ss);
    room.join(rs);
    // The reader answers on a chat packet now and then, so only the sender's silence would be idle.
    let seq = 0;
    const timer = setInterval(() => {
      sender.sendPacket(MOVE, payloadOf(0, seq++));
      reader.sendPacket(CHAT, payloadOf(1, seq));
    }, 50);
    try {
      // 130 packets 50 ms apart span two idle timeouts at the least.
      await reader.waitForPackets(130, 30_000);
    } finally {
      clearInterval(timer);
    }
    expect(h.closes.has(ss)).toBe(false);
    expect(ss.isOpen).toBe(true);
  });
});

describe.each(backends)('relay on %s, framed senders byte by byte', (backend) => {
  let h: Harness;
  afterEach(() => stop(h));

  it('relays frames split at every byte, and frames larger than a read, whole and in order with handled ones', async () => {
    h = await start(backend, 'framed');
    const [sender, ss] = await join(h, 'framed');
    const [reader, rs] = await join(h, 'framed');
    const room = h.server.room('split');
    room.join(ss);
    room.join(rs);
    const big = payloadOf(0, 1, 300 * 1024);
    const frames = [
      encodePacket(MOVE, payloadOf(0, 0), framing),
      encodePacket(CHAT, payloadOf(0, 100), framing),
      encodePacket(MOVE, big, framing),
      encodePacket(MOVE, payloadOf(0, 2, 2), framing),
      encodePacket(CHAT, payloadOf(0, 101), framing),
      encodePacket(MOVE, payloadOf(0, 3), framing),
    ];
    const bytes = Buffer.concat(frames);
    // The first 200 bytes one at a time, each its own write, then the rest at once.
    for (let at = 0; at < 200; at++) {
      await new Promise<void>((resolve) => sender.socket.write(bytes.subarray(at, at + 1), () => resolve()));
    }
    sender.socket.write(bytes.subarray(200));
    await reader.waitForPackets(4, 15_000);
    await waitFor(() => h.handled.length === 2, 'the chat packets');
    expect(seqsFrom(reader.packets, 0)).toEqual([0, 1, 2, 3]);
    expect(reader.packets[1].payload.equals(big)).toBe(true);
    expect(h.handled.map((x) => x.payload.readUInt32LE(4))).toEqual([100, 101]);
  });

  afterEach(() => {
    delete process.env.RINGPORT_RELAY;
  });

  // RINGPORT_RELAY=js leaves relaying to the JS path, the reference: both must give the same bytes.
  it.each(['reactor', 'js'])('splits a random stream of relayed and handled frames, cut at random places, exactly as sent (relay in %s)', async (mode) => {
    if (mode === 'js') process.env.RINGPORT_RELAY = 'js';
    h = await start(backend, 'framed');
    const [sender, ss] = await join(h, 'framed');
    const [reader, rs] = await join(h, 'framed');
    const room = h.server.room('random');
    room.join(ss);
    room.join(rs);
    // A fixed seed, so a failure can be replayed.
    let seed = 0x2545f491;
    const random = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const relayed: Buffer[] = [];
    const handled: Buffer[] = [];
    const frames: Buffer[] = [];
    for (let k = 0; k < 400; k++) {
      const size = random(10) === 0 ? 8 + random(80_000) : 8 + random(300);
      const payload = payloadOf(0, k, size);
      const id = random(3) === 0 ? CHAT : MOVE;
      (id === MOVE ? relayed : handled).push(payload);
      frames.push(encodePacket(id, payload, framing));
    }
    const bytes = Buffer.concat(frames);
    // Writes of 1 byte to 8 KiB, each handed to the socket before the next, so the server's reads end anywhere.
    for (let at = 0; at < bytes.length; ) {
      const length = Math.min(bytes.length - at, random(4) === 0 ? 1 + random(7) : 1 + random(8192));
      await new Promise<void>((resolve) => sender.socket.write(bytes.subarray(at, at + length), () => resolve()));
      at += length;
    }
    await reader.waitForPackets(relayed.length, 30_000);
    await waitFor(() => h.handled.length === handled.length, 'the handled frames', 30_000);
    expect(reader.packets.map((p) => p.id)).toEqual(relayed.map(() => MOVE));
    expect(reader.packets.every((p, k) => p.payload.equals(relayed[k]))).toBe(true);
    expect(h.handled.every((x, k) => x.payload.equals(handled[k]))).toBe(true);
    expect(h.closes.size).toBe(0);
    expect(h.server.stats().backend.relayedPackets).toBe(mode === 'reactor' && backend !== 'net' ? relayed.length : 0);
  });

  it('relays a frame of its packet id alone, dripped a byte per write, with nothing after it', async () => {
    h = await start(backend, 'framed');
    const [sender, ss] = await join(h, 'framed');
    const [reader, rs] = await join(h, 'framed');
    const room = h.server.room('empty');
    room.join(ss);
    room.join(rs);
    const bytes = Buffer.concat([encodePacket(MOVE, Buffer.alloc(0), framing), encodePacket(MOVE, Buffer.alloc(0), framing)]);
    const readsBefore = h.server.stats().backend.reads;
    for (let at = 0; at < bytes.length; at++) {
      await new Promise<void>((resolve) => sender.socket.write(bytes.subarray(at, at + 1), () => resolve()));
      // Each byte read on its own: its read is counted (even one that completes nothing) before the next is sent.
      await waitFor(() => h.server.stats().backend.reads >= readsBefore + at + 1, 'the byte to be read', 15_000);
    }
    await reader.waitForPackets(2, 15_000);
    expect(reader.packets.map((p) => [p.id, p.payload.length])).toEqual([[MOVE, 0], [MOVE, 0]]);
  });

  it('survives senders of random bytes: the room goes on hearing a well-behaved member', async () => {
    h = await start(backend, 'framed');
    const [good, sg] = await join(h, 'framed');
    const [reader, rs] = await join(h, 'framed');
    const room = h.server.room('fuzz');
    room.join(sg);
    room.join(rs);
    let seed = 0x1b873593;
    const random = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const byteOf = (): number => random(256);
    // Each fuzzer starts with valid relayed frames, then turns to noise that may or may not look like frames.
    const fuzzers: Array<[RawPeer, Session]> = [];
    for (let f = 0; f < 6; f++) {
      const joined = await join(h, 'framed');
      room.join(joined[1]);
      fuzzers.push(joined);
      const valid = Buffer.concat([encodePacket(MOVE, payloadOf(10 + f, 0), framing), encodePacket(MOVE, payloadOf(10 + f, 1), framing)]);
      const noise = Buffer.from(Array.from({ length: 2000 + random(20_000) }, byteOf));
      // Some noise begins with a plausible head: a small length and the relayed id.
      if (f % 2 === 0) noise.writeUInt32LE(random(64), 0), noise.writeUInt16LE(MOVE, 4);
      const stream = Buffer.concat([valid, noise]);
      for (let at = 0; at < stream.length; ) {
        const length = Math.min(stream.length - at, 1 + random(3000));
        joined[0].write(stream.subarray(at, at + length));
        at += length;
      }
    }
    for (let seq = 0; seq < 50; seq++) good.sendPacket(MOVE, payloadOf(0, seq));
    await waitFor(() => seqsFrom(reader.packets, 0).length === 50, "the good member's packets", 15_000);
    expect(seqsFrom(reader.packets, 0)).toEqual(range(50));
    // What each fuzzer sent before its noise reached the room whole, in order.
    for (let f = 0; f < 6; f++) expect(seqsFrom(reader.packets, 10 + f).slice(0, 2)).toEqual([0, 1]);
    expect(h.closes.has(sg)).toBe(false);
    expect(h.closes.has(rs)).toBe(false);
    // The server still serves: a new member joins and hears the good one.
    const [late, sl] = await join(h, 'framed');
    room.join(sl);
    good.sendPacket(MOVE, payloadOf(0, 50));
    await waitFor(() => seqsFrom(late.packets, 0).length === 1, 'a packet to the late member', 15_000);
  });

  it('closes a sender whose frame is too large or too short, after relaying what came before, and only it', async () => {
    h = await start(backend, 'framed');
    const [bad, sb] = await join(h, 'framed');
    const [short, sshort] = await join(h, 'framed');
    const [reader, rs] = await join(h, 'framed');
    const room = h.server.room('bad');
    for (const s of [sb, sshort, rs]) room.join(s);
    const tooLarge = Buffer.alloc(4);
    tooLarge.writeUInt32LE(framing.maxFrameBytes + 1);
    bad.write(Buffer.concat([encodePacket(MOVE, payloadOf(0, 0), framing), encodePacket(MOVE, payloadOf(0, 1), framing), tooLarge]));
    short.write(Buffer.concat([encodePacket(MOVE, payloadOf(1, 0), framing), Buffer.from([1, 0, 0, 0, 7])]));
    await waitFor(() => h.closes.has(sb) && h.closes.has(sshort), 'both senders to be closed');
    expect(h.closes.get(sb)).toBe('frame-too-large');
    expect(h.closes.get(sshort)).toBe('decode-error');
    await reader.waitForPackets(3);
    expect(seqsFrom(reader.packets, 0)).toEqual([0, 1]);
    expect(seqsFrom(reader.packets, 1)).toEqual([0]);
    expect(h.closes.has(rs)).toBe(false);
  });
});

describe.each(backends)('relay on %s, two servers on one thread', (backend) => {
  let h: Harness;
  let other: Harness;
  afterEach(async () => {
    await stop(h);
    await stop(other);
  });

  it('keeps each server\'s rooms to itself, though the two share a reactor', async () => {
    h = await start(backend, 'framed');
    other = await start(backend, 'framed');
    const [a, sa] = await join(h, 'framed');
    const [b, sb] = await join(h, 'framed');
    const [c, sc] = await join(other, 'framed');
    const [d, sd] = await join(other, 'framed');
    // The first room of each server: both would be group 1 if each counted its own.
    h.server.room('one').join(sa);
    h.server.room('one').join(sb);
    other.server.room('one').join(sc);
    other.server.room('one').join(sd);
    a.sendPacket(MOVE, payloadOf(0, 0));
    c.sendPacket(MOVE, payloadOf(2, 0));
    await b.waitForPackets(1);
    await d.waitForPackets(1);
    b.sendPacket(CHAT, payloadOf(1, 0));
    d.sendPacket(CHAT, payloadOf(3, 0));
    await waitFor(() => h.handled.length === 1 && other.handled.length === 1, 'a packet behind them');
    expect(seqsFrom(b.packets, 0)).toEqual([0]);
    expect(seqsFrom(d.packets, 2)).toEqual([0]);
    expect([a, b, c, d].map((p) => p.packets.length)).toEqual([0, 1, 0, 1]);
  });
});

describe.each(backends)('relay on %s, a room of framed and WebSocket players', (backend) => {
  let h: Harness;
  afterEach(() => stop(h));

  it('relays between framed and WebSocket members both ways, small packets and large', async () => {
    h = await start(backend, 'framed');
    const ws = await h.server.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: WS_PATH });
    const [tcp, st] = await join(h, 'framed');
    const [tcp2, st2] = await join(h, 'framed');
    const [web, sw] = await join(h, 'websocket', ws.port);
    const room = h.server.room('mixed');
    for (const s of [st, st2, sw]) room.join(s);
    const sizes = [8, 125, 126, 200, 65_535, 70_000];
    sizes.forEach((size, seq) => tcp.sendPacket(MOVE, payloadOf(0, seq, size)));
    sizes.forEach((size, seq) => web.sendPacket(MOVE, payloadOf(2, seq, size)));
    await web.waitForPackets(sizes.length, 15_000);
    await tcp.waitForPackets(sizes.length, 15_000);
    await tcp2.waitForPackets(2 * sizes.length, 15_000);
    expect(seqsFrom(web.packets, 0)).toEqual(range(sizes.length));
    expect(web.packets.map((p) => p.payload.length)).toEqual(sizes);
    expect(web.packets[4].payload.equals(payloadOf(0, 4, 65_535))).toBe(true);
    expect(seqsFrom(tcp.packets, 2)).toEqual(range(sizes.length));
    expect(seqsFrom(tcp2.packets, 0)).toEqual(range(sizes.length));
    expect(seqsFrom(tcp2.packets, 2)).toEqual(range(sizes.length));
    expect(h.handled).toHaveLength(0);
  });
});
