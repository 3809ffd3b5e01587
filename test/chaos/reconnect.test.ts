import { connect, type Client } from '../../src';
import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, seeded } from '../support/chaos-harness';
import { ChaosPackets as P } from '../support/chaos-protocol';
import { waitFor } from '../support/wait';

/**
 * Scenario 10: an outbound client (`connect({ reconnect })`) whose server
 * crashes. The server child is killed with SIGKILL (no close, no flush)
 * while packets are in flight, the client queues packets while it
 * reconnects, and a new server child is started on the same port. The
 * client must reconnect once, its `reconnected` listener's login must reach
 * the new server first, then the queued packets in order, then new ones;
 * nothing the old server handled (or that was in flight to it) may arrive
 * again, and nothing may be echoed twice.
 */

const BEFORE = 100;
const IN_FLIGHT = 20;
const QUEUED = 50;
const AFTER = 10;
/** Sequence numbers by phase, so a packet that arrives out of its phase says which it was. */
const QUEUED_FROM = 1000;
const AFTER_FROM = 2000;

function seqPayload(seq: number): Buffer {
  const bytes = Buffer.alloc(16, 0x33);
  bytes.writeUInt32LE(seq, 0);
  return bytes;
}

describe.each(backends)('chaos: reconnect to a restarted server on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { label } = seeded(`${backend}: reconnect after SIGKILL`);

  it(`reconnects after SIGKILL; the queue follows the login, nothing twice [${label}]`, async () => {
    const first = await ChaosServer.start({ backend });
    const port = first.port;
    const client: Client = await connect({ port, backend, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    cleanups.push(() => client.close());
    const echoes = new Map<number, number>();
    let reconnecting = 0;
    let reconnected = 0;
    const closes: string[] = [];
    client.handle(P.RECORD, (_session, bytes: Buffer) => {
      const seq = bytes.readUInt32LE(0);
      echoes.set(seq, (echoes.get(seq) ?? 0) + 1);
    });
    client.on('reconnecting', () => reconnecting++);
    client.on('reconnected', () => {
      reconnected++;
      client.send(P.LOGIN, Buffer.alloc(0));
    });
    client.on('close', (reason) => closes.push(reason));
    client.send(P.LOGIN, Buffer.alloc(0));

    for (let seq = 0; seq < BEFORE; seq++) client.send(P.RECORD, seqPayload(seq));
    await waitFor(() => echoes.size === BEFORE, `${BEFORE} echoes from the first server`, DEADLINE_MS);

    // Packets in flight, then the crash: whatever of these the first server did not handle is lost, never resent.
    for (let seq = BEFORE; seq < BEFORE + IN_FLIGHT; seq++) client.send(P.RECORD, seqPayload(seq));
    await first.kill();
    await waitFor(() => reconnecting > 0, 'the client to notice the crash', DEADLINE_MS);

    const queuedReturns: boolean[] = [];
    for (let seq = QUEUED_FROM; seq < QUEUED_FROM + QUEUED; seq++) queuedReturns.push(client.send(P.RECORD, seqPayload(seq)));
    // While not connected a packet is queued and send says so (false); it never throws within maxQueuedBytes.
    expect(queuedReturns.every((ok) => !ok)).toBe(true);

    const second = await ChaosServer.start({ backend, port });
    await waitFor(() => reconnected > 0, 'the client to reconnect to the second server', DEADLINE_MS);
    await waitFor(() => [...Array(QUEUED).keys()].every((k) => echoes.has(QUEUED_FROM + k)), 'the queued packets to be echoed', DEADLINE_MS);
    for (let seq = AFTER_FROM; seq < AFTER_FROM + AFTER; seq++) client.send(P.RECORD, seqPayload(seq));
    await waitFor(() => echoes.has(AFTER_FROM + AFTER - 1), 'the packets sent after reconnecting to be echoed', DEADLINE_MS);

    const { log } = await second.stats();
    const want = [
      'login',
      ...Array.from({ length: QUEUED }, (_, k) => QUEUED_FROM + k),
      ...Array.from({ length: AFTER }, (_, k) => AFTER_FROM + k),
    ];
    expect({ log, reconnected, closes }).toEqual({ log: want, reconnected: 1, closes: [] });
    expect([...echoes.entries()].filter(([, count]) => count > 1)).toEqual([]);
    expect(client.session.isOpen).toBe(true);

    await client.close();
    const last = await second.until((stats) => stats.sessions === 0, 'the second server to have no sessions', DEADLINE_MS);
    expect(last.closes).toEqual({ 'peer-closed': 1 });
    expect(last.faults).toEqual([]);
  }, 4 * DEADLINE_MS);
});
