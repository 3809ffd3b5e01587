import { createServer, type CloseReason, type Server, type Session } from '../../src';
import { backends } from '../support/backends';
import { cleanupAfterEach, DEADLINE_MS, KiB, onWindows, seeded } from '../support/chaos-harness';
import { dial, describeEnd, SequenceReader } from '../support/chaos-peers';
import { within } from '../support/stress-wait';
import { waitFor } from '../support/wait';

/**
 * Scenario 8: a graceful drain that begins in the middle of a broadcast.
 * The server broadcasts numbered packets to every peer, turn after turn;
 * `server.close({ drainMs })` begins right after one of those broadcasts, in
 * the same tick (so the last packets are still in this tick's unflushed
 * sends), and the broadcast timer keeps calling `broadcast` for a while
 * after. Every peer must receive the numbers 0..k with no hole and no
 * repeat, where k is everything broadcast before the close (drainMs is far
 * beyond what the queues need), and then a clean end, and every session
 * must close with `shutdown`.
 */

const TICK = 8;
/** Wine's loopback is several times slower: fewer peers there. */
const PEERS = onWindows ? 30 : 100;
const BURST = 8;
const PAYLOAD_BYTES = KiB;
/** Packets a peer may be behind before the broadcaster waits: 256 KiB, far under maxQueueBytes. */
const WINDOW = 256;

describe.each(backends)('chaos: graceful drain mid-broadcast on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: drain mid-broadcast`);

  it(`every peer gets a gap-free prefix of the broadcast, then a clean end [${label}]`, async () => {
    const server: Server = createServer({ backend });
    cleanups.push(() => server.close({ drainMs: 100 }));
    const reasons = new Map<Session, CloseReason>();
    server.on('sessionClose', (session, reason) => reasons.set(session, reason));
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const readers = await Promise.all(
      Array.from({ length: PEERS }, async (_, i) => {
        const raw = await dial(port);
        cleanups.push(() => raw.socket.destroy());
        return new SequenceReader(raw, TICK, `peer ${i}`);
      }),
    );
    await waitFor(() => server.sessions.size === PEERS, `${PEERS} sessions`, DEADLINE_MS);

    // The close begins after a seeded number of packets, within a burst's tick.
    const closeAfter = rng.int(500, 3000);
    let sent = 0;
    let closing: Promise<void> | undefined;
    let recipientsAfterClose = 0;
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x42);
    const slowest = () => Math.min(...readers.map((r) => r.next));
    await new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        try {
          if (closing !== undefined) {
            // Broadcasting while the drain runs must neither throw nor reach anyone.
            payload.writeUInt32LE(sent, 0);
            recipientsAfterClose += server.broadcast(TICK, payload);
            if (--afterTurns > 0) setImmediate(turn);
            else resolve();
            return;
          }
          if (slowest() >= sent - WINDOW) {
            for (let k = 0; k < BURST; k++) {
              payload.writeUInt32LE(sent++, 0);
              server.broadcast(TICK, payload);
              if (sent === closeAfter) {
                closing = server.close({ drainMs: DEADLINE_MS });
                break;
              }
            }
          }
          setImmediate(turn);
        } catch (err) {
          reject(err);
        }
      };
      let afterTurns = 50;
      turn();
    });
    expect(recipientsAfterClose).toBe(0);
    expect(await within(closing!, 2 * DEADLINE_MS)).not.toBe('timeout');
    for (const reader of readers) {
      if ((await within(reader.raw.closed, DEADLINE_MS)) === 'timeout') report.fail(`${reader.name} was never closed`);
      const end = reader.raw.end;
      if (reader.failure !== undefined) report.fail(reader.failure);
      else if (reader.next !== sent) report.fail(`${reader.name} got 0..${reader.next - 1} of the ${sent} packets broadcast before the close`);
      if (!end.ended || end.error !== undefined) report.fail(`${reader.name} saw ${describeEnd(end)} after the drain, not a clean end`);
    }
    const wrong = [...reasons.values()].filter((reason) => reason !== 'shutdown');
    if (reasons.size !== PEERS || wrong.length > 0) report.fail(`${reasons.size} sessionClose events, ${wrong.length} not 'shutdown': ${wrong.join(', ')}`);
    report.assertClean();
    expect(server.stats().sessions).toBe(0);
  }, 4 * DEADLINE_MS);
});
