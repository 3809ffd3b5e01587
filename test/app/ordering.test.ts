import { connect, createServer, type Server } from '../../src';
import { backends } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

describe.each(backends)('per-session packet order on %s', (backend) => {
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
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const client = await connect({ port, backend });
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
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const slow = await RawPeer.connect(port);
    const quick = await RawPeer.connect(port);
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
