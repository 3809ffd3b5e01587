import { connect, createServer, type Server } from '../../src';
import { listen, matrix, target } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

describe.each(matrix)('per-session packet order on %s over %s', (backend, protocol) => {
  let server: Server;
  afterEach(() => server.close({ drainMs: 100 }));

  it('handles one session\'s packets in arrival order even when handlers are async', async () => {
    server = createServer({ backend });
    const handled: number[] = [];
    server.use(async (_ctx, next) => {
      await next();
    });
    server.handle(1, async (_session, bytes: Buffer) => {
      const n = bytes.readUInt32LE(0);
      // Earlier packets take longer: without ordering, later ones would finish first.
      await new Promise((resolve) => setTimeout(resolve, n % 2 === 0 ? 15 : 1));
      handled.push(n);
      return bytes;
    });
    const { port } = await listen(server, protocol);
    const client = await connect({ ...target(protocol, port), backend });
    const replies: number[] = [];
    client.handle(1, (_s, bytes: Buffer) => {
      replies.push(bytes.readUInt32LE(0));
    });
    for (let n = 0; n < 20; n++) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32LE(n);
      client.send(1, payload);
    }
    await waitFor(() => replies.length === 20, '20 replies');
    const expected = Array.from({ length: 20 }, (_, n) => n);
    expect(handled).toEqual(expected);
    expect(replies).toEqual(expected);
    await client.close();
  });

  it('does not make other sessions wait for one session\'s slow handler', async () => {
    server = createServer({ backend });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    server.handle(1, async () => {
      await gate;
    });
    server.handle(2, (_session, bytes: Buffer) => bytes);
    const { port } = await listen(server, protocol);
    const slow = await RawPeer.connect(port, { protocol });
    const quick = await RawPeer.connect(port, { protocol });
    slow.sendPacket(1, Buffer.alloc(0));
    slow.sendPacket(2, Buffer.from('after-slow'));
    quick.sendPacket(2, Buffer.from('quick'));
    await quick.waitForPackets(1);
    expect(slow.packets).toHaveLength(0);
    release();
    const [reply] = await slow.waitForPackets(1);
    expect(reply.payload.toString()).toBe('after-slow');
    slow.destroy();
    quick.destroy();
  });
});
