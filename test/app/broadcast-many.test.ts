import { createServer, type Server, type Session } from '../../src';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

// More recipients than broadcast()'s first scratch array holds (64, doubled as
// needed), so the array grows in the middle of a broadcast, several times.
const PEERS = 1500;
const ROUNDS = 5;

describe.each(matrix)(`broadcast to ${PEERS} sessions on %s over %s`, (backend, protocol) => {
  let server: Server;
  let peers: RawPeer[] = [];

  afterEach(async () => {
    for (const peer of peers) peer.socket.destroy();
    peers = [];
    await server.close({ drainMs: 500 });
  });

  it(`reaches each of ${PEERS} sessions exactly once per broadcast, in order, and skips the excepted one`, async () => {
    server = createServer({ backend });
    const sessions: Session[] = [];
    server.on('session', (session) => sessions.push(session));
    const { port } = await listen(server, protocol);
    for (let i = 0; i < PEERS; i += 100) {
      peers.push(...(await Promise.all(Array.from({ length: Math.min(100, PEERS - i) }, () => RawPeer.connect(port, { protocol })))));
    }
    await waitFor(() => sessions.length === PEERS, `${PEERS} sessions`, 10_000);

    const excepted = sessions[PEERS - 1];
    for (let round = 0; round < ROUNDS; round++) {
      const sent = server.broadcast(7, Buffer.from([round]), { except: round === 0 ? excepted : undefined });
      expect(sent).toBe(round === 0 ? PEERS - 1 : PEERS);
    }

    const excludedPeer = peers.find((p) => p.socket.localPort === excepted.remotePort)!;
    await waitFor(
      () => peers.every((p) => p.packets.length === (p === excludedPeer ? ROUNDS - 1 : ROUNDS)),
      'every broadcast at every peer',
      10_000,
    );
    for (const peer of peers) {
      expect(peer.packets.every((p) => p.id === 7)).toBe(true);
      expect(peer.packets.map((p) => p.payload[0])).toEqual(peer === excludedPeer ? [1, 2, 3, 4] : [0, 1, 2, 3, 4]);
    }
  }, 30_000);
});
