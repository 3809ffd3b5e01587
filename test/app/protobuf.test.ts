import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import {
  connect,
  createServer,
  ErrorCodes,
  ProtobufCodec,
  RingportError,
  type Client,
  type Server,
  type Session,
} from '../../src';
import { listen, matrix, target } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { nextEvent, waitFor } from '../support/wait';

const PROTO = path.join(__dirname, '../fixtures/game.proto');
// protobufjs's lookupType takes both 'Join' and 'game.Join'; the suites use the
// qualified names, which cannot collide with a type of another package.
const PACKETS = { 'game.Join': 1, 'game.Joined': 2, 'game.Chat': 3, 'game.Tick': 4 };

interface Join {
  room: string;
  name: string;
}
interface Chat {
  from: string;
  text: string;
  seq: number;
}

/** Runs `fn` and returns what it threw (failing the test if it did not throw). */
function thrown(fn: () => unknown): RingportError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RingportError);
    return err as RingportError;
  }
  throw new Error('expected a RingportError, nothing was thrown');
}

describe('ProtobufCodec construction', () => {
  const root = protobuf.loadSync(PROTO);

  it('maps message types to packet ids both ways', () => {
    const codec = new ProtobufCodec(root, PACKETS);
    expect(codec.idOf('game.Chat')).toBe(3);
    expect(codec.idOf(3)).toBe(3);
    expect(codec.keyOf(3)).toBe('game.Chat');
    expect(codec.typeOf('game.Tick').fullName).toBe('.game.Tick');
  });

  it('loads .proto files asynchronously too', async () => {
    const codec = await ProtobufCodec.load(PROTO, { 'game.Chat': 9 });
    const bytes = codec.encode(9, { from: 'ada', text: 'hi', seq: 1 });
    expect(codec.decode(9, Buffer.from(bytes))).toMatchObject({ from: 'ada', text: 'hi', seq: 1 });
  });

  it('rejects one id given to two types with RP_ERR_INVALID_ARGUMENT', () => {
    const err = thrown(() => new ProtobufCodec(root, { 'game.Join': 1, 'game.Chat': 1 }));
    expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('rejects a type that is not in the .proto with RP_ERR_INVALID_ARGUMENT', () => {
    expect(thrown(() => new ProtobufCodec(root, { 'game.Join': 1, 'game.Leave': 2 })).code).toBe(
      ErrorCodes.INVALID_ARGUMENT,
    );
    expect(thrown(() => ProtobufCodec.loadSync(PROTO, { Nope: 1 })).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    // A package is not a message type.
    expect(thrown(() => new ProtobufCodec(root, { game: 1 })).code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('rejects ids outside 0..65535 with RP_ERR_INVALID_ARGUMENT', () => {
    for (const id of [-1, 65536, 1.5, Number.NaN]) {
      expect(thrown(() => new ProtobufCodec(root, { 'game.Join': id })).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
    expect(() => new ProtobufCodec(root, { 'game.Join': 0, 'game.Chat': 65535 })).not.toThrow();
  });
});

describe.each(matrix)('protobuf packets on %s over %s', (backend, protocol) => {
  const codec = ProtobufCodec.loadSync(PROTO, PACKETS);
  let server: Server;
  let port: number;
  let accepted: Session[];
  let client: Client | undefined;
  let peer: RawPeer | undefined;

  beforeEach(async () => {
    server = createServer({ backend, codec });
    accepted = [];
    server.on('session', (session) => accepted.push(session));
    server.handle<Join>('game.Join', (_session, join) => ({ room: join.room, members: join.name.length }), {
      reply: 'game.Joined',
    });
    server.handle('game.Chat', (_session, chat) => chat);
    server.handle('game.Tick', (_session, tick) => tick);
    ({ port } = await listen(server, protocol));
  });

  afterEach(async () => {
    peer?.destroy();
    peer = undefined;
    await client?.close();
    client = undefined;
    await server.close({ drainMs: 500 });
  });

  /** Connects a client that collects every packet it gets as a plain object with defaults filled in. */
  async function connectCollecting(): Promise<{ client: Client; received: Array<[string, Record<string, unknown>]> }> {
    const c = await connect({ ...target(protocol, port), backend, codec });
    client = c;
    const received: Array<[string, Record<string, unknown>]> = [];
    for (const name of ['game.Joined', 'game.Chat', 'game.Tick']) {
      c.handle(name, (_s, message) => {
        received.push([name, codec.typeOf(name).toObject(message, { defaults: true, arrays: true })]);
      });
    }
    return { client: c, received };
  }

  it('round-trips several message types through a real server and client', async () => {
    const { client: c, received } = await connectCollecting();
    c.send('game.Join', { room: 'arena-1', name: 'ada' });
    c.send('game.Chat', { from: 'ada', text: 'héllo 🎮, "quotes" and\nnewlines', seq: 4294967295 });
    c.send('game.Chat', {});
    c.send('game.Tick', {
      seq: 12,
      players: [
        { id: 1, x: 1.5, y: -2.25 },
        { id: 2, x: 0, y: 1024 },
      ],
    });
    c.send('game.Tick', { seq: 13, players: [] });
    await waitFor(() => received.length === 5, 'five replies');

    expect(received).toEqual([
      ['game.Joined', { room: 'arena-1', members: 3 }],
      ['game.Chat', { from: 'ada', text: 'héllo 🎮, "quotes" and\nnewlines', seq: 4294967295 }],
      ['game.Chat', { from: '', text: '', seq: 0 }],
      [
        'game.Tick',
        {
          seq: 12,
          players: [
            { id: 1, x: 1.5, y: -2.25 },
            { id: 2, x: 0, y: 1024 },
          ],
        },
      ],
      ['game.Tick', { seq: 13, players: [] }],
    ]);
  });

  it('carries floats at float32 precision', async () => {
    const { client: c, received } = await connectCollecting();
    c.send('game.Tick', { seq: 1, players: [{ id: 1, x: 0.1, y: 12345.678 }] });
    await waitFor(() => received.length === 1, 'the reply');
    const [pos] = received[0][1].players as Array<{ x: number; y: number }>;
    expect(pos.x).toBe(Math.fround(0.1));
    expect(pos.y).toBe(Math.fround(12345.678));
  });

  it('puts the mapped packet id and the protobuf encoding on the wire', async () => {
    peer = await RawPeer.connect(port, { protocol });
    const Join = codec.typeOf('game.Join');
    const Joined = codec.typeOf('game.Joined');
    peer.sendPacket(1, Join.encode({ room: 'lobby', name: 'grace' }).finish());
    const [packet] = await peer.waitForPackets(1);
    expect(packet.id).toBe(2);
    expect(Joined.toObject(Joined.decode(packet.payload))).toEqual({ room: 'lobby', members: 5 });
  });

  it('throws RP_ERR_ENCODE for a message that does not fit its type, and the session stays open', async () => {
    const { client: c, received } = await connectCollecting();
    await waitFor(() => accepted.length === 1, 'the server to accept');
    const session = accepted[0];

    expect(thrown(() => c.send('game.Tick', { seq: 'abc' })).code).toBe(ErrorCodes.ENCODE);
    expect(thrown(() => c.send('game.Chat', { text: 42 })).code).toBe(ErrorCodes.ENCODE);
    expect(thrown(() => c.send('game.Tick', { seq: 1, players: [{ id: 1, x: 'left' }] })).code).toBe(ErrorCodes.ENCODE);
    expect(thrown(() => session.send('game.Chat', { seq: 1.5 })).code).toBe(ErrorCodes.ENCODE);
    expect(thrown(() => server.broadcast('game.Tick', { players: 'none' })).code).toBe(ErrorCodes.ENCODE);
    expect(c.session.isOpen).toBe(true);
    expect(session.isOpen).toBe(true);

    // Nothing half-encoded went out: the next packets arrive whole and first.
    c.send('game.Chat', { from: 'ada', text: 'still here', seq: 1 });
    session.send('game.Tick', { seq: 2, players: [] });
    await waitFor(() => received.length === 2, 'two packets');
    expect(received).toEqual(
      expect.arrayContaining([
        ['game.Chat', { from: 'ada', text: 'still here', seq: 1 }],
        ['game.Tick', { seq: 2, players: [] }],
      ]),
    );
    expect(server.sessions.size).toBe(1);
  });

  it('throws RP_ERR_ENCODE for integers outside the range of uint32', async () => {
    const { client: c } = await connectCollecting();
    // A negative or too-large seq must not reach the peer as a different number.
    expect(thrown(() => c.send('game.Tick', { seq: -1 })).code).toBe(ErrorCodes.ENCODE);
    expect(thrown(() => c.send('game.Chat', { seq: 2 ** 32 })).code).toBe(ErrorCodes.ENCODE);
  });

  it('throws RP_ERR_UNKNOWN_PACKET for a packet the codec does not map', async () => {
    const { client: c } = await connectCollecting();
    await waitFor(() => accepted.length === 1, 'the server to accept');
    expect(thrown(() => c.send('game.Nope', {})).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    // In the .proto, but not given a packet id.
    expect(thrown(() => c.send('game.Pos', { id: 1 })).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    expect(thrown(() => c.send(99, {})).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    expect(thrown(() => accepted[0].send('Chat', {})).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    expect(thrown(() => server.broadcast('game.Leave', {})).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    expect(thrown(() => server.handle('game.Leave', () => undefined)).code).toBe(ErrorCodes.UNKNOWN_PACKET);
    expect(c.session.isOpen).toBe(true);
  });

  it('closes only the session whose payload does not decode, with reason decode-error', async () => {
    const { client: c, received } = await connectCollecting();
    peer = await RawPeer.connect(port, { protocol });
    // The client dialled first, so its session was accepted first.
    await waitFor(() => accepted.length === 2, 'both sessions');
    const closed = nextEvent<[Session, string]>(server, 'sessionClose');
    // The tag of field 3 (seq, a varint) with the varint cut off.
    peer.sendPacket(3, Buffer.from([0x18]));
    const [session, reason] = await closed;
    expect(reason).toBe('decode-error');
    await peer.waitClosed();
    expect(session === accepted[1]).toBe(true);
    expect(accepted[0].isOpen).toBe(true);

    c.send('game.Chat', { from: 'ada', text: 'unaffected', seq: 3 });
    await waitFor(() => received.length === 1, 'the echo');
    expect(received[0]).toEqual(['game.Chat', { from: 'ada', text: 'unaffected', seq: 3 }]);
  });
});
