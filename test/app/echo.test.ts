import { connect, createServer, type Client, type Server } from '../../src';
import { listen, matrix, target } from '../support/backends';
import { RawPeer } from '../support/raw-peer';

describe.each(matrix)('raw packets on %s over %s', (backend, protocol) => {
  let server: Server;
  let port: number;

  beforeEach(async () => {
    server = createServer({ backend });
    server.handle(1, (session, bytes: Buffer) => {
      session.send(1, bytes);
    });
    server.handle(2, (_session, bytes: Buffer) => Buffer.concat([Buffer.from('re:'), bytes]));
    ({ port } = await listen(server, protocol));
  });

  afterEach(() => server.close({ drainMs: 100 }));

  it('echoes packets to a raw peer byte for byte', async () => {
    const peer = await RawPeer.connect(port, { protocol });
    peer.sendPacket(1, Buffer.from('hello'));
    peer.sendPacket(1, Buffer.alloc(0));
    const packets = await peer.waitForPackets(2);
    expect(packets.map((p) => [p.id, p.payload.toString()])).toEqual([
      [1, 'hello'],
      [1, ''],
    ]);
    peer.destroy();
  });

  it('sends a returned value back as the reply', async () => {
    const client: Client = await connect({ ...target(protocol, port), backend });
    const replies: string[] = [];
    client.handle(2, (_s, bytes: Buffer) => {
      replies.push(bytes.toString());
    });
    client.send(2, Buffer.from('ping'));
    await new Promise<void>((resolve) => client.handle(2, (_s, bytes: Buffer) => {
      replies.push(bytes.toString());
      resolve();
    }));
    expect(replies).toEqual(['re:ping']);
    await client.close();
  });
});
