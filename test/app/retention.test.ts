import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createServer, type Server } from '../../src';
import { listen, matrix } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const DEADLINE_MS = 60_000;
const ECHO = 1;
const GATE = 2;
const HELD = 3;
const MiB = 1024 * 1024;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Buffer memory still reachable after a full collection. */
function liveBufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

/**
 * Packets that wait behind a session's pending async handler outlive the read
 * they arrived in. Each must keep only its own bytes alive, not the buffer of
 * everything received with it (on uring, one buffer per wake-up holds every
 * connection's bytes).
 */
describe.each(matrix)('memory held by waiting packets on %s over %s', (backend, protocol) => {
  let server: Server | undefined;
  const peers: RawPeer[] = [];

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await server?.close({ drainMs: 1000 });
    server = undefined;
  });

  it('keep only their own bytes, however much else arrived with them', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const held: string[] = [];
    server = createServer({ backend });
    server.handle(ECHO, (_s, bytes: Buffer) => bytes);
    server.handle(GATE, () => gate);
    server.handle(HELD, (_s, bytes: Buffer) => {
      held.push(bytes.toString());
    });
    const { port } = await listen(server, protocol);

    const connect = async () => {
      const peer = await RawPeer.connect(port, { protocol });
      peers.push(peer);
      return peer;
    };
    const waiting = await connect();
    const streamers = await Promise.all(Array.from({ length: 8 }, connect));
    const baseline = liveBufferBytes();

    waiting.sendPacket(GATE, Buffer.alloc(0));
    const HELD_COUNT = 200;
    const chunk = Buffer.alloc(48 * 1024, 7);
    let echoed = 0;
    for (let i = 0; i < HELD_COUNT; i++) {
      // Each held packet arrives beside a burst of other peers' bytes, in reads of its own.
      for (const peer of streamers) peer.sendPacket(ECHO, chunk);
      echoed += streamers.length;
      waiting.sendPacket(HELD, Buffer.from(`held-${i}`));
      await Promise.all(streamers.map((peer) => peer.waitForPackets(echoed / streamers.length, DEADLINE_MS)));
    }
    // Every held packet has reached the server (and waits) once its packet count says so.
    await waitFor(() => server!.stats().packetsIn === 1 + HELD_COUNT + echoed, 'every packet to arrive', DEADLINE_MS);
    for (const peer of streamers) peer.packets.length = 0;
    const whileHeld = liveBufferBytes() - baseline;
    // 200 packets of 8 bytes, plus what the peers' sockets and Node's buffer pool keep: far below one megabyte a packet.
    expect(whileHeld).toBeLessThan(16 * MiB);

    openGate();
    await waitFor(() => held.length === HELD_COUNT, 'the held packets to be handled', DEADLINE_MS);
    expect(held).toEqual(Array.from({ length: HELD_COUNT }, (_, i) => `held-${i}`));
  }, 2 * DEADLINE_MS);
});
